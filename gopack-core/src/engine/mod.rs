//! Engines turn an app into an image. `oci` (the default) is daemonless and
//! needs only `go`; both engines produce the same file tree.

pub mod docker;
pub mod dockerfile;
mod metadata;
pub mod oci;

pub use docker::{DockerEngine, DockerOptions, DockerPacked};
pub use metadata::ImageMetadata;
pub use oci::{OciEngine, Packed};

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
            manifest: "Cargo.toml".into(),
            key: format!(
                "workspace.metadata.gopack.apps (name = \"{}\").image-tags",
                app.name()
            ),
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
