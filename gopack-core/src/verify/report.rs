//! The result of a verification and its three renderings: a table for people,
//! JSON for scripts, and JUnit XML for CI systems.

use crate::check_id::CheckId;
use serde::Serialize;
use std::fmt::Write as _;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The image keeps the promise.
    Pass,
    /// Worth a look, not a failure.
    Warn,
    /// The image breaks the promise: `verify` exits with status 1.
    Fail,
    /// The check does not apply, or could not run.
    Skip,
}

impl Status {
    /// How the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable id, e.g. `elf.static`.
    pub id: CheckId,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// More lines (e.g. the libraries a dynamic binary needs); always
    /// present in JSON (`[]` when there are none).
    pub details: Vec<String>,
    /// What to do about a failure or warning; always present in JSON
    /// (`null` when there is nothing to do).
    pub remedy: Option<String>,
}

impl Check {
    /// A check with a status and a message.
    pub fn new(id: CheckId, status: Status, message: impl Into<String>) -> Check {
        Check {
            id,
            status,
            message: message.into(),
            details: Vec::new(),
            remedy: None,
        }
    }

    /// A passing check.
    pub fn pass(id: CheckId, message: impl Into<String>) -> Check {
        Check::new(id, Status::Pass, message)
    }

    /// A warning.
    pub fn warn(id: CheckId, message: impl Into<String>) -> Check {
        Check::new(id, Status::Warn, message)
    }

    /// A failure.
    pub fn fail(id: CheckId, message: impl Into<String>) -> Check {
        Check::new(id, Status::Fail, message)
    }

    /// A check that does not apply.
    pub fn skip(id: CheckId, message: impl Into<String>) -> Check {
        Check::new(id, Status::Skip, message)
    }

    /// Sets the remedy.
    pub fn remedy(mut self, remedy: impl Into<String>) -> Check {
        self.remedy = Some(remedy.into());
        self
    }

    /// Sets detail lines.
    pub fn details(mut self, details: Vec<String>) -> Check {
        self.details = details;
        self
    }
}

/// The checks of one platform's image.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformReport {
    /// `linux/amd64`, from the image config.
    pub platform: String,
    /// The manifest digest, when the format has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Names (tags) the image carries in the source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The checks, in a stable order.
    pub checks: Vec<Check>,
}

/// Everything `verify` found about one image source.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The source as given (`target/gopack/api/oci`, `docker:api:1.0`).
    pub source: String,
    /// How it was stored (`oci layout`, `docker archive`, ...).
    pub format: String,
    /// The app whose expectations were applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Whether no check failed.
    pub passed: bool,
    /// Checks about the image as a whole (its platforms).
    pub checks: Vec<Check>,
    /// One entry per platform image.
    pub platforms: Vec<PlatformReport>,
}

impl Report {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.all_checks().all(|c| c.status != Status::Fail)
    }

    /// Every check, image-wide first, then platform by platform.
    pub fn all_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .chain(self.platforms.iter().flat_map(|p| p.checks.iter()))
    }

    /// The checks with this id (one per platform, or one image-wide).
    pub fn checks_named<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Check> + 'a {
        self.all_checks().filter(move |c| c.id == id)
    }

    /// Passed, warned, failed and skipped counts.
    pub fn counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for check in self.all_checks() {
            counts[match check.status {
                Status::Pass => 0,
                Status::Warn => 1,
                Status::Fail => 2,
                Status::Skip => 3,
            }] += 1;
        }
        counts
    }

    /// The report as a table, remedies under failures and warnings.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{} ({})", self.source, self.format);
        if let Some(app) = &self.app {
            let _ = write!(out, ", expectations of app `{app}`");
        }
        out.push('\n');
        let width = self
            .all_checks()
            .map(|c| c.id.as_str().len())
            .max()
            .unwrap_or(10)
            .max(10);
        let rows = |out: &mut String, checks: &[Check]| {
            for check in checks {
                let _ = writeln!(
                    out,
                    "    {:<4}  {:<width$}  {}",
                    check.status.label(),
                    check.id,
                    check.message
                );
                let indent = " ".repeat(width + 12);
                for line in &check.details {
                    let _ = writeln!(out, "{indent}{line}");
                }
                if let (Some(remedy), Status::Fail | Status::Warn) = (&check.remedy, check.status) {
                    let _ = writeln!(out, "{indent}help: {remedy}");
                }
            }
        };
        if !self.checks.is_empty() {
            out.push_str("  image\n");
            rows(&mut out, &self.checks);
        }
        for platform in &self.platforms {
            let _ = write!(out, "  {}", platform.platform);
            if let Some(manifest) = &platform.manifest {
                let _ = write!(out, "  {manifest}");
            }
            if !platform.names.is_empty() {
                let _ = write!(out, "  ({})", platform.names.join(", "));
            }
            out.push('\n');
            rows(&mut out, &platform.checks);
        }
        let [pass, warn, fail, skip] = self.counts();
        let _ = writeln!(
            out,
            "  {}: {pass} passed, {warn} warned, {fail} failed, {skip} skipped",
            if fail == 0 { "ok" } else { "FAILED" }
        );
        out
    }
}

