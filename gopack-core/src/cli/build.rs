//! `build`: static binaries for the selected apps.

use super::{CacheRegistryFlags, Common, Selection};
use crate::build::Builder;
use crate::Result;
use std::process::ExitCode;

/// Arguments of `build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub cache_registry: CacheRegistryFlags,
    #[command(flatten)]
    pub common: Common,
}

impl BuildArgs {
    /// Builds every selected app; prints each binary's path on stdout.
    pub fn run(self) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let apps = workspace.select(&self.selection.apps, &self.selection.overrides())?;
        let console = self.common.console();
        let remote = self
            .cache_registry
            .open(&workspace, Default::default(), &console)?;
        let builder = Builder::new(&workspace, &console)?.with_remote(remote.as_ref());
        for app in &apps {
            for binary in builder.build(app)? {
                println!("{}", binary.path);
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
