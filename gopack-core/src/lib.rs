//! gopack-core: pack Go applications into minimal, non-root, reproducible
//! container images.
//!
//! The pipeline runs one way: [`config`] → [`build`] (cached by [`cache`]) →
//! image → verify. The library never prints; it reports progress to a
//! [`report::Reporter`]. [`cli`] holds the clap subcommands that any
//! project's xtask can mount.
//!
//! The API is [`cli`] (mount it, or call [`cli::Command::run_with`]),
//! [`config`], [`build`], [`engine`], [`publish`], [`plan`], [`verify`],
//! [`report`], [`image`], [`platform`], [`toolchain`], [`cache`],
//! [`remote_cache`], [`integrity`], [`gomod`] and [`Error`]. Helpers of the
//! pipeline (git, fingerprints, the stat cache, child processes, cgo and
//! loader rules, the output lock) are crate-private.

pub mod build;
pub mod cache;
pub(crate) mod check_id;
pub mod cli;
pub mod config;
pub mod diff;
pub mod engine;
pub mod environment;
pub mod error;
pub(crate) mod fingerprint;
pub mod goinfo;
pub mod gomod;
pub mod image;
pub mod integrity;
pub(crate) mod ldso;
pub mod oci;
pub(crate) mod output_lock;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub(crate) mod process;
pub mod publish;
pub mod reference;
pub mod registry;
pub mod remote_cache;
pub mod report;
pub mod sign;
pub mod since;
pub mod toolchain;
pub(crate) mod vcs;
pub mod verify;

pub use error::{Error, Result};

/// gopack's version (gopack-core's), for a host's `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
