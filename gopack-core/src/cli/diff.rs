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
    /// or `docker:NAME[:TAG]` from the local engine.
    #[arg(value_name = "A")]
    pub a: String,
    /// The image after, of the same kinds.
    #[arg(value_name = "B")]
    pub b: String,
    /// Output format (`--json` is `--format json`).
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiffFormat,
    #[command(flatten)]
    pub common: Common,
}

impl DiffArgs {
    /// Compares the two images and prints the comparison.
    pub fn run(self, _reporter: &dyn Reporter) -> Result<ExitCode> {
        let diff = crate::diff::diff(&self.a, &self.b, Limits::default())?;
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