/// The reports as JUnit XML: a test suite per image and platform, a test case per check.
pub fn junit(reports: &[Report]) -> String {
    let mut suites = String::new();
    let (mut total, mut failures, mut skipped) = (0, 0, 0);
    for report in reports {
        let mut groups: Vec<(String, &[Check])> = Vec::new();
        if !report.checks.is_empty() {
            groups.push(("image".into(), &report.checks));
        }
        for platform in &report.platforms {
            groups.push((platform.platform.clone(), &platform.checks));
        }
        for (group, checks) in groups {
            let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
            let skips = checks.iter().filter(|c| c.status == Status::Skip).count();
            total += checks.len();
            failures += fails;
            skipped += skips;
            let class = format!(
                "gopack.verify.{}.{}",
                report.app.as_deref().unwrap_or("image"),
                group.replace('/', "_")
            );
            let _ = writeln!(
                suites,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" errors=\"0\" skipped=\"{skips}\">",
                xml(&format!("{} {group}", report.source)),
                checks.len()
            );
            for check in checks {
                let _ = write!(
                    suites,
                    "    <testcase classname=\"{}\" name=\"{}\"",
                    xml(&class),
                    xml(check.id.as_str())
                );
                let mut body = check.message.clone();
                for line in &check.details {
                    body.push('\n');
                    body.push_str(line);
                }
                if let Some(remedy) = &check.remedy {
                    body.push_str("\nhelp: ");
                    body.push_str(remedy);
                }
                match check.status {
                    Status::Pass => suites.push_str("/>\n"),
                    Status::Fail => {
                        let _ = writeln!(
                            suites,
                            ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                            xml(&check.message),
                            xml(check.id.as_str()),
                            xml(&body)
                        );
                    }
                    Status::Skip => {
                        let _ = writeln!(
                            suites,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                            xml(&check.message)
                        );
                    }
                    Status::Warn => {
                        let _ = writeln!(
                            suites,
                            ">\n      <system-out>warning: {}</system-out>\n    </testcase>",
                            xml(&body)
                        );
                    }
                }
            }
            suites.push_str("  </testsuite>\n");
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"gopack verify\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n{suites}</testsuites>\n"
    )
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 forbids.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts() {
        let report = Report {
            source: "a&b".into(),
            format: "oci layout".into(),
            app: None,
            passed: false,
            checks: vec![],
            platforms: vec![PlatformReport {
                platform: "linux/amd64".into(),
                manifest: None,
                names: vec![],
                checks: vec![
                    Check::pass(CheckId::ElfStatic, "static"),
                    Check::fail(CheckId::UserRoot, "runs as <root>\u{1}")
                        .remedy("USER 10001:10001"),
                    Check::skip(CheckId::RunSmoke, "not asked"),
                ],
            }],
        };
        let text = junit(std::slice::from_ref(&report));
        assert!(text.contains("tests=\"3\" failures=\"1\""), "{text}");
        assert!(text.contains("runs as &lt;root&gt;\""), "{text}");
        assert!(!text.contains('\u{1}'));
        assert!(!report.passed());
        assert!(report.table().contains("help: USER 10001:10001"));
    }
}
