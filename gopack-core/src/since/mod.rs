//! `--since REF`: the apps whose inputs changed between a git revision and
//! the working tree (uncommitted and untracked files included), each with the
//! reasons it was selected.
//!
//! An app's inputs are what gopack already knows it is built from: its module
//! folder, its local `replace` targets, the go.work in effect and the modules
//! it `use`s ([`ModuleSetup::input_paths`]), its `files` sources, its own
//! table under `[workspace.metadata.gopack]`, the workspace-wide keys that
//! reach its image, and the gopack version Cargo.lock pins. git is asked a
//! fixed number of times for the whole workspace (`since/git.rs`); the changed paths
//! are then matched against each app's inputs, so 200 apps cost what one
//! does. Apps that share a module folder (several `main` packages) are
//! selected together when the module changes.

mod git;
mod tables;

pub use git::Change;

use crate::config::{App, Config, Workspace};
use crate::error::Result;
use crate::gomod::{normalize, ModuleSetup};
use camino::{Utf8Path, Utf8PathBuf};

/// How many changed files one reason names before it counts the rest.
const NAMED_FILES: usize = 3;

/// One app `--since` selected, and why.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The app, as configured.
    pub app: App,
    /// Why it was selected, one line each (e.g. `services/api/main.go modified`).
    pub reasons: Vec<String>,
}

/// One input of an app: a file or folder, and how to name it in a reason.
struct Input {
    path: Utf8PathBuf,
    what: String,
}

/// The apps among `apps` whose inputs changed since `reference`, in their order.
pub fn select(workspace: &Workspace, apps: &[App], reference: &str) -> Result<Vec<Selected>> {
    let git = git::Git::open(&workspace.root)?;
    let commit = git.resolve(reference)?;
    let changes = git.changes(&commit)?;
    let repo_root = git.repo.root.clone();
    let relative = |path: &Utf8Path| -> Option<String> {
        path.strip_prefix(&repo_root)
            .ok()
            .map(|p| p.as_str().to_string())
    };

    // The config and the gopack version, at REF, only when their files changed.
    let manifest = relative(&workspace.manifest);
    let manifest_changed = manifest
        .as_ref()
        .is_some_and(|m| changes.iter().any(|c| &c.path == m));
    let old_config: Option<std::result::Result<Option<Config>, String>> = manifest
        .as_ref()
        .filter(|_| manifest_changed)
        .map(|m| match git.show(&commit, m) {
            Some(text) => tables::config_of(&text),
            None => Ok(None),
        });
    let lock = relative(&workspace.root.join("Cargo.lock"));
    let gopack_changed = lock
        .as_ref()
        .filter(|l| changes.iter().any(|c| &c.path == *l))
        .and_then(|l| {
            let before = git.show(&commit, l).and_then(|t| tables::locked_gopack(&t));
            let now = crate::config::confine::read_text(&workspace.root.join("Cargo.lock"))
                .ok()
                .and_then(|t| tables::locked_gopack(&t));
            (before != now).then(|| {
                format!(
                    "gopack changed in Cargo.lock ({} -> {})",
                    before.as_deref().unwrap_or("none"),
                    now.as_deref().unwrap_or("none")
                )
            })
        });
    let wide = match &old_config {
        Some(Ok(Some(old))) => Some(tables::wide_changes(old, &workspace.config)),
        _ => None,
    };

    let mut selected = Vec::new();
    for app in apps {
        let mut reasons = Vec::new();
        if let Some(reason) = &gopack_changed {
            reasons.push(reason.clone());
        }
        match &old_config {
            None => {}
            Some(Err(why)) => reasons.push(format!(
                "the gopack table of {} at {reference} cannot be read ({why})",
                workspace.manifest
            )),
            Some(Ok(None)) => reasons.push(format!(
                "{} had no gopack table at {reference}",
                workspace.manifest
            )),
            Some(Ok(Some(old))) => {
                match old.apps.iter().find(|a| a.name == app.config.name) {
                    None => reasons.push(format!("the app is new since {reference}")),
                    Some(before) => {
                        let keys = tables::app_changes(before, &app.config);
                        if !keys.is_empty() {
                            reasons.push(format!("its table changed: {}", keys.join(", ")));
                        }
                    }
                }
                if let Some(wide) = &wide {
                    let mut keys = wide.all.clone();
                    if !app.config.files.is_empty() {
                        keys.extend(wide.files.iter().cloned());
                    }
                    if !keys.is_empty() {
                        reasons.push(format!("workspace key changed: {}", keys.join(", ")));
                    }
                }
            }
        }
        for input in inputs(app, &workspace.root)? {
            let Some(prefix) = relative(&input.path) else {
                continue;
            };
            let hits: Vec<&Change> = changes
                .iter()
                .filter(|c| within(&c.path, &prefix))
                .collect();
            if hits.is_empty() {
                continue;
            }
            let mut named: Vec<String> = hits
                .iter()
                .take(NAMED_FILES)
                .map(|c| format!("{} {}", c.path, c.how))
                .collect();
            if hits.len() > NAMED_FILES {
                named.push(format!("{} more", hits.len() - NAMED_FILES));
            }
            let mut reason = named.join(", ");
            if !input.what.is_empty() {
                reason.push_str(&format!(" ({})", input.what));
            }
            reasons.push(reason);
        }
        if !reasons.is_empty() {
            selected.push(Selected {
                app: app.clone(),
                reasons,
            });
        }
    }
    Ok(selected)
}

/// Whether `path` is `prefix` or beneath it (both relative to the repository; `""` is the top).
fn within(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Everything `app` is built from that lives in files: the module folder,
/// local `replace` targets, go.work and its modules, `files` sources, and
/// configured CA bundle or zoneinfo paths (relative to the workspace root).
fn inputs(app: &App, workspace_root: &Utf8Path) -> Result<Vec<Input>> {
    let setup = ModuleSetup::detect(app)?;
    let replaced = setup.source_folders(app)?;
    let work_modules: Vec<Utf8PathBuf> = setup
        .work
        .as_ref()
        .map(|w| w.modules.clone())
        .unwrap_or_default();
    let mut inputs = Vec::new();
    for path in setup.input_paths(app)? {
        let path = normalize(&path);
        let what = if path == app.dir {
            String::new()
        } else if setup
            .work
            .as_ref()
            .is_some_and(|w| path == w.file || path == w.file.with_extension("work.sum"))
        {
            "the go.work".to_string()
        } else if work_modules.contains(&path) {
            format!("a module the go.work uses: {path}")
        } else if replaced.contains(&path) {
            format!("a local replace target: {path}")
        } else {
            format!("an input: {path}")
        };
        inputs.push(Input { path, what });
    }
    let app_root = app.sources.root.join(&app.sources.prefix);
    for file in &app.config.files {
        inputs.push(Input {
            path: normalize(&app_root.join(&file.src)),
            what: format!("a `files` source: {}", file.src),
        });
    }
    for (key, path) in [
        ("ca-bundle", &app.config.ca_bundle),
        ("zoneinfo", &app.config.zoneinfo),
    ] {
        if let Some(path) = path {
            inputs.push(Input {
                path: normalize(&workspace_root.join(path)),
                what: format!("its `{key}`"),
            });
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn within_matches_whole_path_components() {
        assert!(within("services/api/main.go", "services/api"));
        assert!(within("services/api", "services/api"));
        assert!(!within("services/api2/main.go", "services/api"));
        assert!(within("anything", ""));
    }
}
