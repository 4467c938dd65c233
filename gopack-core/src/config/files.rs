//! `files = [{ src = "config/default.yaml", dst = "/etc/api/config.yaml",
//! mode = "0444" }, { src = "static/", dst = "/srv/static/" }]`: extra files
//! for the app layer, checked when the config is read.
//!
//! `src` is relative to the app's folder and read only beneath its root (the
//! app's folder, or the workspace's `files-root`), see [`super::confine`]: an
//! absolute `src`, one whose `..` climbs out, and one that reaches out through a
//! symlink are refused. A folder is copied with everything in it. Files are
//! owned by root and readable by everyone, never writable by the app user; a
//! `dst` that would shadow gopack's own files (accounts, CA bundle, zoneinfo,
//! `/tmp`, the binary) or that contains `..` is refused.

use super::confine::{normalize_beneath, resolve, Kind, Refused, Resolved};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

/// One `files` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    /// A file or folder, relative to the app's folder.
    pub src: Utf8PathBuf,
    /// Where it goes in the image: an absolute path (a folder when it ends with `/`).
    pub dst: String,
    /// Octal permission bits of the files, e.g. `"0444"`; default `"0644"`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// Paths gopack writes itself, relative to `/`; a `dst` may not be or be inside one.
const RESERVED: &[&str] = &[
    "etc/passwd",
    "etc/group",
    "etc/ssl/certs/ca-certificates.crt",
    "etc/localtime",
    "etc/timezone",
    "usr/share/zoneinfo",
    "tmp",
];

pub(crate) const DEFAULT_MODE: u32 = 0o644;

/// Where `files` sources are read from: `root`, which they may not leave, and
/// the app's folder as a path beneath it (`prefix`, empty when the root is the
/// app's folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRoot {
    /// The folder no source may leave.
    pub root: Utf8PathBuf,
    /// The app's folder, relative to `root`.
    pub prefix: Utf8PathBuf,
}

/// The help line of a `src` that leaves its root.
pub const SRC_HELP: &str = "write a file or folder inside the app's `path` (a relative path without `..` out of it and without symlinks that lead out); to share files between apps, set `files-root` in [workspace.metadata.gopack] to a folder of the workspace that holds them; to ship a file from elsewhere, copy it into the workspace first";

impl SourceRoot {
    /// Resolves `src` beneath the root; the real path and what it is.
    pub fn resolve(&self, src: &Utf8Path) -> Result<Resolved, Refused> {
        // Checked as text first: `..` counts from the app's folder, and may not leave the root.
        normalize_beneath(&self.prefix.join(src))?;
        if src.is_absolute() {
            return Err(Refused::Escapes("is an absolute path".into()));
        }
        resolve(&self.root, &self.prefix.join(src), true)
    }
}

/// Checks every entry; on failure the field (`files[1].dst`), why, and the fix.
pub fn check(
    files: &[FileConfig],
    sources: &SourceRoot,
    binary_path: &str,
) -> std::result::Result<(), (String, String, &'static str)> {
    for (index, file) in files.iter().enumerate() {
        let field = |name: &str| format!("files[{index}].{name}");
        let dst = file.dst.as_str();
        if !dst.starts_with('/') || dst.split('/').any(|c| c == "..") || dst.contains('\0') {
            return Err((
                field("dst"),
                format!("`{dst}` is not an absolute path without `..`"),
                "write where the file goes in the image, e.g. \"/etc/api/config.yaml\"",
            ));
        }
        if let Some(owner) = shadows(dst, binary_path) {
            return Err((
                field("dst"),
                format!("`{dst}` would shadow {owner}, which gopack writes"),
                "put the file somewhere else, e.g. under /etc/<app>/ or /srv/",
            ));
        }
        if let Some(mode) = &file.mode {
            parse_mode(mode).map_err(|message| {
                (
                    field("mode"),
                    message,
                    "write octal bits readable by everyone and writable by nobody but root, e.g. \"0444\" or \"0644\" (\"0755\" for programs)",
                )
            })?;
        }
        match sources.resolve(&file.src) {
            Ok(Resolved {
                kind: Kind::File | Kind::Dir,
                ..
            }) => {}
            Ok(Resolved { path, kind }) => {
                return Err((
                    field("src"),
                    format!("`{}` is {} ({path}), not a file or folder", file.src, kind.describe()),
                    "point `src` at a regular file or a folder; FIFOs, sockets and devices are never read",
                ))
            }
            Err(Refused::Missing) => {
                return Err((
                    field("src"),
                    format!(
                        "`{}` does not exist (looked for {})",
                        file.src,
                        sources.root.join(&sources.prefix).join(&file.src)
                    ),
                    "write a file or folder relative to the app's `path`",
                ))
            }
            Err(refused) => {
                return Err((field("src"), format!("`{}` {refused}", file.src), SRC_HELP))
            }
        }
    }
    Ok(())
}

