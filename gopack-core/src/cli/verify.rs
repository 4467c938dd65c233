//! `verify`: check an image against the idioms.
//!
//! `verify [APP]...` checks each app's packed image (`<target>/gopack/<app>/oci`)
//! with the app's config as expectations; `--image REF` checks any image (a
//! layout folder, an archive, or `docker:NAME[:TAG]`), with one APP's
//! expectations when one is named. Exit status 1 when a check fails.

use super::Common;
use crate::error::{Error, IoContext};
use crate::verify::{junit, verify, Expectations, ImageSource, Report};
use crate::Result;
use camino::Utf8PathBuf;
use std::process::ExitCode;

/// How the results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// JSON: a list of reports.
    Json,
}

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Apps whose packed images to verify (default: all of them, unless --image is given).
    #[arg(value_name = "APP")]
    pub apps: Vec<String>,
    /// Verify this image instead: an OCI layout folder, an OCI or `docker save`
    /// archive, or `docker:NAME[:TAG]` from the local engine.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Also write the results as JUnit XML to FILE (for CI).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<Utf8PathBuf>,
    /// Also run the image once in the docker engine (`docker run --rm --network none`).
    #[arg(long)]
    pub run: bool,
    #[command(flatten)]
    pub common: Common,
}

impl VerifyArgs {
    /// Verifies the image(s); exit status 1 when any check fails.
    pub fn run(self) -> Result<ExitCode> {
        let mut targets: Vec<(ImageSource, Expectations)> = Vec::new();
        match &self.image {
            Some(reference) => {
                let mut expect = match self.apps.as_slice() {
                    [] => Expectations::default(),
                    [name] => {
                        let workspace = self.common.workspace()?;
                        let app = workspace
                            .select(std::slice::from_ref(name), &Default::default())?
                            .remove(0);
                        Expectations::for_app(&app)
                    }
                    _ => {
                        return Err(Error::Flag {
                            flag: "--image".into(),
                            message: "one image takes the expectations of at most one app".into(),
                            help: "name one APP with --image, or drop --image to verify each app's packed image".into(),
                        })
                    }
                };
                expect.run = self.run;
                targets.push((ImageSource::parse(reference), expect));
            }
            None => {
                let workspace = self.common.workspace()?;
                for app in workspace.select(&self.apps, &Default::default())? {
                    let layout = workspace.out_dir().join(app.name()).join("oci");
                    if !layout.join("index.json").is_file() {
                        return Err(Error::Invalid {
                            path: layout.to_string(),
                            message: format!("app `{}` has no packed image here", app.name()),
                            help: format!(
                                "run `cargo xtask pack {}` first, or pass --image REF",
                                app.name()
                            ),
                        });
                    }
                    let mut expect = Expectations::for_app(&app);
                    expect.run = self.run;
                    targets.push((ImageSource::Path(layout), expect));
                }
            }
        }
        let mut reports: Vec<Report> = Vec::new();
        for (source, expect) in &targets {
            reports.push(verify(source, expect)?);
        }
        match self.format {
            OutputFormat::Table => {
                for report in &reports {
                    print!("{}", report.table());
                }
            }
            OutputFormat::Json => {
                let text = serde_json::to_string_pretty(&reports).map_err(|e| Error::Invalid {
                    path: "stdout".into(),
                    message: format!("the report cannot be written as JSON: {e}"),
                    help: "report this as a gopack bug".into(),
                })?;
                println!("{text}");
            }
        }
        if let Some(path) = &self.junit {
            if let Some(parent) = path.parent().filter(|p| !p.as_str().is_empty()) {
                std::fs::create_dir_all(parent).at(parent, "create")?;
            }
            std::fs::write(path, junit(&reports)).at(path, "write")?;
        }
        Ok(if reports.iter().all(Report::passed) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
