//! What a run made, on stdout. With `--json`: one JSON line per app (the
//! schema is in docs/ci.md). Without: a few lines a person reads — the app,
//! its version and full digest (not a reference: nothing can be pulled by
//! it), its tags, where the files are, which files made the version
//! `-dirty`, and the command to run next.

use crate::{Error, Result};
use serde::Serialize;
use std::fmt::Write as _;

/// One platform of a packed image.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformResult {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The platform's manifest digest (`sha256:<64 hex>`); `null` for the docker engine.
    pub digest: Option<String>,
}

/// An app that failed while others of the run went on: its line of `pack
/// --json` (the error itself is also an `error` event on stderr).
#[derive(Debug, Clone, Serialize)]
pub struct FailedResult {
    /// The app's name.
    pub name: String,
    /// `checks-failed` (verify failed: nothing was loaded or pushed) or the
    /// error's code.
    pub failed: String,
    /// What went wrong.
    pub message: String,
}

impl FailedResult {
    /// The line of `app`, which failed with `err`; `checks` when verify failed.
    pub fn of(app: &str, err: &Error, checks: bool) -> FailedResult {
        FailedResult {
            name: app.to_string(),
            failed: if checks { "checks-failed" } else { err.code() }.to_string(),
            message: err.message(),
        }
    }
}

/// One packed app: a line of `pack --json`.
#[derive(Debug, Clone, Serialize)]
pub struct PackResult {
    /// The app's name (the image's repository).
    pub name: String,
    /// `oci` or `docker`.
    pub engine: String,
    /// The app's version.
    pub version: String,
    /// The image's tags.
    pub tags: Vec<String>,
    /// The image's digest (`sha256:<64 hex>`: the index's, or the single
    /// manifest's); `null` for the docker engine, whose image is in the engine.
    pub digest: Option<String>,
    /// The docker engine's image id (`sha256:<64 hex>`); `null` for the oci engine.
    pub image_id: Option<String>,
    /// Every platform with its manifest digest.
    pub platforms: Vec<PlatformResult>,
    /// The OCI layout folder (oci engine).
    pub layout: Option<String>,
    /// The archive for `docker load` and skopeo (oci engine).
    pub archive: Option<String>,
    /// `name:tag` references in the local docker engine (`--load`, or the docker engine).
    pub loaded: Vec<String>,
    /// `registry/name@sha256:...` references (`--push`).
    pub pushed: Vec<String>,
    /// The files whose uncommitted changes made the version `-dirty`.
    pub dirty: Vec<String>,
    /// `passed` (checked by this run, or an identical image earlier) or
    /// `skipped` (`--no-verify`); a failed verify ends the run with an error.
    pub verify: String,
    /// The image's exposed ports (`8080/tcp`), for the `docker run` hint.
    #[serde(skip)]
    pub expose: Vec<String>,
}

impl PackResult {
    /// The result line of what the pipeline shipped.
    pub fn of(shipped: &crate::pipeline::Shipped, expose: &[String]) -> PackResult {
        PackResult {
            name: shipped.app.clone(),
            engine: shipped.engine.to_string(),
            version: shipped.metadata.version.clone(),
            tags: shipped.tags.clone(),
            digest: shipped.digest.clone(),
            image_id: shipped.image_id.clone(),
            platforms: shipped
                .platforms
                .iter()
                .map(|(platform, digest)| PlatformResult {
                    platform: platform.clone(),
                    digest: digest.clone(),
                })
                .collect(),
            layout: shipped.outputs.as_ref().map(|o| o.layout.to_string()),
            archive: shipped.outputs.as_ref().map(|o| o.archive.to_string()),
            loaded: shipped.loaded.clone(),
            pushed: shipped.pushed.clone(),
            dirty: shipped.metadata.dirty.clone(),
            verify: shipped.verified.as_str().into(),
            expose: expose.to_vec(),
        }
    }
}

/// One binary of a built app.
#[derive(Debug, Clone, Serialize)]
pub struct BinaryResult {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Where the binary is.
    pub path: String,
    /// Its digest, `sha256:<64 hex>`.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One built app: a line of `build --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BuildResult {
    /// The app's name.
    pub name: String,
    /// The version stamped into the binaries.
    pub version: String,
    /// One binary per platform.
    pub binaries: Vec<BinaryResult>,
}

