//! `[workspace.metadata.gopack]`: what users write, read with `cargo_metadata`,
//! validated once, with paths resolved against the workspace root.
//!
//! Every rejection names the manifest, the key (as a path such as
//! `apps[1].platforms[0]`) and the fix.
pub mod confine;
pub mod files;
mod limits;
mod memo;
mod policy;
mod schema;
pub mod settings;
mod suggest;
pub mod supply;
pub mod tags;
#[cfg(test)]
mod tests;
mod validate;
mod workspace;

pub use limits::{Limits, LIMIT_NAMES};
pub use policy::{Attachment, ByteSize, Policy, RunPolicy};
pub(crate) use schema::BoolOrText;
pub use schema::{
    App, AppConfig, CacheRegistryMode, Cgo, Config, EngineKind, Overrides, Tzdata, UserConfig,
};
pub(crate) use validate::host_file_help;
pub use workspace::Workspace;

/// Where the documentation lives, for help lines (users may not have the
/// repository checked out).
pub const DOCS: &str = "https://github.com/gopack/gopack/blob/main/docs";
