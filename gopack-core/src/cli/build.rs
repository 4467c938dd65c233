//! `build`: static binaries for the selected apps.

use super::results::{json_line, write_stdout, BinaryResult, BuildResult};
use super::{CacheRegistryFlags, Common, Selection, Since};
use crate::build::Builder;
use crate::config::App;
use crate::error::IoContext;
use crate::image::ImageMetadata;
use crate::report::{Recorder, Reporter};
use crate::Result;
use std::process::ExitCode;

/// Arguments of `build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub since: Since,
    #[command(flatten)]
    pub cache_registry: CacheRegistryFlags,
    #[command(flatten)]
    pub common: Common,
}

impl BuildArgs {
    /// Builds every selected app; prints each binary's path on stdout (with
    /// `--json`, one line per app, see [`BuildResult`]).
    pub fn run(self, console: &dyn Reporter) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let apps: Vec<App> = (self.since.select(&self.selection, &workspace, console)?)
            .into_iter()
            .map(|(app, _)| app)
            .collect();
        if apps.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        let remote = self
            .cache_registry
            .open(&workspace, Default::default(), console)?;
        let builder = Builder::new(&workspace, console)?.with_remote(remote.as_ref());
        // One `git status` for every app of the run, not one per app; none
        // when no version is asked for.
        let asks_history = |app: &App| {
            app.config.version.is_none()
                && (self.common.json || app.config.version_variable.is_some())
        };
        let changes = if apps.iter().any(asks_history) {
            crate::vcs::Changes::read(&crate::plan::input_paths(&apps))
        } else {
            crate::vcs::Changes::default()
        };
        for app in &apps {
            if self.common.json {
                json_line(&build_result(&builder, app, &changes, console)?)?;
            } else if !asks_history(app) {
                for binary in builder.build(app)? {
                    write_stdout(&format!("{}\n", binary.path))?;
                }
            } else {
                for binary in build_result(&builder, app, &changes, console)?.binaries {
                    write_stdout(&format!("{}\n", binary.path))?;
                }
            }
            if let Some(remote) = &remote {
                remote.push_pending();
            }
        }
        if let Some(remote) = &remote {
            remote.summary();
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Builds `app` as [`Builder::build`] does, and describes the binaries.
fn build_result(
    builder: &Builder<'_>,
    app: &App,
    changes: &crate::vcs::Changes,
    console: &dyn Reporter,
) -> Result<BuildResult> {
    // The version the result names; its warnings matter only when it is stamped.
    let stamped = app.config.version_variable.is_some();
    let silent = Recorder::default();
    let reporter: &dyn Reporter = if stamped { console } else { &silent };
    let metadata = ImageMetadata::read_with(app, Some(builder.cache()), Some(changes), reporter)?;
    let stamp = if stamped {
        metadata.version.as_str()
    } else {
        ""
    };
    let mut binaries = Vec::new();
    for binary in builder.build_version(app, stamp)? {
        // The output is the cached binary, checked against this record (or
        // copied from it) by the build: no need to read it again.
        let (sha256, size) = match crate::integrity::recorded_binary(builder.cache(), &binary.key) {
            Some(recorded) => recorded,
            None => crate::integrity::file_digest(&binary.path).at(&binary.path, "read")?,
        };
        binaries.push(BinaryResult {
            platform: binary.platform.to_string(),
            path: binary.path.to_string(),
            sha256,
            size,
        });
    }
    Ok(BuildResult {
        name: app.name().to_string(),
        version: metadata.version,
        binaries,
    })
}
