//! `diff A B`: what differs between two images (files, config, layers, pull
//! size), per platform; exit 0 when they are the same, 1 when they differ,
//! 2 on an error.

use super::results::{json_line, write_stdout};
use super::Common;
use crate::config::Limits;
use crate::report::Reporter;
use crate::Result;
use std::process::ExitCode;

/// How `diff` prints the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DiffFormat {
    /// Lines for a terminal.
    #[default]
    Text,
    /// GitHub-flavoured Markdown, for a pull request comment.
    Markdown,
    /// One JSON document (as `--json`).
    Json,
}

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The image before: an OCI layout folder, an OCI or `docker save` archive,
    /// `docker:NAME[:TAG]` from the local engine, or
    /// `registry://HOST[:PORT]/REPOSITORY:TAG` (or `@sha256:...`), copied
    /// into a temporary layout first.
    #[arg(value_name = "A")]
    pub a: String,
    /// The image after, of the same kinds.
    #[arg(value_name = "B")]
    pub b: String,
    /// Speak plain HTTP to registries (loopback registries always do).
    #[arg(long)]
    pub insecure_registry: bool,
    /// Output format (`--json` is `--format json`).
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiffFormat,
    #[command(flatten)]
    pub common: Common,
}

impl DiffArgs {
    /// Compares the two images and prints the comparison.
    pub fn run(self, reporter: &dyn Reporter) -> Result<ExitCode> {
        let limits = Limits::default();
        let scratch = tempfile::Builder::new()
            .prefix("gopack-diff-")
            .tempdir()
            .map_err(|e| {
                crate::Error::io(
                    std::env::temp_dir().display().to_string(),
                    "create a folder in",
                    e,
                )
            })?;
        let local = |name: &str, text: &str| -> Result<String> {
            if !text.starts_with(super::verify_signed::PREFIX) {
                return Ok(text.to_string());
            }
            let dir =
                camino::Utf8PathBuf::from_path_buf(scratch.path().join(name)).map_err(|p| {
                    crate::Error::Invalid {
                        path: p.display().to_string(),
                        message: "the temporary folder's path is not UTF-8".into(),
                        help: "set TMPDIR to a folder with a UTF-8 path".into(),
                    }
                })?;
            pull(
                text,
                self.insecure_registry,
                &dir,
                limits.max_unpacked_size.0,
                reporter,
            )?;
            Ok(dir.to_string())
        };
        let (a, b) = (local("a", &self.a)?, local("b", &self.b)?);
        let mut diff = crate::diff::diff(&a, &b, limits)?;
        // Named as the user named them, not by the temporary copies.
        diff.a = self.a.clone();
        diff.b = self.b.clone();
        if self.common.json || self.format == DiffFormat::Json {
            json_line(&diff)?;
        } else if self.format == DiffFormat::Markdown {
            write_stdout(&diff.markdown())?;
        } else {
            write_stdout(&diff.text())?;
        }
        Ok(if diff.equal {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(super::CHECKS_FAILED)
        })
    }
}

/// Copies the registry image `reference` into the layout folder `dir`, with
/// the credentials `--push` would use, at most `budget` bytes.
fn pull(
    reference: &str,
    insecure: bool,
    dir: &camino::Utf8Path,
    budget: u64,
    reporter: &dyn Reporter,
) -> Result<()> {
    let (target, version) = super::verify_signed::parse(reference, insecure)?;
    let credentials = crate::registry::credentials::lookup(&target.host)?;
    let cache_dir = dir.with_extension("cache");
    let cache = crate::cache::Cache::open(cache_dir)?;
    let access = crate::registry::Access {
        push: false,
        ..crate::registry::Access::default()
    };
    let client = crate::registry::Pusher::with_access(
        target,
        crate::registry::Connection::default(),
        credentials,
        access,
        &cache,
        reporter,
    )?;
    crate::registry::pull::pull_to_layout(&client, &version, dir, budget)?;
    Ok(())
}
