//! The final stage's root filesystem, generated rather than copied from a
//! base image: passwd and group with root, nobody and the app user, the CA
//! bundle, zoneinfo, an optional fixed time zone, `/tmp` (1777), and the
//! binary. Split in two: the base (shared by every app with the same
//! settings) and the app (the binary).

use crate::config::{confine, host_file_help, App, Tzdata};
use crate::error::{Error, IoContext, Result};
pub use crate::oci::tree::{Content, Entry, Tree};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;

/// Where images get the CA bundle.
pub const CA_BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// Where images get zoneinfo.
pub const ZONEINFO_PATH: &str = "usr/share/zoneinfo";

/// The time of every base-layer entry: the Unix epoch, whatever the app's
/// commit time or `SOURCE_DATE_EPOCH`. The base layer is shared by every app
/// with the same settings, so its digest may depend on nothing of one app.
pub const BASE_EPOCH: u64 = 0;

/// Host CA bundles, in the order distributions put them.
const HOST_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Zoneinfo entries left out: leap-second variants and Debian's link to /etc/localtime.
const ZONEINFO_SKIP: &[&str] = &["right", "localtime", "posixrules"];

/// The base layer's tree for an app's settings: accounts, certs, zoneinfo, /tmp.
pub fn base_tree(app: &App, workspace_root: &Utf8Path) -> Result<Tree> {
    let config = &app.config;
    let user = &config.user;
    let mut tree = Tree::default();
    tree.dir("etc", 0o755);
    tree.file(
        "etc/passwd",
        0o644,
        Content::Bytes(passwd(&user.name, user.uid, user.gid()).into_bytes()),
    );
    tree.file(
        "etc/group",
        0o644,
        Content::Bytes(group(&user.name, user.gid()).into_bytes()),
    );
    tree.dir("tmp", 0o1777);

    if config.certs {
        let bundle = match &config.ca_bundle {
            Some(path) => match confine::resolve(workspace_root, path, true) {
                Ok(resolved) if resolved.kind == confine::Kind::File => resolved.path,
                Ok(resolved) => {
                    return Err(app_error(
                        app,
                        "ca-bundle",
                        format!("`{path}` is {}, not a file", resolved.kind.describe()),
                        "point ca-bundle at a PEM file of CA certificates, or remove it to use the host's bundle",
                    ))
                }
                Err(refused) => {
                    return Err(app_error(
                        app,
                        "ca-bundle",
                        format!("`{path}` {refused}"),
                        &host_file_help("ca-bundle"),
                    ))
                }
            },
            None => host_ca_bundle()?,
        };
        tree.file(CA_BUNDLE_PATH, 0o644, Content::Host(bundle));
    }

    if config.tzdata == Tzdata::Files {
        let source = zoneinfo_source(app, workspace_root)?;
        let source_real = std::fs::canonicalize(&source).ok();
        add_zoneinfo(
            &mut tree,
            (&source, source_real.as_deref()),
            &source,
            ZONEINFO_PATH,
            &mut RealPaths::default(),
        )?;
    }
    if let Some(zone) = &config.timezone {
        let source = zoneinfo_source(app, workspace_root)?;
        let file = confine::resolve(&source, zone.as_str().into(), true)
            .ok()
            .filter(|resolved| resolved.kind == confine::Kind::File)
            .map(|resolved| resolved.path);
        let Some(file) = file else {
            return Err(app_error(
                app,
                "timezone",
                format!("no zone `{zone}` in {source}"),
                "write an IANA zone name such as \"Europe/Berlin\" or \"UTC\"",
            ));
        };
        // A copy, not a link: it works whether or not zoneinfo is in the image.
        tree.file("etc/localtime", 0o644, Content::Host(file));
        tree.file(
            "etc/timezone",
            0o644,
            Content::Bytes(format!("{zone}\n").into_bytes()),
        );
    }
    Ok(tree)
}

/// The app layer's tree: the binary at its path, 0755, owned by root.
pub fn app_tree(app: &App, binary: &Utf8Path) -> Tree {
    let mut tree = Tree::default();
    tree.file(
        &app.binary_path(),
        0o755,
        Content::Host(binary.to_path_buf()),
    );
    tree
}

/// `/etc/passwd`: root, nobody and the app user, with no home and no login shell.
pub fn passwd(name: &str, uid: u32, gid: u32) -> String {
    format!(
        "root:x:0:0:root:/root:/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
         {name}:x:{uid}:{gid}::/nonexistent:/sbin/nologin\n"
    )
}

/// `/etc/group`: root, nogroup and the app user's group.
pub fn group(name: &str, gid: u32) -> String {
    format!("root:x:0:\nnogroup:x:65534:\n{name}:x:{gid}:\n")
}

/// The environment the settings add to the image config (TZ, LANG, ...).
pub fn settings_env(app: &App) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(zone) = &app.config.timezone {
        env.insert("TZ".to_string(), zone.clone());
    }
    if let Some(locale) = &app.config.locale {
        let language = locale.split('.').next().unwrap_or(locale);
        let short = language.split('_').next().unwrap_or(language);
        env.insert("LANG".to_string(), locale.clone());
        env.insert("LANGUAGE".to_string(), format!("{language}:{short}"));
        env.insert("LC_ALL".to_string(), locale.clone());
    }
    env
}

/// A config error about one key of the app, found while reading host files.
fn app_error(app: &App, key: &str, message: String, help: &str) -> Error {
    Error::Config {
        manifest: app.manifest.clone(),
        key: app.key(key),
        message,
        help: help.to_string(),
    }
}

