//! Engines turn an app into an image, and do nothing else: `oci` (the
//! default) is daemonless, needs only `go` and leaves an [`crate::image::Packed`]
//! image in the cache; `docker` runs `docker build` and leaves an untagged
//! image in the docker engine ([`DockerPacked`]). Both produce the same file
//! tree. Verify, outputs and destinations follow in [`crate::pipeline`], the
//! same for both engines.

pub mod build_stages;
pub mod docker;
pub mod dockerfile;
pub mod oci;

pub use docker::{DockerEngine, DockerOptions, DockerPacked};
pub use oci::OciEngine;

use crate::image::ImageMetadata;

/// The image's tags: the app's `image-tags` templates, else the version and `latest`.
/// A skipped template is reported as a note.
pub fn image_tags(
    app: &crate::config::App,
    metadata: &ImageMetadata,
    reporter: &dyn crate::report::Reporter,
) -> crate::Result<Vec<String>> {
    let Some(templates) = &app.config.image_tags else {
        return Ok(crate::config::tags::default_tags(&metadata.tag));
    };
    let values = crate::config::tags::Values {
        version: metadata.tag.clone(),
        raw_version: metadata.version.clone(),
        revision: metadata.revision.clone(),
    };
    let (tags, notes) = crate::config::tags::render(templates, &values).map_err(|message| {
        crate::Error::Config {
            manifest: app.manifest.clone(),
            key: app.key("image-tags"),
            message,
            help: crate::config::tags::HELP.into(),
        }
    })?;
    for message in notes {
        reporter.report(crate::report::Event::Note {
            message: format!("{}: {message}", app.name()),
        });
    }
    Ok(tags)
}
