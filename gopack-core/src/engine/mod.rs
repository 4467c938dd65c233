//! Engines turn an app into an image. `oci` (the default) is daemonless and
//! needs only `go`; both engines produce the same file tree.

pub mod docker;
pub mod dockerfile;
mod metadata;
pub mod oci;

pub use docker::{DockerEngine, DockerOptions, DockerPacked};
pub use metadata::ImageMetadata;
pub use oci::{OciEngine, Packed};