fn host_ca_bundle() -> Result<Utf8PathBuf> {
    HOST_CA_BUNDLES
        .iter()
        .map(Utf8PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Invalid {
            path: HOST_CA_BUNDLES[0].into(),
            message: "no CA bundle on this machine".into(),
            help: "install the CA certificates (Debian: `apt-get install ca-certificates`), set \
                   `ca-bundle` to a PEM file, or set `certs = false` for an app that makes no TLS calls"
                .into(),
        })
}

fn zoneinfo_source(app: &App, workspace_root: &Utf8Path) -> Result<Utf8PathBuf> {
    // The host's folder is the default; a configured one is read only beneath the workspace.
    let source = match &app.config.zoneinfo {
        Some(path) => match confine::resolve(workspace_root, path, true) {
            Ok(resolved) if resolved.kind == confine::Kind::Dir => resolved.path,
            Ok(resolved) => {
                return Err(app_error(
                    app,
                    "zoneinfo",
                    format!("`{path}` is {}, not a folder", resolved.kind.describe()),
                    "point zoneinfo at a zoneinfo folder, or remove it to use the host's",
                ))
            }
            Err(refused) => {
                return Err(app_error(
                    app,
                    "zoneinfo",
                    format!("`{path}` {refused}"),
                    &host_file_help("zoneinfo"),
                ))
            }
        },
        None => Utf8PathBuf::from("/usr/share/zoneinfo"),
    };
    let utc = confine::resolve(&source, "UTC".into(), true);
    if utc.is_ok_and(|resolved| resolved.kind == confine::Kind::File) {
        Ok(source)
    } else {
        Err(Error::Invalid {
            path: source.to_string(),
            message: "no zoneinfo here".into(),
            help:
                "install the time zone database (Debian: `apt-get install tzdata`), set `zoneinfo` \
                   to a zoneinfo folder, or use tzdata = \"embed\" to build it into the binary"
                    .into(),
        })
    }
}

/// Real paths of link targets, with each folder's real path found once: the
/// zoneinfo tree has hundreds of links into a few dozen folders.
#[derive(Default)]
struct RealPaths {
    folders: std::collections::HashMap<std::path::PathBuf, Option<std::path::PathBuf>>,
}

impl RealPaths {
    /// What `canonicalize(path)` says: the folder's real path (remembered)
    /// joined with the last name, unless that name is itself a link.
    fn of(&mut self, path: &std::path::Path) -> Option<std::path::PathBuf> {
        let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
            return std::fs::canonicalize(path).ok();
        };
        if name == ".." || name == "." {
            return std::fs::canonicalize(path).ok();
        }
        let real_folder = self
            .folders
            .entry(folder.to_path_buf())
            .or_insert_with(|| std::fs::canonicalize(folder).ok())
            .clone()?;
        let real = real_folder.join(name);
        match std::fs::symlink_metadata(&real) {
            Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(&real).ok(),
            Ok(_) => Some(real),
            Err(_) => None,
        }
    }
}

/// Adds the zoneinfo folder `dir` beneath `root` (and `root`'s real path,
/// found once) at `image_dir`.
fn add_zoneinfo(
    tree: &mut Tree,
    (root, root_real): (&Utf8Path, Option<&std::path::Path>),
    dir: &Utf8Path,
    image_dir: &str,
    real_paths: &mut RealPaths,
) -> Result<()> {
    tree.dir(image_dir, 0o755);
    for entry in dir.read_dir_utf8().at(dir, "list")? {
        let entry = entry.at(dir, "list")?;
        let name = entry.file_name();
        if dir == root && ZONEINFO_SKIP.contains(&name) {
            continue;
        }
        let image_path = format!("{image_dir}/{name}");
        let kind = entry.file_type().at(entry.path(), "read")?;
        if kind.is_dir() {
            add_zoneinfo(
                tree,
                (root, root_real),
                entry.path(),
                &image_path,
                real_paths,
            )?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).at(entry.path(), "read the link")?;
            let target = target.to_string_lossy().to_string();
            // Keep links that stay inside zoneinfo; others point at host files the image lacks.
            let resolved = real_paths.of(entry
                .path()
                .parent()
                .unwrap_or(dir)
                .join(&target)
                .as_std_path());
            if matches!((resolved, root_real), (Some(r), Some(base)) if r.starts_with(base)) {
                tree.file(&image_path, 0o777, Content::Symlink(target));
            }
        } else if kind.is_file() {
            tree.file(
                &image_path,
                0o644,
                Content::Host(entry.path().to_path_buf()),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_first_and_are_created() {
        let mut tree = Tree::default();
        tree.file("/go/bin/app", 0o755, Content::Bytes(vec![]));
        tree.dir("tmp", 0o1777);
        let paths: Vec<_> = tree.entries().map(|e| (e.path.as_str(), e.mode)).collect();
        assert_eq!(
            paths,
            vec![
                ("go", 0o755),
                ("go/bin", 0o755),
                ("go/bin/app", 0o755),
                ("tmp", 0o1777)
            ]
        );
    }

    #[test]
    fn accounts() {
        let passwd = passwd("appuser", 10001, 10002);
        assert!(passwd.ends_with("appuser:x:10001:10002::/nonexistent:/sbin/nologin\n"));
        assert!(passwd.starts_with("root:x:0:0:"));
        assert!(group("appuser", 10002).contains("appuser:x:10002:\n"));
    }
}
