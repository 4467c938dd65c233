//! `verify`: check an image against the idioms.
//!
//! `verify [APP]...` checks each app's packed image (`<target>/gopack/<app>/oci`)
//! with the app's config as expectations; `--image REF` checks any image (a
//! layout folder, an archive, or `docker:NAME[:TAG]`), with one APP's
//! expectations when one is named. Exit status 1 when a check fails, 2 when
//! the image cannot be read or the command is wrong.

use super::results::{json_line, write_stdout};
use super::Common;
use crate::error::{Error, IoContext};
use crate::report::Reporter;
use crate::verify::{junit, verify, Expectations, ImageSource, Report, Status, LIMIT_NAMES};
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
    /// archive, or `docker:NAME[:TAG]` from the local engine; with --key, also
    /// `registry://HOST/REPO@DIGEST` (its signatures only).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Only the packed images of the apps whose inputs changed since the git
    /// revision REF (as `pack --since`); nothing when none changed.
    #[arg(long, value_name = "REF", conflicts_with_all = ["apps", "image"])]
    pub since: Option<String>,
    /// Output format (`--json` prints one JSON report per line instead).
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Also write the results as JUnit XML to FILE (for CI).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<Utf8PathBuf>,
    /// Also run the image once in the docker engine (`docker run --rm --network none`).
    #[arg(long)]
    pub run: bool,
    /// Raise or lower one of the budgets verify reads an image within, e.g.
    /// `--limit max-file-size=1GiB` (max-file-size, max-unpacked-size, max-entries,
    /// max-seconds); repeat for several. Overrides the app's `verify.limits`.
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    pub limits: Vec<String>,
    /// Check the image's cosign signatures and attestations with this PEM public key
    /// (`sign.valid`; default: the app's `verify.key`).
    #[arg(long, value_name = "PUB")]
    pub key: Option<Utf8PathBuf>,
    /// List the checks (id, what a finding is with and without an app's
    /// config, the docs) and verify nothing; with --json, one line each.
    #[arg(long, conflicts_with_all = ["apps", "image", "run", "junit", "key"])]
    pub list: bool,
    #[command(flatten)]
    pub common: Common,
}

impl VerifyArgs {
    /// Verifies the image(s); exit status 1 when any check fails. With
    /// `--json`, one report per line on stdout, and a `checks-failed` error
    /// event per failing image on stderr.
    pub fn run(self, reporter: &dyn Reporter) -> Result<ExitCode> {
        if self.list {
            return list(self.common.json);
        }
        let mut targets: Vec<(ImageSource, Expectations)> = Vec::new();
        let key = self
            .key
            .as_deref()
            .map(crate::sign::PublicKey::from_file)
            .transpose()?;
        let mut remote = None;
        match &self.image {
            Some(reference) if reference.starts_with(super::verify_signed::PREFIX) => {
                let key = key.as_ref().ok_or_else(|| Error::Flag {
                    flag: "--image".into(),
                    message: "a registry image is checked for its signatures only".into(),
                    help: "pass --key PUB; for the other checks, verify the layout or archive"
                        .into(),
                })?;
                remote = Some(super::verify_signed::report(
                    reference, key, false, reporter,
                )?);
            }
            Some(reference) => {
                let mut expect = match self.apps.as_slice() {
                    [] => Expectations::default(),
                    [name] => {
                        let workspace = self.common.workspace()?;
                        let app = workspace
                            .select(std::slice::from_ref(name), &Default::default())?
                            .remove(0);
                        let mut expect = Expectations::for_app(&app);
                        expect.sign_key =
                            crate::sign::configured_key(&workspace.root, &app.config.verify)?;
                        expect
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
                let apps = match &self.since {
                    Some(reference) => {
                        super::since_select(&workspace, reference, &Default::default(), reporter)?
                            .into_iter()
                            .map(|(app, _)| app)
                            .collect()
                    }
                    None => workspace.select(&self.apps, &Default::default())?,
                };
                if apps.is_empty() {
                    return Ok(ExitCode::SUCCESS);
                }
                for app in apps {
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
                    expect.sign_key =
                        crate::sign::configured_key(&workspace.root, &app.config.verify)?;
                    expect.run = self.run;
                    targets.push((ImageSource::Path(layout), expect));
                }
            }
        }
        for (_, expect) in &mut targets {
            if key.is_some() {
                expect.sign_key = key.clone();
            }
            for assignment in &self.limits {
                expect
                    .policy
                    .limits
                    .set(assignment)
                    .map_err(|message| Error::Flag {
                        flag: "--limit".into(),
                        message,
                        help: format!(
                            "write NAME=VALUE with NAME one of {}, e.g. --limit max-file-size=1GiB",
                            LIMIT_NAMES.join(", ")
                        ),
                    })?;
            }
        }
        let mut reports: Vec<Report> = remote.into_iter().collect();
        for (source, expect) in &targets {
            reports.push(verify(source, expect)?);
        }
        if self.common.json {
            for report in &reports {
                json_line(report)?;
            }
        } else {
            let text = match self.format {
                OutputFormat::Table => reports.iter().map(Report::table).collect(),
                OutputFormat::Json => {
                    let mut text =
                        serde_json::to_string_pretty(&reports).map_err(|e| Error::Invalid {
                            path: "stdout".into(),
                            message: format!("the report cannot be written as JSON: {e}"),
                            help: "report this as a gopack bug".into(),
                        })?;
                    text.push('\n');
                    text
                }
            };
            write_stdout(&text)?;
        }
        if let Some(path) = &self.junit {
            if let Some(parent) = path.parent().filter(|p| !p.as_str().is_empty()) {
                std::fs::create_dir_all(parent).at(parent, "create")?;
            }
            std::fs::write(path, junit(&reports)).at(path, "write")?;
        }
        let mut code = ExitCode::SUCCESS;
        for report in reports.iter().filter(|r| !r.passed()) {
            code = ExitCode::from(super::CHECKS_FAILED);
            // The table on stdout already shows a person every failure.
            if self.common.json {
                let failed: Vec<&str> = report
                    .all_checks()
                    .filter(|c| c.status == Status::Fail)
                    .map(|c| c.id.as_str())
                    .collect();
                let err = Error::Invalid {
                    path: report.source.clone(),
                    message: format!("the image fails verify: {}", failed.join(", ")),
                    help: "fix the failed checks (each has a remedy in the report), or allow them in the app's `verify` config".into(),
                };
                super::checks_failed(reporter, &err, Some(report));
            }
        }
        Ok(code)
    }
}

/// `verify --list`: every check, what its findings are, where it is documented.
fn list(json: bool) -> Result<ExitCode> {
    use crate::verify::catalog::severity;
    use crate::verify::CheckId;
    let mut text = String::new();
    for id in CheckId::ALL {
        let severity = severity(*id);
        let docs = format!("docs/verify.md#{}", id.docs_anchor());
        if json {
            json_line(&serde_json::json!({
                "id": id.as_str(),
                "with_app": severity.with_app,
                "without_app": severity.without_app,
                "docs": docs,
            }))?;
        } else {
            text.push_str(&format!(
                "{id}\n  with the app's config: {}\n  without (--image alone): {}\n  {docs}\n",
                severity.with_app, severity.without_app
            ));
        }
    }
    if !json {
        text.push_str(
            "\na policy's `allow` turns a check's failures into warnings: it changes nothing for a \
             check that only warns\n",
        );
        write_stdout(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}
