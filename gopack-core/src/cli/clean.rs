//! `clean [APP...] [--dry-run]`: removes what gopack made, and nothing else:
//! each app's outputs (`<target>/gopack/<app>/`), the cache (only when no app
//! is named: it is shared by every app), and the docker engine's deps images
//! (`gopack-deps/<app>:*`) and the untagged build-stage images the classic
//! builder left (labelled `io.gopack.app=<app>`, `io.gopack.stage=build`).
//! `--dry-run` lists exactly that, with sizes, and
//! removes nothing.
//!
//! A cache folder that does not look like gopack's (`/`, the home folder, the
//! workspace or a folder above it, the target folder, or a folder holding
//! anything but the cache's own folders) is refused, naming what is wrong.

use super::Common;
use crate::cache::FOLDERS as CACHE_FOLDERS;
use crate::config::Workspace;
use crate::engine::build_stages::build_stage_images;
use crate::engine::docker::DEPS_REPOSITORY;
use crate::error::{IoContext, Result};
use crate::report::{Event, Reporter};
use crate::toolchain::Docker;
use crate::Error;
use camino::{Utf8Path, Utf8PathBuf};
use std::process::ExitCode;

/// Arguments of `clean`.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Apps whose outputs and deps images to remove (default: every app, and the cache).
    #[arg(value_name = "APP")]
    pub apps: Vec<String>,
    /// List what would be removed, with sizes, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: Common,
}

/// One thing `clean` removes (with `--json`, one line on stdout each, tagged by `kind`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Item {
    /// A folder: an app's outputs or the cache.
    Folder {
        /// What it is, for the listing.
        what: String,
        /// The folder.
        path: Utf8PathBuf,
        /// Bytes of the files in it.
        size: u64,
    },
    /// A deps image in the docker engine.
    Image {
        /// `gopack-deps/<app>:<key>`.
        reference: String,
        /// Its size as docker prints it.
        size: String,
    },
    /// An untagged build-stage image the classic builder left.
    Stage {
        /// The app it was built for.
        app: String,
        /// The image id (`sha256:...`).
        id: String,
        /// Its size as docker prints it.
        size: String,
    },
}

