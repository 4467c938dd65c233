//! Publishers put a packed image somewhere: an OCI layout folder, an archive,
//! the local docker engine, or a registry. Engines make images
//! ([`crate::engine`]); publishers never build, and `pack` only wires the two.
//!
//! The layout and the archive ([`Outputs`]) are written for every image the
//! oci engine packs (verify reads the layout); [`Destination`] names the
//! optional places a run adds. [`crate::pipeline`] calls them in order.

pub mod archive;
pub mod docker;
pub mod layout;

/// The registry client, at its old path ([`crate::registry`]).
pub use crate::registry;
/// Registry credentials, at their old path ([`crate::registry::credentials`]).
pub use crate::registry::credentials;

use crate::cache::Cache;
use crate::config::{App, Workspace};
use crate::image::Packed;
use crate::report::{Event, Reporter};
use crate::Result;
use camino::Utf8PathBuf;

/// Where every image of the oci engine is written: `<target>/gopack/<app>/oci`
/// and `<target>/gopack/<app>/<app>.tar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// The OCI layout folder.
    pub layout: Utf8PathBuf,
    /// The archive for skopeo (oci-archive) and `docker load`.
    pub archive: Utf8PathBuf,
}

impl Outputs {
    /// The app's outputs in the workspace.
    pub fn of(workspace: &Workspace, app: &App) -> Outputs {
        let out = workspace.out_dir().join(app.name());
        Outputs {
            layout: out.join("oci"),
            archive: out.join(format!("{}.tar", app.name())),
        }
    }

    /// Writes `packed` as the layout and the archive (each left alone when it
    /// already holds exactly this image).
    pub fn write(&self, cache: &Cache, packed: &Packed, reporter: &dyn Reporter) -> Result<()> {
        self.write_with(cache, packed, reporter, || Ok(()))
    }

    /// [`Outputs::write`], with `after_layout` run as soon as the layout is
    /// in place, while the archive is written beside it (verify reads the
    /// layout meanwhile). Its answer comes back once both are done; the
    /// archive's error wins.
    pub fn write_with<T>(
        &self,
        cache: &Cache,
        packed: &Packed,
        reporter: &dyn Reporter,
        after_layout: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let image = &packed.image;
        layout::write(cache, image, &self.layout)?;
        let (archived, after) = std::thread::scope(|scope| {
            let archive = scope.spawn(|| {
                archive::write(
                    cache,
                    image,
                    image.docker_default(),
                    packed.metadata.epoch,
                    &self.archive,
                )
            });
            let after = after_layout();
            let archived = archive
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (archived, after)
        });
        archived?;
        reporter.report(Event::ImageReady {
            app: packed.app.clone(),
            digest: image.digest().to_string(),
            layout: self.layout.to_string(),
            archive: self.archive.to_string(),
        });
        after
    }
}

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
        outputs: &Outputs,
        reporter: &dyn Reporter,
    ) -> Result<Vec<String>> {
        match self {
            Destination::Docker => docker::load(cache, packed, &outputs.archive, reporter),
            Destination::Registry {
                prefix,
                insecure,
                connection,
            } => {
                let target = registry::Target::new(prefix, &packed.image.name, *insecure)?;
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
