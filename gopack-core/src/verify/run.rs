//! The smoke run of `verify --run`: the image runs once in the local docker
//! engine (`docker run --rm --network none`), and its exit code and output are
//! compared with the app's `verify.run` policy.
//!
//! An image read from a file is first loaded under a temporary tag, from a
//! small `docker save`-style archive written from its config and layer blobs,
//! and removed afterwards.

use super::report::Check;
use super::source::{FoundImage, ImageSource, Opened};
use crate::check_id::CheckId;
use crate::config::RunPolicy;
use crate::error::{Error, IoContext, Result};
use crate::toolchain::Docker;
use camino::Utf8PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Runs one platform image and returns the `run.smoke` check.
pub(crate) fn smoke_run(
    source: &ImageSource,
    opened: &Opened,
    image: &FoundImage,
    policy: &RunPolicy,
) -> Check {
    match try_run(source, opened, image, policy) {
        Ok(check) => check,
        Err(e) => Check::fail(
            CheckId::RunSmoke,
            format!("the image could not be run: {e}"),
        )
        .remedy("start the docker engine, or verify without --run"),
    }
}

fn try_run(
    source: &ImageSource,
    opened: &Opened,
    image: &FoundImage,
    policy: &RunPolicy,
) -> Result<Check> {
    let docker = Docker::find()?;
    let engine = docker.engine_platform()?;
    let platform = image.platform();
    if engine != platform && !platform.starts_with(&format!("{engine}/")) {
        return Ok(Check::skip(
            CheckId::RunSmoke,
            format!("a {platform} image cannot run on this {engine} engine"),
        ));
    }
    let n = RUNS.fetch_add(1, Ordering::SeqCst);
    let id = format!("{}-{n}", std::process::id());
    let (reference, loaded) = match source {
        ImageSource::Docker(reference) => (reference.clone(), None),
        ImageSource::Path(_) => {
            let tag = format!("gopack-verify-run:{id}");
            load(&docker, opened, image, &tag)?;
            (tag.clone(), Some(tag))
        }
    };
    let name = format!("gopack-verify-run-{id}");
    let cmd = docker
        .cmd(["run", "--rm", "--network", "none", "--name"])
        .arg(&name)
        .arg(&reference)
        .args(&policy.args);
    let shown = cmd.display();
    let (sender, receiver) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let _ = sender.send(cmd.output());
    });
    let timeout = Duration::from_secs(policy.timeout_seconds.max(1));
    let outcome = match receiver.recv_timeout(timeout) {
        Ok(result) => Some(result),
        Err(_) => {
            let _ = docker.cmd(["kill"]).arg(&name).output();
            let _ = receiver.recv_timeout(Duration::from_secs(30));
            None
        }
    };
    let _ = runner.join();
    if let Some(tag) = loaded {
        let _ = docker.cmd(["rmi", "--force"]).arg(tag).output();
    }
    let Some(result) = outcome else {
        return Ok(Check::fail(
            CheckId::RunSmoke,
            format!("`{shown}` did not end within {} s and was killed", timeout.as_secs()),
        )
        .remedy("give verify.run args that make the app exit (e.g. [\"--version\"]), or raise verify.run.timeout-seconds"));
    };
    let output = result?;
    let text = format!("{}{}", output.stdout, output.stderr);
    let tail: Vec<String> = text
        .lines()
        .rev()
        .take(10)
        .map(String::from)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let code = output.code;
    if code != Some(policy.expect_exit) {
        return Ok(Check::fail(
            CheckId::RunSmoke,
            format!(
                "`{shown}` exited with {}, {} expected",
                code.map(|c| c.to_string()).unwrap_or("a signal".into()),
                policy.expect_exit
            ),
        )
        .details(tail)
        .remedy("run the image by hand to see why; a static binary and the files it needs must be in the image"));
    }
    if let Some(expected) = &policy.expect_output {
        if !text.contains(expected.as_str()) {
            return Ok(Check::fail(
                CheckId::RunSmoke,
                format!(
                    "`{shown}` exited with {} but did not print `{expected}`",
                    policy.expect_exit
                ),
            )
            .details(tail)
            .remedy("check verify.run.expect-output against what the app prints"));
        }
    }
    Ok(Check::pass(
        CheckId::RunSmoke,
        format!(
            "`{shown}` exited with {}{}",
            policy.expect_exit,
            policy
                .expect_output
                .as_ref()
                .map(|e| format!(" and printed `{e}`"))
                .unwrap_or_default()
        ),
    ))
}

/// Loads one platform image into the engine under `tag`.
fn load(docker: &Docker, opened: &Opened, image: &FoundImage, tag: &str) -> Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("gopack-verify-load-")
        .tempdir()
        .at(
            std::env::temp_dir().to_string_lossy().as_ref(),
            "create a temp folder",
        )?;
    let path =
        Utf8PathBuf::from_path_buf(temp.path().join("image.tar")).map_err(|p| Error::Invalid {
            path: p.display().to_string(),
            message: "the temp folder's path is not UTF-8".into(),
            help: "set TMPDIR to a UTF-8 path".into(),
        })?;
    let file = std::fs::File::create(&path).at(&path, "create")?;
    let mut builder = tar::Builder::new(file);
    let mut append = |name: &str, blob: &str| -> Result<()> {
        let size = {
            let mut reader = opened.store.open_blob(blob)?;
            std::io::copy(&mut reader, &mut std::io::sink()).at(opened.store.at(blob), "read")?
        };
        let mut header = crate::oci::tar::header(tar::EntryType::Regular, 0o644, 0, size);
        let reader = opened.store.open_blob(blob)?;
        builder
            .append_data(&mut header, name, reader)
            .at(&path, "write")
    };
    append("config.json", &image.config_name)?;
    let mut layers = Vec::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let name = format!("layer{i}.tar");
        append(&name, &layer.name)?;
        layers.push(name);
    }
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [tag],
        "Layers": layers,
    }])
    .to_string();
    let mut header =
        crate::oci::tar::header(tar::EntryType::Regular, 0o644, 0, manifest.len() as u64);
    builder
        .append_data(&mut header, "manifest.json", manifest.as_bytes())
        .at(&path, "write")?;
    builder.into_inner().at(&path, "write")?;
    docker
        .cmd(["load", "--input"])
        .arg(path.as_str())
        .help("the docker engine could not load the image; see its message above")
        .read()?;
    Ok(())
}
