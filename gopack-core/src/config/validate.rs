//! Checks of each app's settings once the table is read: names, paths, the
//! user, text that ends up in the image, and the docker engine's settings.
//! Each refusal names the key (`apps[1].user.gid`) and the fix.

use super::confine::{self, Kind};
use super::schema::{App, AppConfig, Config, UserConfig};
use super::{files, settings, tags};
use crate::error::{Error, Result};
use crate::platform::Platform;
use camino::{Utf8Component, Utf8Path, Utf8PathBuf};

/// Validates every app; returns them with resolved paths.
pub(super) fn validate(config: &Config, root: &Utf8Path, manifest: &Utf8Path) -> Result<Vec<App>> {
    let config_error = |key: String, message: String, help: &str| Error::Config {
        manifest: manifest.to_path_buf(),
        key,
        message,
        help: help.to_string(),
    };
    let files_root = match &config.files_root {
        None => None,
        Some(path) => {
            let refused = |message: String| {
                config_error(
                    "workspace.metadata.gopack.files-root".into(),
                    message,
                    "write a folder of the workspace, relative to its root (e.g. \"shared\" or \".\"); to ship files from elsewhere, copy them into the workspace first",
                )
            };
            match confine::resolve(root, path, true) {
                Ok(resolved) if resolved.kind == Kind::Dir => Some(resolved.path),
                Ok(resolved) => {
                    return Err(refused(format!("`{path}` is {}", resolved.kind.describe())))
                }
                Err(why) => return Err(refused(format!("`{path}` {why}"))),
            }
        }
    };
    let mut apps: Vec<App> = Vec::new();
    for (index, app) in config.apps.iter().enumerate() {
        let key = |field: &str| format!("workspace.metadata.gopack.apps[{index}].{field}");
        if !is_image_name(&app.name) {
            return Err(config_error(
                key("name"),
                format!("`{}` cannot name an image", app.name),
                "use lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit",
            ));
        }
        if let Some(image_name) = &app.image_name {
            let valid = image_name.len() <= 255
                && image_name
                    .split('/')
                    .all(|part| is_image_name(part) && !part.ends_with(['.', '_', '-']));
            if !valid {
                return Err(config_error(
                    key("image-name"),
                    format!("`{image_name}` is not a repository path"),
                    "write path components of lower-case letters, digits, `.`, `_` and `-`, \
                     separated by `/`, each starting and ending with a letter or digit \
                     (e.g. \"team/api\"); the registry host goes in `registry`",
                ));
            }
        }
        if let Some(first) = apps.iter().position(|a| a.name() == app.name) {
            return Err(config_error(
                key("name"),
                format!("the name `{}` is already used by apps[{first}]", app.name),
                "give every app its own name",
            ));
        }
        let dir = root.join(&app.path);
        if !dir.join("go.mod").is_file() {
            return Err(config_error(
                key("path"),
                format!("`{}` has no go.mod (looked for {dir}/go.mod)", app.path),
                "point `path` at the folder that holds the app's go.mod, relative to the workspace root",
            ));
        }
        if Utf8Path::new(&app.main).is_absolute() || app.main.split('/').any(|c| c == "..") {
            return Err(config_error(
                key("main"),
                format!("`{}` is not a package inside `{}`", app.main, app.path),
                "write the main package relative to `path`, e.g. \".\" or \"./cmd/server\"",
            ));
        }
        match confine::resolve(&dir, Utf8Path::new(&app.main), true) {
            Ok(resolved) if resolved.kind == Kind::Dir => {}
            Err(refused @ confine::Refused::Link(_)) => {
                return Err(config_error(
                    key("main"),
                    format!("`{}` {refused}", app.main),
                    "write the main package's folder relative to `path`, inside it: a symlink may not lead out of the app's folder",
                ));
            }
            _ => {
                return Err(config_error(
                    key("main"),
                    format!("`{}` is not a folder of `{}` (looked for {})", app.main, app.path, dir.join(&app.main)),
                    "write the main package's folder relative to `path`, e.g. \".\" or \"./cmd/server\"",
                ));
            }
        }
        if let Err((field, message)) = check_user(&app.user) {
            return Err(config_error(
                key(&format!("user.{field}")),
                message,
                "the app must run as an unprivileged user: use a non-zero uid and gid (default 10001) and a lower-case name",
            ));
        }
        check_settings(app).map_err(|(field, r)| config_error(key(&field), r.message, &r.help))?;
        check_build_inputs(app)
            .map_err(|(field, r)| config_error(key(&field), r.message, &r.help))?;
        for (field, path) in [("ca-bundle", &app.ca_bundle), ("zoneinfo", &app.zoneinfo)] {
            if let Some(path) = path {
                if let Err(refused) = confine::normalize_beneath(path) {
                    return Err(config_error(
                        key(field),
                        format!("`{path}` {refused}"),
                        &host_file_help(field),
                    ));
                }
                if field == "ca-bundle" && app.certs && !holds_certificate(root, path) {
                    return Err(config_error(
                        key(field),
                        format!("`{path}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"),
                        "point ca-bundle at a PEM file of CA certificates (as update-ca-certificates \
                         writes), or remove it to use the host's bundle",
                    ));
                }
            }
        }
        if let Some(zone) = &app.timezone {
            if zone.is_empty() || zone.starts_with('/') || zone.split('/').any(|c| c == "..") {
                return Err(config_error(
                    key("timezone"),
                    format!("`{zone}` is not a zone name"),
                    "write an IANA zone such as \"Europe/Berlin\" or \"UTC\"",
                ));
            }
        }
        if let Some(var) = &app.version_variable {
            if !var.contains('.') || var.contains(char::is_whitespace) {
                return Err(config_error(
                    key("version-variable"),
                    format!("`{var}` is not a Go variable path"),
                    "write the import path and name, e.g. \"main.version\"",
                ));
            }
        }
        if let Some(image) = &app.builder_image {
            if !is_image_reference(image) {
                return Err(config_error(
                    key("builder-image"),
                    format!("`{image}` is not an image reference"),
                    "write a reference such as \"golang:1.23-alpine\" or \"registry.example.com/go:1.23\"",
                ));
            }
        }
        if let Some(mirror) = &app.apk_mirror {
            let scheme_ok = mirror.starts_with("https://") || mirror.starts_with("http://");
            let chars_ok = mirror
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~:/%@+=".contains(c));
            if !scheme_ok || !chars_ok || mirror.split("://").nth(1).is_none_or(str::is_empty) {
                return Err(config_error(
                    key("apk-mirror"),
                    format!("`{mirror}` is not a mirror URL"),
                    "write the mirror's base URL, e.g. \"https://mirrors.tuna.tsinghua.edu.cn\" (it replaces https://dl-cdn.alpinelinux.org)",
                ));
            }
        }
        for (i, package) in app.apk_packages.iter().enumerate() {
            let ok = package.starts_with(|c: char| c.is_ascii_alphanumeric())
                && package
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-=~<>".contains(c));
            if !ok {
                return Err(config_error(
                    key(&format!("apk-packages[{i}]")),
                    format!("`{package}` is not an apk package name"),
                    "write package names as `apk add` takes them, e.g. \"sqlite-dev\"",
                ));
            }
        }
        for name in app.env.keys() {
            if matches!(name.as_str(), "GOOS" | "GOARCH" | "CGO_ENABLED") {
                return Err(config_error(
                    key(&format!("build-env.{name}")),
                    format!("{name} is set by gopack"),
                    "set the target with `platforms` instead, and cgo with `cgo = \"static\"` or `\"dynamic\"`",
                ));
            }
        }
        for (platform, command) in &app.cc {
            if let Err(e) = platform.parse::<Platform>() {
                return Err(config_error(
                    key(&format!("cc.\"{platform}\"")),
                    e.to_string(),
                    "key the C compiler by platform, e.g. cc = { \"linux/arm64\" = \"aarch64-linux-gnu-gcc\" }",
                ));
            }
            if command.split_whitespace().next().is_none() {
                return Err(config_error(
                    key(&format!("cc.\"{platform}\"")),
                    "the C compiler command is empty".into(),
                    "write a compiler such as \"aarch64-linux-gnu-gcc\" or \"zig cc -target aarch64-linux-musl\"",
                ));
            }
        }
        if let Some(templates) = &app.image_tags {
            tags::check_templates(templates).map_err(|(i, message)| {
                config_error(key(&format!("image-tags[{i}]")), message, tags::HELP)
            })?;
        }
        let sources = source_root(files_root.as_deref(), &dir);
        files::check(
            &app.files,
            &sources,
            &app.binary_path
                .clone()
                .unwrap_or_else(|| format!("/go/bin/{}", app.name)),
        )
        .map_err(|(field, message, help)| config_error(key(&field), message, help))?;
        apps.push(App {
            config: app.clone(),
            dir,
            sources,
            source_date_epoch: None,
            index,
            manifest: manifest.to_path_buf(),
        });
    }
    Ok(apps)
}