impl CleanArgs {
    /// Lists, then (unless `--dry-run`) removes.
    pub fn run(self, console: &dyn Reporter) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let items = plan(&workspace, &self.apps, console)?;
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut total = 0;
        for item in &items {
            if !self.dry_run {
                remove(item, console)?;
            }
            if self.common.json {
                #[derive(serde::Serialize)]
                struct Line<'a> {
                    #[serde(flatten)]
                    item: &'a Item,
                    removed: bool,
                }
                super::results::json_line(&Line {
                    item,
                    removed: !self.dry_run,
                })?;
                continue;
            }
            match item {
                Item::Folder { what, path, size } => {
                    total += size;
                    println!("{verb} {path} ({what}, {})", human(*size));
                }
                Item::Image { reference, size } => {
                    println!("{verb} docker image {reference} ({size})");
                }
                Item::Stage { app, id, size } => {
                    println!("{verb} docker image {id} (build stage of `{app}`, {size})");
                }
            }
        }
        if !self.common.json {
            if items.is_empty() {
                println!("nothing to clean");
            } else {
                println!("{verb} {} of files", human(total));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// What `clean` removes for `names` (every app and the cache when empty).
pub fn plan(workspace: &Workspace, names: &[String], reporter: &dyn Reporter) -> Result<Vec<Item>> {
    let apps = workspace.select(names, &Default::default())?;
    let out_dir = workspace.out_dir();
    let cache_dir = workspace.cache_dir();
    let mut items = Vec::new();
    for app in &apps {
        let path = out_dir.join(app.name());
        if path == cache_dir || cache_dir.starts_with(&path) {
            reporter.report(Event::Warning {
                message: format!(
                    "{path} holds the cache, so the outputs of `{}` are not removed on their own; \
                     `clean` with no app removes the cache",
                    app.name()
                ),
            });
            continue;
        }
        if path.symlink_metadata().is_ok() {
            items.push(Item::Folder {
                what: format!("outputs of `{}`", app.name()),
                size: size_of(&path)?,
                path,
            });
        }
    }
    if names.is_empty() && cache_dir.symlink_metadata().is_ok() {
        check_cache_dir(workspace, &cache_dir)?;
        items.push(Item::Folder {
            what: "the cache".into(),
            size: size_of(&cache_dir)?,
            path: cache_dir,
        });
    }
    match deps_images(&apps.iter().map(|a| a.name()).collect::<Vec<_>>()) {
        Ok(images) => items.extend(images),
        Err(reason) => reporter.report(Event::Note {
            message: format!("{DEPS_REPOSITORY}/* images not looked for: {reason}"),
        }),
    }
    Ok(items)
}

/// Refuses a cache folder that is not only gopack's cache.
fn check_cache_dir(workspace: &Workspace, dir: &Utf8Path) -> Result<()> {
    let refuse = |message: String| Error::Invalid {
        path: dir.to_string(),
        message,
        help: "point `cache-dir` (or GOPACK_CACHE_DIR) at a folder of its own, or remove the \
               cache by hand"
            .into(),
    };
    let resolved = dir
        .canonicalize_utf8()
        .unwrap_or_else(|_| dir.to_path_buf());
    let home = crate::environment::var_os("HOME").map(std::path::PathBuf::from);
    if resolved.parent().is_none() {
        return Err(refuse(
            "is the root folder: `clean` removes only gopack's cache".into(),
        ));
    }
    if home.as_deref().is_some_and(|h| {
        h == resolved.as_std_path()
            || h.canonicalize().ok().as_deref() == Some(resolved.as_std_path())
    }) {
        return Err(refuse(
            "is the home folder: `clean` removes only gopack's cache".into(),
        ));
    }
    let root = workspace
        .root
        .canonicalize_utf8()
        .unwrap_or_else(|_| workspace.root.clone());
    if root.starts_with(&resolved) {
        return Err(refuse(
            "is the workspace or a folder above it: `clean` removes only gopack's cache".into(),
        ));
    }
    for special in [&workspace.target_dir, &workspace.out_dir()] {
        let special = special
            .canonicalize_utf8()
            .unwrap_or_else(|_| special.clone());
        if special.starts_with(&resolved) {
            return Err(refuse(format!(
                "holds {special}, not only the cache: `clean` removes only gopack's cache"
            )));
        }
    }
    if !dir.is_dir() {
        return Err(refuse("is not a folder".into()));
    }
    for entry in dir.read_dir_utf8().at(dir, "list")? {
        let entry = entry.at(dir, "list")?;
        let name = entry.file_name();
        let ours = name.starts_with(".tmp-")
            || name == crate::cache::LOCK_FILE
            || (CACHE_FOLDERS.contains(&name)
                && entry.file_type().at(entry.path(), "read")?.is_dir());
        if !ours {
            return Err(refuse(format!(
                "holds `{name}`, which is not one of the cache's folders ({}): it does not look \
                 like gopack's cache",
                CACHE_FOLDERS.join(", ")
            )));
        }
    }
    Ok(())
}

/// The deps images of these apps, or why they could not be listed.
fn deps_images(apps: &[&str]) -> std::result::Result<Vec<Item>, String> {
    let docker = Docker::find().map_err(|_| "no docker client".to_string())?;
    let mut images = Vec::new();
    for app in apps {
        let repository = format!("{DEPS_REPOSITORY}/{app}");
        let out = docker
            .cmd([
                "image",
                "ls",
                "--format",
                "{{.Repository}}:{{.Tag}}\t{{.Size}}",
                repository.as_str(),
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if out.code != Some(0) {
            return Err(format!(
                "the docker engine did not answer ({})",
                out.stderr.trim()
            ));
        }
        for line in out.stdout.lines() {
            let (reference, size) = line.split_once('\t').unwrap_or((line, "?"));
            // Only exactly this app's repository (the filter is exact, but be sure).
            if reference
                .strip_prefix(&repository)
                .is_some_and(|tag| tag.starts_with(':'))
                && !reference.ends_with(":<none>")
            {
                images.push(Item::Image {
                    reference: reference.to_string(),
                    size: size.to_string(),
                });
            }
        }
        for stage in build_stage_images(&docker, app)? {
            images.push(Item::Stage {
                app: app.to_string(),
                id: stage.id,
                size: stage.size,
            });
        }
    }
    Ok(images)
}

fn remove(item: &Item, reporter: &dyn Reporter) -> Result<()> {
    match item {
        Item::Folder { path, what, .. } => {
            // An app's outputs have one writer at a time: wait for a running pack.
            let _lock = if what.starts_with("outputs") {
                Some(crate::output_lock::OutputLock::acquire(path, reporter)?)
            } else {
                None
            };
            match std::fs::remove_dir_all(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(path.clone(), "remove", e)),
            }
        }
        Item::Image { reference, .. } | Item::Stage { id: reference, .. } => {
            let out = Docker::find()?
                .cmd(["image", "rm", reference.as_str()])
                .output()?;
            if out.code != Some(0) {
                reporter.report(Event::Warning {
                    message: format!(
                        "docker image {reference} was not removed: {}",
                        out.stderr.trim()
                    ),
                });
            }
            Ok(())
        }
    }
}

/// Bytes of the files under `path` (symbolic links counted, not followed).
fn size_of(path: &Utf8Path) -> Result<u64> {
    let meta = path.symlink_metadata().at(path, "read")?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in path.read_dir_utf8().at(path, "list")? {
        let entry = entry.at(path, "list")?;
        total += size_of(entry.path())?;
    }
    Ok(total)
}

/// `1.5 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 * 1024 * 1024), "3.0 MiB");
    }
}
