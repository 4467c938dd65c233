//! `pack`: build and pack the selected apps into images.

use super::{Common, Selection};
use crate::engine::OciEngine;
use crate::Result;
use std::process::ExitCode;

/// Arguments of `pack`.
#[derive(Debug, clap::Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Load the image for the engine's platform into the local docker engine, tagged.
    #[arg(long)]
    pub load: bool,
    #[command(flatten)]
    pub common: Common,
}

impl PackArgs {
    /// Packs every selected app; prints `name@digest` and the archive per app on stdout.
    pub fn run(self) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let apps = workspace.select(&self.selection.apps, &self.selection.overrides())?;
        let console = self.common.console();
        let engine = OciEngine::new(&workspace, &console)?;
        for app in &apps {
            let packed = engine.pack(app)?;
            if self.load {
                engine.load(&packed)?;
            }
            println!(
                "{}@{} {}",
                packed.app,
                packed.image.digest(),
                packed.archive
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