/// The settings that end up in the image as paths or text; on failure the key and why.
fn check_settings(app: &AppConfig) -> std::result::Result<(), (String, settings::Refusal)> {
    use settings::{check_binary_path, check_env_name, check_text};
    if let Some(path) = &app.binary_path {
        check_binary_path(path).map_err(|r| ("binary-path".to_string(), r))?;
    }
    if let Some(dir) = &app.workdir {
        let ok = dir.starts_with('/') && !dir.split('/').any(|c| c == "..");
        if !ok || check_text(dir).is_err() {
            return Err((
                "workdir".into(),
                settings::Refusal {
                    message: format!("{dir:?} is not an absolute folder path"),
                    help: "write an absolute path without `..`, such as /srv or /go/bin".into(),
                },
            ));
        }
    }
    for (field, value) in [("locale", &app.locale), ("timezone", &app.timezone)] {
        if let Some(value) = value {
            check_text(value).map_err(|r| (field.to_string(), r))?;
        }
    }
    for name in app.image_env.keys() {
        check_env_name(name).map_err(|r| (format!("image-env.{name:?}"), r))?;
        // verify's config.env fails on these unless `timezone`/`locale` set them.
        let owner = match name.as_str() {
            "TZ" => Some((
                "timezone",
                "timezone = \"Europe/Berlin\"",
                "/etc/localtime and TZ",
            )),
            "LANG" | "LANGUAGE" | "LC_ALL" => Some((
                "locale",
                "locale = \"C.UTF-8\"",
                "LANG, LANGUAGE and LC_ALL",
            )),
            _ => None,
        };
        if let Some((key, example, sets)) = owner {
            return Err((
                format!("image-env.{name}"),
                settings::Refusal {
                    message: format!(
                        "{name} is set by the `{key}` key, which verify checks it against"
                    ),
                    help: format!(
                        "remove {name} from image-env and set `{example}` (it sets {sets})"
                    ),
                },
            ));
        }
    }
    for (name, value) in &app.labels {
        check_text(name)
            .and_then(|()| check_text(value))
            .map_err(|r| (format!("labels.{name:?}"), r))?;
        // gopack's facts about the image; verify reads the revision.
        if OWN_LABELS.contains(&name.as_str()) || name.starts_with("io.gopack.") {
            return Err((
                format!("labels.{name:?}"),
                settings::Refusal {
                    message: format!(
                        "gopack writes `{name}` itself (from the app's version, commit and \
                         time), and a configured value would replace that fact"
                    ),
                    help: "remove it from `labels`; set `version` (or --app-version) or \
                           SOURCE_DATE_EPOCH to change what gopack writes"
                        .into(),
                },
            ));
        }
        if name.is_empty() {
            return Err((
                "labels".into(),
                settings::Refusal {
                    message: "a label has an empty name".into(),
                    help: "name every label, e.g. \"org.example.team\" = \"payments\"".into(),
                },
            ));
        }
    }
    Ok(())
}