/// Writes `value` as one JSON line on stdout.
pub(super) fn json_line(value: &impl Serialize) -> Result<()> {
    let line = serde_json::to_string(value).map_err(|e| Error::Invalid {
        path: "stdout".into(),
        message: format!("the result cannot be written as JSON: {e}"),
        help: "report this as a gopack bug".into(),
    })?;
    write_stdout(&format!("{line}\n"))
}

/// Writes text on stdout; a reader that went away (`pack | head -1`) is not
/// an error: the rest is dropped quietly and the exit status still tells the result.
pub(super) fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("stdout", "write", e))
        }
        _ => Ok(()),
    }
}

impl PackResult {
    /// The lines a person reads after a pack: what was made, where, and what to do next.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let id = self.digest.as_deref().or(self.image_id.as_deref());
        let _ = writeln!(
            out,
            "{} {}  {}",
            self.name,
            self.version,
            id.unwrap_or_default()
        );
        let _ = writeln!(out, "  tags      {}", self.tags.join(", "));
        let platforms: Vec<&str> = self.platforms.iter().map(|p| p.platform.as_str()).collect();
        let _ = writeln!(out, "  platforms {}", platforms.join(", "));
        if let Some(layout) = &self.layout {
            let _ = writeln!(out, "  layout    {layout}");
        }
        if let Some(archive) = &self.archive {
            let _ = writeln!(out, "  archive   {archive}");
        }
        let _ = writeln!(out, "  verify    {}", self.verify);
        if !self.dirty.is_empty() {
            let _ = writeln!(
                out,
                "  dirty     {} (uncommitted changes: {})",
                self.version,
                self.dirty.join(", ")
            );
        }
        for reference in &self.pushed {
            let _ = writeln!(out, "  pushed    {reference}");
        }
        let next = if let Some(reference) = self.pushed.first() {
            format!("docker pull {reference}")
        } else if let Some(tag) = self.loaded.first() {
            let ports: String = self.expose.iter().map(|port| publish_flag(port)).collect();
            format!("docker run --rm{ports} {tag}")
        } else if let Some(archive) = &self.archive {
            format!("docker load -i {archive}")
        } else {
            String::new()
        };
        if !next.is_empty() {
            let _ = writeln!(out, "  next      {next}");
        }
        out
    }
}

/// ` -p 8080:8080` for `8080/tcp`, ` -p 53:53/udp` for `53/udp`.
fn publish_flag(port: &str) -> String {
    match port.split_once('/') {
        None | Some((_, "tcp")) => {
            let number = port.split('/').next().unwrap_or_default();
            format!(" -p {number}:{number}")
        }
        Some((number, protocol)) => format!(" -p {number}:{number}/{protocol}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed() -> PackResult {
        PackResult {
            name: "api".into(),
            engine: "oci".into(),
            version: "1.4.0-dirty".into(),
            tags: vec!["1.4.0-dirty".into(), "latest".into()],
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            image_id: None,
            platforms: vec![PlatformResult {
                platform: "linux/amd64".into(),
                digest: Some(format!("sha256:{}", "b".repeat(64))),
            }],
            layout: Some("target/gopack/api/oci".into()),
            archive: Some("target/gopack/api/api.tar".into()),
            loaded: vec![],
            pushed: vec![],
            dirty: vec!["services/api/main.go".into()],
            verify: "passed".into(),
            expose: vec!["8080/tcp".into(), "53/udp".into()],
        }
    }

    #[test]
    fn a_person_reads_the_version_the_full_digest_and_the_next_command() {
        let text = packed().text();
        let first = text.lines().next().unwrap();
        assert_eq!(first, format!("api 1.4.0-dirty  sha256:{}", "a".repeat(64)));
        assert!(!text.contains('@'), "{text}");
        assert!(text.contains("services/api/main.go"), "{text}");
        assert!(text.ends_with("  next      docker load -i target/gopack/api/api.tar\n"));
        let mut loaded = packed();
        loaded.loaded = vec!["api:1.4.0-dirty".into()];
        assert!(loaded
            .text()
            .ends_with("next      docker run --rm -p 8080:8080 -p 53:53/udp api:1.4.0-dirty\n"));
        assert!(text.contains("  verify    passed\n"), "{text}");
        let mut pushed = loaded.clone();
        pushed.pushed = vec![format!("ghcr.io/acme/api@sha256:{}", "a".repeat(64))];
        assert!(pushed
            .text()
            .contains("next      docker pull ghcr.io/acme/api@sha256:"));
    }
}
