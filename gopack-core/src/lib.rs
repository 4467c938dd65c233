//! gopack-core: pack Go applications into minimal, non-root, reproducible
//! container images.
//!
//! The pipeline runs one way: [`config`] → [`build`] (cached by [`cache`]) →
//! image → verify. The library never prints; it reports progress to a
//! [`report::Reporter`]. [`cli`] holds the clap subcommands that any
//! project's xtask can mount.

pub mod build;
pub mod cache;
pub mod cgo;
pub mod check_id;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod gomod;
pub mod image;
pub mod integrity;
pub mod ldso;
pub mod output_lock;
pub mod plan;
pub mod platform;
pub mod process;
pub mod publish;
pub mod remote_cache;
pub mod report;
pub mod statcache;
pub mod toolchain;
pub mod vcs;
pub mod verify;

pub use error::{Error, Result};

/// gopack's version (gopack-core's), for a host's `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
