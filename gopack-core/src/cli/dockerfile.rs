//! `dockerfile`: print an app's multi-stage Dockerfile, or check a committed one.

use super::{Common, Selection};
use crate::engine::dockerfile::{self, Options};
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
    #[command(flatten)]
    pub common: Common,
}

impl DockerfileArgs {
    /// Prints the Dockerfile of the one selected app, or checks FILE against it.
    pub fn run(self) -> Result<ExitCode> {
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
        if self.selection.platforms.len() > 1 {
            return Err(Error::Flag {
                flag: "--platform".into(),
                message: "a Dockerfile builds for one platform, and several are given".into(),
                help: "render one Dockerfile per platform: --platform linux/amd64, then --platform linux/arm64".into(),
            });
        }
        let options = Options {
            cache_mounts: self.cache_mounts,
            ..Options::for_app(app)
        };
        let text = dockerfile::render(app, &options)?.text();
        match &self.check {
            Some(file) => {
                match dockerfile::check(&text, file, app.name()) {
                    Err(e @ Error::Invalid { .. }) => return Ok(super::checks_failed(&e)),
                    result => result?,
                }
                eprintln!("{file} is up to date with the config of `{}`", app.name());
            }
            None => print!("{text}"),
        }
        Ok(ExitCode::SUCCESS)
    }
}
