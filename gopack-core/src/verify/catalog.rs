//! What a finding of each check is: a failure (exit 1) or a warning, with the
//! app's config as expectations (`verify APP`, `pack`) and without it
//! (`verify --image REF` alone). `verify --list` prints this table, and
//! docs/verify.md's check table carries the same two columns (a test keeps
//! them equal). A policy's `allow` turns failures into warnings, so it
//! changes nothing for a check that only warns.

use crate::check_id::CheckId;

/// The severity of a check's findings with and without the app's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Severity {
    /// With the app's config.
    pub with_app: &'static str,
    /// Without it (a foreign image, `verify --image REF`).
    pub without_app: &'static str,
}

const fn same(text: &'static str) -> Severity {
    Severity {
        with_app: text,
        without_app: text,
    }
}

const fn differ(with_app: &'static str, without_app: &'static str) -> Severity {
    Severity {
        with_app,
        without_app,
    }
}

/// The severity of `id`'s findings.
pub fn severity(id: CheckId) -> Severity {
    use CheckId::*;
    match id {
        ImagePlatforms => differ(
            "fails (a platform missing or not configured); warns (one listed twice)",
            "warns (a platform listed twice)",
        ),
        BlobsDigest
        | LayersCount
        | ImageSize
        | ConfigEntrypoint
        | EntrypointExists
        | EntrypointPermissions
        | ElfLoadable
        | FsPaths
        | FsShell
        | FsSetuid
        | FsWorldWritable => same("fails"),
        ElfStatic => differ(
            "fails; skipped for `cgo = \"dynamic\"`",
            "fails; skipped for an image with gopack's `io.gopack.cgo.libraries` label",
        ),
        ElfMachine | GoPlatform => same("fails; warns when the platform is unknown"),
        ElfStripped => differ("fails", "warns"),
        GoBuildinfo | GoTrimpath => same("warns"),
        GoCgo => same("fails (dynamic, cgo not asked for); warns (CGO_ENABLED=1, static)"),
        GoRevision => same("fails (another revision); warns (uncommitted changes)"),
        UserNumeric => same("fails (names); warns (no group, and none in /etc/passwd)"),
        UserRoot => same("fails (uid 0); warns (gid 0, unknown group)"),
        UserPasswd => differ(
            "fails (not the app's user, or missing); warns (no /etc/group)",
            "fails (missing); warns (no /etc/group)",
        ),
        CertsBundle => differ(
            "fails (missing or empty with `certs = true`); warns (undecodable blocks)",
            "fails (missing or empty when the binary uses crypto/x509); warns (undecodable blocks)",
        ),
        TzZoneinfo => differ(
            "fails (missing with `tzdata = true`)",
            "fails (missing when the binary calls time.LoadLocation)",
        ),
        ConfigEnv => differ("fails", "warns"),
        RunSmoke => same("fails (only with `--run`)"),
        SbomPresent | ProvenancePresent => differ(
            "fails with the policy's `require`; else skipped when absent",
            "skipped when absent",
        ),
        SignValid => same("fails (only with a key)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/verify.md's check table has the same severities as `verify --list`.
    #[test]
    fn docs_table_matches() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/verify.md");
        let text = std::fs::read_to_string(path).unwrap();
        for id in CheckId::ALL {
            let anchor = format!("<a id=\"{}\"></a>`{id}`", id.docs_anchor());
            let row = text
                .lines()
                .find(|l| l.contains(&anchor))
                .unwrap_or_else(|| panic!("no row for {id} in docs/verify.md"));
            let cells: Vec<&str> = row.split(" | ").map(str::trim).collect();
            let wanted = severity(*id);
            assert_eq!(
                cells.get(2).copied(),
                Some(wanted.with_app),
                "{id}: docs/verify.md says {:?} with an app",
                cells.get(2)
            );
            assert_eq!(
                cells.get(3).map(|c| c.trim_end_matches('|').trim()),
                Some(wanted.without_app),
                "{id}: docs/verify.md says {:?} without an app",
                cells.get(3)
            );
        }
    }
}
