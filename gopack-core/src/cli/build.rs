//! `build`: static binaries for the selected apps.

use super::{Common, Selection};
use crate::build::Builder;
use crate::Result;
use std::process::ExitCode;

/// Arguments of `build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub common: Common,
}

impl BuildArgs {
    /// Builds every selected app; prints each binary's path on stdout.
    pub fn run(self) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let apps = workspace.select(&self.selection.apps, &self.selection.overrides())?;
        let console = self.common.console();
        let builder = Builder::new(&workspace, &console)?;
        for app in &apps {
            for binary in builder.build(app)? {
                println!("{}", binary.path);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