/// Whether the `ca-bundle` file beneath `root` has a PEM certificate block
/// (its first 16 MiB are read). A file that cannot be opened is left to the
/// pack, which names why.
fn holds_certificate(root: &Utf8Path, path: &Utf8Path) -> bool {
    use std::io::Read;
    let Ok(resolved) = confine::resolve(root, path, true) else {
        return true;
    };
    let Ok(file) = std::fs::File::open(&resolved.path) else {
        return true;
    };
    let mut bytes = Vec::new();
    if file.take(16 << 20).read_to_end(&mut bytes).is_err() {
        return true;
    }
    bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
}

/// Labels gopack derives from facts, which `labels` may not replace
/// (`title` and `source` may be set: the latter when the repository has no
/// `origin` remote to read it from).
const OWN_LABELS: &[&str] = &[
    "org.opencontainers.image.version",
    "org.opencontainers.image.created",
    "org.opencontainers.image.revision",
];

/// Checks a user; on failure returns the field and why.
pub(super) fn check_user(user: &UserConfig) -> std::result::Result<(), (&'static str, String)> {
    if user.uid == 0 {
        return Err(("uid", "uid 0 is root".into()));
    }
    if user.gid() == 0 {
        return Err(("gid", "gid 0 is the root group".into()));
    }
    let name_ok = !user.name.is_empty()
        && user.name.len() <= 32
        && user
            .name
            .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && user
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !name_ok {
        return Err(("name", format!("`{}` is not a valid user name", user.name)));
    }
    if matches!(user.name.as_str(), "root" | "nobody" | "nogroup") {
        return Err(("name", format!("`{}` is a reserved account", user.name)));
    }
    if user.uid == 65534 {
        return Err(("uid", "uid 65534 belongs to nobody".into()));
    }
    if user.gid() == 65534 {
        return Err(("gid", "gid 65534 belongs to nogroup".into()));
    }
    Ok(())
}

