//! `verify`: reads an image and checks, as facts, what the idioms promise.
//!
//! Works on any image, not only gopack's: an OCI layout or archive, a `docker
//! save` archive, or an image of the local docker engine ([`ImageSource`]).
//! Every platform of a multi-platform index is checked. Expectations come from
//! an app's config ([`Expectations::for_app`]) or, for a foreign image, from the
//! image itself ([`Expectations::default`]).
//!
//! ```no_run
//! use gopack_core::verify::{verify, Expectations, ImageSource};
//! let report = verify(&ImageSource::parse("target/gopack/api/oci"), &Expectations::default())?;
//! print!("{}", report.table());
//! assert!(report.passed());
//! # Ok::<(), gopack_core::Error>(())
//! ```

mod attached;
pub mod catalog;
mod checks;
#[doc(hidden)]
pub mod fuzz;
mod layers;
mod limits;
mod loadable;
mod multicall;
mod paths;
mod report;
mod run;
mod source;
mod store;
mod stream;
mod zstd;

pub use crate::check_id::{CheckId, Family};
pub use crate::config::{ByteSize, Limits, Policy, RunPolicy, LIMIT_NAMES};
pub use crate::goinfo::buildinfo;
pub(crate) use crate::goinfo::elf;
pub use buildinfo::{parse_modinfo, read_build_info, BuildInfo, BuildInfoError, Module};
pub use elf::ElfFacts;
pub use report::{junit, Check, PlatformReport, Report, Status};
pub use source::{Format, ImageSource};

/// The source readers `diff` reads images through: sources, their platform
/// images, and the metered, decompressing tar walk of a layer.
pub(crate) mod read {
    pub(crate) use crate::verify::limits::Metered;
    pub(crate) use crate::verify::source::{FoundImage, Opened};
    pub(crate) use crate::verify::stream::{decompress, for_each_entry};
}

use crate::config::{App, Tzdata, UserConfig};
use crate::platform::Platform;
use crate::Result;
use std::collections::BTreeSet;

/// What an image should be. Unset fields are inferred from the image.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// The app whose config this is; `None` for a foreign image (then some
    /// findings are warnings rather than failures).
    pub app: Option<String>,
    /// The platforms the image must hold (empty: any).
    pub platforms: Vec<Platform>,
    /// The entrypoint binary's path.
    pub binary_path: Option<String>,
    /// The user the image must run as.
    pub user: Option<UserConfig>,
    /// `Some(true)`: a CA bundle must be there; `None`: needed when the binary uses crypto/x509.
    pub certs: Option<bool>,
    /// How zoneinfo is provided; `None`: needed when the binary calls time.LoadLocation.
    pub tzdata: Option<Tzdata>,
    /// A fixed time zone (TZ, /etc/localtime, /etc/timezone).
    pub timezone: Option<String>,
    /// A fixed locale (LANG, LANGUAGE, LC_ALL).
    pub locale: Option<String>,
    /// Budgets, allowed failures and the smoke run.
    pub policy: Policy,
    /// Run the image once in the docker engine (`verify --run`).
    pub run: bool,
    /// The app's cgo setting; `None` for a foreign image.
    pub cgo: Option<crate::config::Cgo>,
    /// The public key every signature and attestation must verify with
    /// (`verify --key`, the policy's `key`); `None`: `sign.valid` is not run.
    pub sign_key: Option<crate::sign::PublicKey>,
}

impl Expectations {
    /// What the app's config promises about its image.
    pub fn for_app(app: &App) -> Expectations {
        let config = &app.config;
        Expectations {
            app: Some(app.name().to_string()),
            platforms: app.platforms(),
            binary_path: Some(app.binary_path()),
            user: Some(config.user.clone()),
            certs: Some(config.certs),
            tzdata: Some(config.tzdata),
            timezone: config.timezone.clone(),
            locale: config.locale.clone(),
            policy: config.verify.clone(),
            run: false,
            cgo: Some(config.cgo),
            sign_key: None,
        }
    }
}

/// Reads the image and runs every check on every platform it holds.
///
/// `Err` means the image could not be read at all; a broken promise is a
/// failed check in the [`Report`] (see [`Report::passed`]).
pub fn verify(source: &ImageSource, expect: &Expectations) -> Result<Report> {
    verify_parts(source, expect, true, true)
}

/// [`verify`] of each image's own content (config and layers) and its
/// platforms only: for a layout of the image without its attachments, read
/// while they are made ([`verify_attachments`] checks them later).
pub fn verify_content(source: &ImageSource, expect: &Expectations) -> Result<Report> {
    verify_parts(source, expect, true, false)
}

