//! `docker load` of a packed image: the platform the local engine runs, from
//! the archive (or an archive written for that platform), tagged.
//!
//! docker's own lines are summarised as one [`Event::Loaded`] with the
//! loaded tags; lines gopack does not know are passed on. A tag that moves to
//! the new image can leave the old one without any tag (dangling): that is a
//! warning naming the old image and how to remove it.

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::image::Packed;
use crate::platform::Platform;
use crate::report::{Event, Reporter};
use crate::toolchain::Docker;
use camino::Utf8Path;

/// Checks, before anything is built, that an app with `platforms` can be
/// loaded: the docker engine answers and one of them runs on it.
pub fn check_loadable(app: &str, platforms: &[Platform]) -> Result<()> {
    let engine = engine_platform()?;
    require_platform(app, platforms.iter(), &engine)
}

/// Loads the image for the docker engine's platform into docker, tagged;
/// returns the `name:tag` references.
pub fn load(
    cache: &Cache,
    packed: &Packed,
    archive: &Utf8Path,
    reporter: &dyn Reporter,
) -> Result<Vec<String>> {
    let docker = Docker::find()?;
    let engine = engine_platform()?;
    let image = &packed.image;
    require_platform(
        &packed.app,
        image.platforms.iter().map(|p| &p.platform),
        &engine,
    )?;
    let chosen = image
        .platforms
        .iter()
        .find(|p| p.platform.os == engine.os && p.platform.arch == engine.arch)
        .expect("require_platform found it");
    let archive = if chosen.platform == image.docker_default().platform {
        archive.to_path_buf()
    } else {
        let path = archive.with_extension(format!("{}.tar", chosen.platform.slug()));
        super::archive::write(cache, image, chosen, packed.metadata.epoch, &path)?;
        path
    };
    let tags = packed.references();
    let before = docker.image_ids(&tags);
    let cmd = docker.cmd(["load", "--input", archive.as_str()]);
    let out = cmd.output()?;
    if out.code != Some(0) {
        return Err(Error::Command {
            command: cmd.display(),
            status: match out.code {
                Some(code) => format!("exit status: {code}"),
                None => "killed by a signal".into(),
            },
            output: format!("{}{}", out.stdout, out.stderr),
            help: "`docker load` failed: check that the engine is running and has disk space"
                .into(),
        });
    }
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        if !is_summarised(line) {
            reporter.report(Event::Output {
                tool: "docker".into(),
                line: line.to_string(),
            });
        }
    }
    reporter.report(Event::Loaded {
        app: packed.app.clone(),
        tags: tags.clone(),
    });
    docker.warn_dangling(&before, reporter);
    Ok(tags)
}

/// Whether `docker load` printed `line` about what the summary says: loaded
/// images, and tags moved off older images (see [`Docker::warn_dangling`]).
fn is_summarised(line: &str) -> bool {
    let line = line.trim();
    line.is_empty()
        || line.starts_with("Loaded image")
        || (line.starts_with("The image ") && line.contains("renaming the old one"))
}

/// The docker engine's platform.
fn engine_platform() -> Result<Platform> {
    Docker::find()?
        .engine_platform()?
        .parse()
        .map_err(|e: crate::platform::PlatformError| Error::Invalid {
            path: "docker engine".into(),
            message: e.to_string(),
            help: "gopack loads Linux images only".into(),
        })
}

/// An error unless one of `platforms` runs on the engine's platform.
fn require_platform<'p>(
    app: &str,
    mut platforms: impl Iterator<Item = &'p Platform>,
    engine: &Platform,
) -> Result<()> {
    if platforms.any(|p| p.os == engine.os && p.arch == engine.arch) {
        return Ok(());
    }
    Err(Error::Flag {
        flag: "--load".into(),
        message: format!("the docker engine runs {engine}, and {app} has no such image"),
        help: format!("add \"{engine}\" to the app's platforms, or pass --platform {engine}"),
    })
}
