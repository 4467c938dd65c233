//! Publishers put a packed image somewhere: an OCI layout folder, an archive,
//! the local docker engine, or a registry. Engines make images
//! ([`crate::engine`]); publishers never build, and `pack` only wires the two.
//!
//! The layout and the archive are written for every packed image (verify reads
//! the layout); [`Destination`] names the optional ones a run adds.

pub mod archive;
pub mod docker;
pub mod layout;

/// The registry client, at its old path ([`crate::registry`]).
pub use crate::registry;
/// Registry credentials, at their old path ([`crate::registry::credentials`]).
pub use crate::registry::credentials;

use crate::cache::Cache;
use crate::engine::Packed;
use crate::report::Reporter;
use crate::Result;

/// Where a run sends a packed image besides its layout and archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The local docker engine (`--load`).
    Docker,
    /// A registry (`--push`), as `host[/path]` plus the plain-HTTP choice.
    Registry {
        /// `host[:port][/path]`; the app's name is appended.
        prefix: String,
        /// Speak plain HTTP.
        insecure: bool,
        /// Timeouts and whether credentials may go over plain HTTP.
        connection: registry::Connection,
    },
}

impl Destination {
    /// Sends `packed` there; returns the references it is known by there
    /// (`name:tag` in docker, `host/path/name@sha256:...` in a registry).
    pub fn publish(
        &self,
        cache: &Cache,
        packed: &Packed,
        reporter: &dyn Reporter,
    ) -> Result<Vec<String>> {
        match self {
            Destination::Docker => docker::load(cache, packed, reporter),
            Destination::Registry {
                prefix,
                insecure,
                connection,
            } => {
                let target = registry::Target::new(prefix, &packed.app, *insecure)?;
                let reference = format!(
                    "{}/{}@{}",
                    target.host,
                    target.repository,
                    packed.image.digest()
                );
                registry::Pusher::connect(target, connection.clone(), cache, reporter)?
                    .push(&packed.app, &packed.image)?;
                Ok(vec![reference])
            }
        }
    }

    /// What it is, for plans and messages.
    pub fn describe(&self) -> String {
        match self {
            Destination::Docker => "docker load".into(),
            Destination::Registry {
                prefix, insecure, ..
            } => {
                format!(
                    "push to {prefix}{}",
                    if *insecure { " (plain HTTP)" } else { "" }
                )
            }
        }
    }
}