/// [`verify`] without the checks of each image's own content (its config and
/// layers, the part that reads every layer): for an image whose content
/// passed them before with the same expectations, as `pack` remembers by
/// image digest. Its attachments (SBOM, provenance), signatures and
/// platforms, which are not part of the image digest, are checked as
/// [`verify`] checks them.
pub fn verify_attachments(source: &ImageSource, expect: &Expectations) -> Result<Report> {
    verify_parts(source, expect, false, true)
}

fn verify_parts(
    source: &ImageSource,
    expect: &Expectations,
    content: bool,
    attached: bool,
) -> Result<Report> {
    let opened = source::Opened::open(source, expect.policy.limits)?;
    let images = opened.images()?;
    let mut platforms = Vec::new();
    for image in &images {
        let mut checks = if content {
            checks::check_image(&opened, image, expect)
        } else {
            Vec::new()
        };
        if attached {
            checks.extend(attached::checks(&opened, image, expect));
            if let Some(key) = &expect.sign_key {
                checks.push(checks::sign::check_platform(&opened, image, key));
            }
        }
        if expect.run {
            let escapes = checks.iter().any(|c| {
                c.id == CheckId::FsPaths
                    && c.status == Status::Fail
                    && !expect.policy.allows(CheckId::FsPaths)
            });
            checks.push(if escapes {
                // Loading the image would have the engine unpack those entries.
                Check::skip(
                    CheckId::RunSmoke,
                    "not run: fs.paths found entries that reach outside the image root",
                )
            } else {
                let policy = expect.policy.run.clone().unwrap_or_default();
                run::smoke_run(source, &opened, image, &policy)
            });
        }
        platforms.push(PlatformReport {
            platform: image.platform(),
            manifest: image.manifest_digest.clone(),
            names: image.names.clone(),
            checks: checks
                .into_iter()
                .map(|c| allow(c, &expect.policy))
                .collect(),
        });
    }
    let found: Vec<String> = images.iter().map(|i| i.platform()).collect();
    let mut image_checks = vec![allow(
        platforms_check(source, &found, expect),
        &expect.policy,
    )];
    if let (true, Some(key)) = (attached, &expect.sign_key) {
        for check in checks::sign::check_indexes(&opened, key) {
            image_checks.push(allow(check, &expect.policy));
        }
    }
    let mut report = Report {
        source: source.to_string(),
        format: match source {
            ImageSource::Docker(_) => "docker engine".to_string(),
            ImageSource::Path(_) => opened.format.name().to_string(),
        },
        app: expect.app.clone(),
        passed: false,
        checks: image_checks,
        platforms,
    };
    report.passed = report.passed();
    Ok(report)
}

/// A failure the policy allows becomes a warning.
fn allow(mut check: Check, policy: &Policy) -> Check {
    if check.status == Status::Fail && policy.allows(check.id) {
        check.status = Status::Warn;
        check.message.push_str(" (allowed by verify.allow)");
    }
    check
}

fn platforms_check(source: &ImageSource, found: &[String], expect: &Expectations) -> Check {
    let found_set: BTreeSet<&str> = found.iter().map(String::as_str).collect();
    let listed = found.join(", ");
    if found.len() != found_set.len() {
        return Check::warn(
            CheckId::ImagePlatforms,
            format!("a platform appears more than once: {listed}"),
        )
        .remedy("keep one manifest per platform in the index");
    }
    if expect.platforms.is_empty() {
        return Check::pass(CheckId::ImagePlatforms, listed);
    }
    let wanted: Vec<String> = expect.platforms.iter().map(|p| p.to_string()).collect();
    let extra: Vec<&str> = found_set
        .iter()
        .filter(|p| !wanted.iter().any(|w| w == *p))
        .copied()
        .collect();
    // An engine holds one platform of an image; the others are not missing.
    let missing: Vec<&str> = match source {
        ImageSource::Docker(_) => Vec::new(),
        ImageSource::Path(_) => wanted
            .iter()
            .map(String::as_str)
            .filter(|w| !found_set.contains(w))
            .collect(),
    };
    if extra.is_empty() && missing.is_empty() {
        Check::pass(CheckId::ImagePlatforms, format!("{listed}, as configured"))
    } else {
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            problems.push(format!("not configured: {}", extra.join(", ")));
        }
        Check::fail(
            CheckId::ImagePlatforms,
            format!(
                "{listed}; configured {}: {}",
                wanted.join(", "),
                problems.join("; ")
            ),
        )
        .remedy("pack the app again so the image holds exactly the configured platforms")
    }
}
