//! The untagged build-stage images the classic builder leaves in the docker
//! engine (it keeps each stage's last image: a Go toolchain, the module and
//! its build, some 200 MB), found by the labels the rendered Dockerfile gives
//! its builder stages (`io.gopack.app`, `io.gopack.stage=build`): after a
//! build the older ones are removed, and `clean` lists and removes the rest.

use crate::engine::dockerfile;
use crate::report::{Event, Reporter};
use crate::toolchain::Docker;

/// A build-stage image the classic builder left in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageImage {
    /// The image id (`sha256:...`).
    pub id: String,
    /// Its size as docker prints it.
    pub size: String,
}

/// The untagged build-stage images of `app` (labelled by the rendered
/// Dockerfile), newest first; or why they could not be listed.
pub fn build_stage_images(
    docker: &Docker,
    app: &str,
) -> std::result::Result<Vec<StageImage>, String> {
    let out = docker
        .cmd(["image", "ls", "--no-trunc", "--filter", "dangling=true"])
        .args([
            "--filter".to_string(),
            format!("label={}={app}", dockerfile::APP_LABEL),
            "--filter".to_string(),
            format!("label={}=build", dockerfile::STAGE_LABEL),
            "--format".to_string(),
            "{{.ID}}\t{{.Size}}".to_string(),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if out.code != Some(0) {
        return Err(format!(
            "the docker engine did not answer ({})",
            out.stderr.trim()
        ));
    }
    // `docker image ls` lists the newest first.
    Ok(out
        .stdout
        .lines()
        .filter_map(|line| {
            let (id, size) = line.split_once('\t')?;
            id.starts_with("sha256:").then(|| StageImage {
                id: id.to_string(),
                size: size.to_string(),
            })
        })
        .collect())
}

/// Removes the build-stage images older builds of `app` left (the classic
/// builder keeps a stage's last image, untagged, a Go toolchain and a
/// build each); the newest stays as the layer cache of the next build.
/// A failure is a note: the images are `clean`'s to remove then.
pub fn remove_old(docker: &Docker, app: &str, reporter: &dyn Reporter) {
    let stages = match build_stage_images(docker, app) {
        Ok(stages) => stages,
        Err(why) => {
            reporter.report(Event::Note {
                message: format!("{}: old build-stage images not looked for: {why}", app),
            });
            return;
        }
    };
    let old: Vec<&str> = stages.iter().skip(1).map(|s| s.id.as_str()).collect();
    if old.is_empty() {
        return;
    }
    let removed = docker.cmd(["image", "rm"]).args(&old).output();
    let message = match removed {
        Ok(out) if out.code == Some(0) => format!(
            "{}: removed {} old build-stage image{} ({})",
            app,
            old.len(),
            if old.len() == 1 { "" } else { "s" },
            old.join(", ")
        ),
        Ok(out) => format!(
            "{}: old build-stage images not removed ({}); `cargo xtask clean {}` removes them",
            app,
            out.stderr.trim(),
            app
        ),
        Err(e) => format!("{}: old build-stage images not removed ({e})", app),
    };
    reporter.report(Event::Note { message });
}
