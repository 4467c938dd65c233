//! `dockerfile`: print an app's multi-platform, multi-stage Dockerfile, or
//! check a committed one; write the matching `.dockerignore` when asked.

use super::{Common, Selection};
use crate::engine::dockerfile::{self, Options};
use crate::report::{Event, Reporter};
use crate::{Error, Result};
use camino::Utf8PathBuf;
use std::process::ExitCode;

/// Arguments of `dockerfile`.
#[derive(Debug, clap::Args)]
pub struct DockerfileArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Fail (exit 1, with the difference) when FILE is not what gopack renders.
    #[arg(long, value_name = "FILE")]
    pub check: Option<Utf8PathBuf>,
    /// Render BuildKit cache mounts (`RUN --mount=type=cache`) for the Go build cache.
    #[arg(long)]
    pub cache_mounts: bool,
    /// Render for the classic builder (DOCKER_BUILDKIT=0): `ARG BUILDPLATFORM`
    /// before the first FROM, and a header that passes the platform arguments.
    #[arg(long, conflicts_with = "cache_mounts")]
    pub classic: bool,
    /// Also write the `.dockerignore` that matches the build context to PATH
    /// (refused when PATH holds a file gopack did not write).
    #[arg(long, value_name = "PATH")]
    pub dockerignore: Option<Utf8PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

impl DockerfileArgs {
    /// Prints the Dockerfile of the one selected app, or checks FILE against it.
    pub fn run(self, reporter: &dyn Reporter) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let apps = workspace.select(&self.selection.apps, &self.selection.overrides())?;
        let [app] = apps.as_slice() else {
            return Err(Error::Flag {
                flag: "APP".into(),
                message: format!(
                    "a Dockerfile is for one app, and {} are selected",
                    apps.len()
                ),
                help: "name the app: cargo xtask dockerfile APP".into(),
            });
        };
        let options = Options {
            cache_mounts: self.cache_mounts,
            classic: self.classic,
            ..Options::for_app(app)
        };
        let text = dockerfile::render(app, &options)?.text();
        if let Some(path) = &self.dockerignore {
            let ignore = dockerfile::dockerignore(app, &workspace.target_dir)?;
            write_dockerignore(path, &ignore)?;
            reporter.report(Event::Note {
                message: format!("wrote {path}: the build context of `{}`", app.name()),
            });
        }
        match &self.check {
            Some(file) => {
                match dockerfile::check(&text, file, app.name()) {
                    Err(e @ Error::Invalid { .. }) => {
                        // Not `checks-failed` (that code carries verify's
                        // report): the file differs, the diff is in `message`.
                        let mut event = Event::error(&e);
                        if let Event::Error { code, .. } = &mut event {
                            *code = OUT_OF_DATE.into();
                        }
                        reporter.report(event);
                        return Ok(ExitCode::from(super::CHECKS_FAILED));
                    }
                    result => result?,
                }
                reporter.report(Event::Note {
                    message: format!("{file} is up to date with the config of `{}`", app.name()),
                });
            }
            None => print!("{text}"),
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The error code of `dockerfile --check` when the committed file differs
/// from the rendered one (exit status 1, as a failed check).
pub const OUT_OF_DATE: &str = "out-of-date";

/// Writes `text` to `path` (temp name, rename), unless `path` holds a file
/// gopack did not write.
fn write_dockerignore(path: &camino::Utf8Path, text: &str) -> Result<()> {
    use crate::error::IoContext;
    match std::fs::read_to_string(path) {
        Ok(old) if !old.starts_with(dockerfile::DOCKERIGNORE_MARKER) => {
            return Err(Error::Invalid {
                path: path.to_string(),
                message: "exists and was not written by gopack; it is left alone".into(),
                help: format!(
                    "merge by hand (`cargo xtask dockerfile APP --dockerignore /tmp/x` writes \
                     gopack's), or remove {path} and run again"
                ),
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path.to_string(), "read", e)),
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir.to_path_buf(),
        _ => Utf8PathBuf::from("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-dockerignore-")
        .tempfile_in(&dir)
        .at(&dir, "create a file in")?;
    std::io::Write::write_all(&mut temp, text.as_bytes()).at(path, "write")?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644))
            .at(path, "write")?;
    }
    temp.persist(path)
        .map_err(|e| Error::io(path.to_string(), "write", e.error))?;
    Ok(())
}
