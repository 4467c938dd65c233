//! The zoneinfo check: TZif files (or embedded time/tzdata) when the app
//! loads named zones, and a fixed zone's files when one is configured.

use super::super::elf;
use super::super::layers::{FileBytes, Kind, Node, Tree};
use super::{Check, CheckId, Expectations};
use crate::config::Tzdata;

const ZONEINFO: &str = "/usr/share/zoneinfo";

pub(super) fn zoneinfo_check(
    tree: &Tree,
    binary: Option<&[u8]>,
    expect: &Expectations,
    content: &dyn Fn(&Node) -> Result<FileBytes, String>,
) -> Check {
    let embedded = binary.is_some_and(|b| elf::contains(b, b"time/tzdata."));
    // The function's own name, NUL-terminated as in Go's function name table:
    // time.LoadLocationFromTZData is in nearly every binary and says nothing.
    let loads = binary.is_some_and(|b| elf::contains(b, b"time.LoadLocation\0"));
    let is_tzif = |path: &str| {
        tree.resolve(path)
            .is_some_and(|(_, n)| n.kind == Kind::File && n.head.starts_with(b"TZif"))
    };
    let prefix = format!("{ZONEINFO}/");
    let zones = tree
        .nodes
        .iter()
        .filter(|(p, n)| {
            p.starts_with(&prefix) && n.kind == Kind::File && n.head.starts_with(b"TZif")
        })
        .count();
    let mut problems = Vec::new();
    if expect.tzdata == Some(Tzdata::Embed) && !embedded {
        problems.push(
            "the app's config says tzdata = \"embed\" but the binary does not embed time/tzdata"
                .to_string(),
        );
    }
    if let Some(zone) = &expect.timezone {
        if !embedded && !is_tzif(&format!("{ZONEINFO}/{zone}")) {
            problems.push(format!(
                "the configured timezone {zone} is not a TZif file under {ZONEINFO}"
            ));
        }
        if !is_tzif("/etc/localtime") {
            problems.push(format!("/etc/localtime is not a TZif file for {zone}"));
        }
        let written = tree
            .resolve("/etc/timezone")
            .and_then(|(_, n)| content(n).ok())
            .map(|b| String::from_utf8_lossy(&b).trim().to_string());
        if written.as_deref() != Some(zone.as_str()) {
            problems.push(format!("/etc/timezone does not say {zone}"));
        }
    }
    let files_wanted =
        expect.tzdata == Some(Tzdata::Files) || (expect.tzdata.is_none() && loads && !embedded);
    if zones > 0 && !is_tzif(&format!("{ZONEINFO}/UTC")) && !is_tzif(&format!("{ZONEINFO}/Etc/UTC"))
    {
        problems.push(format!("{ZONEINFO}/UTC is missing or not TZif"));
    }
    if files_wanted && zones == 0 {
        let why = if expect.tzdata == Some(Tzdata::Files) {
            "the app's config says tzdata = true"
        } else {
            "the binary calls time.LoadLocation"
        };
        problems.push(format!("no zoneinfo under {ZONEINFO}, but {why}: LoadLocation will fail with `unknown time zone`"));
    }
    if !problems.is_empty() {
        return Check::fail(CheckId::TzZoneinfo, problems.join("; "))
            .remedy(format!("copy the zoneinfo folder to {ZONEINFO} (gopack: tzdata = true), or build with -tags timetzdata (tzdata = \"embed\")"));
    }
    match (zones, embedded) {
        (0, true) => Check::pass(
            CheckId::TzZoneinfo,
            "zoneinfo is embedded in the binary (time/tzdata)",
        ),
        (0, false) if loads && expect.tzdata == Some(Tzdata::None) => Check::warn(
            CheckId::TzZoneinfo,
            "no zoneinfo, as configured (tzdata = false), though the binary calls time.LoadLocation: only UTC and fixed zones will load",
        )
        .remedy("set tzdata = true, or tzdata = \"embed\", if the app loads named zones"),
        (0, false) => Check::skip(
            CheckId::TzZoneinfo,
            "no zoneinfo, and none needed: the binary does not call time.LoadLocation",
        ),
        (n, embedded) => Check::pass(
            CheckId::TzZoneinfo,
            format!(
                "{n} TZif zone files under {ZONEINFO}{}",
                if embedded {
                    ", and time/tzdata embedded"
                } else {
                    ""
                }
            ),
        ),
    }
}