/// `[host[:port]/]path[:tag][@digest]`, loosely: what `docker build` and `FROM` accept.
fn is_image_reference(reference: &str) -> bool {
    !reference.is_empty()
        && reference.len() <= 255
        && reference.starts_with(|c: char| c.is_ascii_alphanumeric())
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
}

fn is_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Where an app's `files` are read from: beneath `files-root` when the
/// workspace names one and the app's folder lies beneath it, else beneath the
/// app's own folder.
fn source_root(files_root: Option<&Utf8Path>, dir: &Utf8Path) -> files::SourceRoot {
    let own = || files::SourceRoot {
        root: dir.to_path_buf(),
        prefix: Utf8PathBuf::new(),
    };
    let Some(files_root) = files_root else {
        return own();
    };
    // The app's folder as the kernel would find it (`path` may hold `..` or links).
    let real = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .unwrap_or_else(|| lexical(dir));
    match real.strip_prefix(files_root) {
        Ok(prefix) => files::SourceRoot {
            root: files_root.to_path_buf(),
            prefix: prefix.to_path_buf(),
        },
        Err(_) => own(),
    }
}

/// `/a/./b/../c` → `/a/c`, as text.
fn lexical(path: &Utf8Path) -> Utf8PathBuf {
    let mut out = Utf8PathBuf::new();
    for component in path.components() {
        match component {
            Utf8Component::CurDir => {}
            Utf8Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_str()),
        }
    }
    out
}

/// The help line of a configured `ca-bundle` or `zoneinfo` that leaves the workspace.
pub(crate) fn host_file_help(field: &str) -> String {
    let default = if field == "ca-bundle" {
        "the host's CA bundle"
    } else {
        "the host's /usr/share/zoneinfo"
    };
    format!(
        "write a path inside the workspace, relative to its root, reached without a symlink that \
         leads out; remove `{field}` to use {default}, or copy the file you want into the workspace first"
    )
}

/// The values the go build takes from the config: the version (also an image
/// tag and a label), platforms, Go build tags and `build-env` names.
fn check_build_inputs(app: &AppConfig) -> std::result::Result<(), (String, settings::Refusal)> {
    if let Some(version) = &app.version {
        check_version(version).map_err(|r| ("version".to_string(), r))?;
    }
    for (i, platform) in app.platforms.iter().enumerate() {
        if let Some(first) = app.platforms[..i].iter().position(|p| p == platform) {
            return Err((
                format!("platforms[{i}]"),
                settings::Refusal {
                    message: format!("`{platform}` is listed already as platforms[{first}]"),
                    help: "list every platform once".into(),
                },
            ));
        }
    }
    for (i, tag) in app.tags.iter().enumerate() {
        let ok = !tag.is_empty()
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !ok {
            return Err((
                format!("tags[{i}]"),
                settings::Refusal {
                    message: format!("{tag:?} is not a Go build tag"),
                    help: "write one build tag per entry, made of letters, digits, `_` and `.` (e.g. \"netgo\"); list several tags as several entries".into(),
                },
            ));
        }
    }
    for (name, value) in &app.env {
        settings::check_env_name(name).map_err(|r| (format!("build-env.{name:?}"), r))?;
        if value.contains('\0') {
            return Err((
                format!("build-env.{name:?}"),
                settings::Refusal {
                    message: format!("the value of {name} has a NUL character"),
                    help: "write the value without NUL characters".into(),
                },
            ));
        }
    }
    Ok(())
}

/// A version is an image tag and a label value as written: never rewritten.
pub(crate) fn check_version(version: &str) -> std::result::Result<(), settings::Refusal> {
    if tags::is_tag(version) {
        return Ok(());
    }
    let why = if version.chars().any(char::is_control) {
        "has a newline or another control character"
    } else {
        "is not a valid image tag"
    };
    Err(settings::Refusal {
        message: format!("{version:?} {why}"),
        help: "a version is the image tag as written: 1 to 128 characters, letters, digits, `_`, `.` and `-`, not starting with `.` or `-` ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}); write `v1.0.0-build.5` for `v1.0.0+build.5`".into(),
    })
}