/// What `dst` would shadow, if anything.
pub(crate) fn shadows(dst: &str, binary_path: &str) -> Option<String> {
    let path = dst.trim_matches('/');
    if path.is_empty() {
        return Some("the root folder".into());
    }
    let binary = binary_path.trim_start_matches('/');
    let hit = |owned: &str| path == owned || path.starts_with(&format!("{owned}/"));
    RESERVED
        .iter()
        .find(|owned| hit(owned))
        .map(|owned| format!("/{owned}"))
        .or_else(|| hit(binary).then(|| format!("the binary /{binary}")))
}

/// `"0444"` → 0o444, refusing bits that let the app user write or gain privileges.
pub(crate) fn parse_mode(text: &str) -> std::result::Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("`{text}` is not an octal mode"))?;
    if mode & 0o7000 != 0 {
        return Err(format!("`{text}` sets setuid, setgid or sticky bits"));
    }
    if mode & 0o022 != 0 {
        return Err(format!("`{text}` lets the app user write the file"));
    }
    if mode & 0o004 == 0 {
        return Err(format!("`{text}` does not let the app user read the file"));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_of(dir: &Utf8Path) -> SourceRoot {
        SourceRoot {
            root: dir.to_path_buf(),
            prefix: Utf8PathBuf::new(),
        }
    }

    #[test]
    fn refused_destinations_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let app_dir = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::write(app_dir.join("a.yaml"), "x").unwrap();
        let check_one = |dst: &str, mode: Option<&str>| {
            let file = FileConfig {
                src: "a.yaml".into(),
                dst: dst.into(),
                mode: mode.map(str::to_string),
            };
            check(&[file], &root_of(app_dir), "/go/bin/api")
                .err()
                .map(|(f, m, _)| format!("{f}: {m}"))
        };
        assert_eq!(check_one("/etc/api/a.yaml", Some("0444")), None);
        for (dst, expect) in [
            ("/etc/passwd", "/etc/passwd"),
            ("/etc/group/", "/etc/group"),
            ("/etc/ssl/certs/ca-certificates.crt", "ca-certificates"),
            ("/usr/share/zoneinfo/UTC", "zoneinfo"),
            ("/tmp/x", "/tmp"),
            ("/go/bin/api", "the binary"),
            ("/", "root folder"),
            ("/srv/../etc/x", ".."),
            ("etc/x", "absolute"),
        ] {
            let err = check_one(dst, None).unwrap_or_default();
            assert!(
                err.contains("files[0].dst") && err.contains(expect),
                "{dst}: {err}"
            );
        }
        for (mode, expect) in [
            ("0666", "write"),
            ("4755", "setuid"),
            ("0640", "read"),
            ("9", "octal"),
        ] {
            let err = check_one("/srv/a", Some(mode)).unwrap_or_default();
            assert!(
                err.contains("files[0].mode") && err.contains(expect),
                "{mode}: {err}"
            );
        }
        let missing = FileConfig {
            src: "nope".into(),
            dst: "/srv/x".into(),
            mode: None,
        };
        let (field, message, _) = check(&[missing], &root_of(app_dir), "/go/bin/api").unwrap_err();
        assert_eq!(field, "files[0].src");
        assert!(message.contains("does not exist"), "{message}");
    }
}
