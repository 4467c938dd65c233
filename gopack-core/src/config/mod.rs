//! `[workspace.metadata.gopack]`: what users write, read with `cargo_metadata`,
//! validated once, with paths resolved against the workspace root.
//!
//! Every rejection names the manifest, the key (as a path such as
//! `apps[1].platforms[0]`) and the fix.

pub mod files;
mod limits;
mod policy;
pub mod settings;
mod suggest;
pub mod supply;
pub mod tags;

pub use limits::{Limits, LIMIT_NAMES};
pub use policy::{Attachment, ByteSize, Policy, RunPolicy};

use crate::error::{Error, Result};
use crate::platform::Platform;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole `[workspace.metadata.gopack]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Registry prefix for `--push`, e.g. `ghcr.io/acme`.
    #[serde(default)]
    pub registry: Option<String>,
    /// Where the build cache lives; default `<target>/gopack/cache`.
    #[serde(default)]
    pub cache_dir: Option<Utf8PathBuf>,
    /// A registry prefix that shares cache entries between machines, e.g.
    /// `ghcr.io/acme/gopack-cache` (see docs/cache-registry.md).
    #[serde(default)]
    pub cache_registry: Option<String>,
    /// Whether runs push new entries to the cache registry (`read-write`) or
    /// only take entries from it (`read`).
    #[serde(default)]
    pub cache_registry_mode: CacheRegistryMode,
    /// The PEM private key `pack` signs images with (docs/signing.md); relative
    /// paths are from the workspace root. `--sign-key` overrides it.
    #[serde(default)]
    pub sign_key: Option<Utf8PathBuf>,
    /// The Go apps of the workspace.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
}

/// One `[[workspace.metadata.gopack.apps]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AppConfig {
    /// Image and binary name.
    pub name: String,
    /// The folder with go.mod, relative to the workspace root.
    pub path: Utf8PathBuf,
    /// The main package, relative to `path`.
    #[serde(default = "default_main")]
    pub main: String,
    /// Target platforms; default: the host's architecture on linux.
    #[serde(default)]
    pub platforms: Vec<Platform>,
    /// Put a CA bundle at /etc/ssl/certs/ca-certificates.crt.
    #[serde(default = "yes")]
    pub certs: bool,
    /// The CA bundle to copy; default: the host's bundle.
    #[serde(default)]
    pub ca_bundle: Option<Utf8PathBuf>,
    /// Zoneinfo: `true` (files under /usr/share/zoneinfo), `false`, or `"embed"`
    /// (Go's `timetzdata` build tag, no files).
    #[serde(default)]
    pub tzdata: Tzdata,
    /// Zoneinfo folder to copy; default: the host's /usr/share/zoneinfo.
    #[serde(default)]
    pub zoneinfo: Option<Utf8PathBuf>,
    /// Fixed time zone (`Area/City`): /etc/localtime, /etc/timezone and TZ. Off by default.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Fixed locale (`xx_YY.UTF-8`): LANG, LANGUAGE, LC_ALL. Off by default.
    #[serde(default)]
    pub locale: Option<String>,
    /// The unprivileged user the app runs as.
    #[serde(default)]
    pub user: UserConfig,
    /// Extra `-ldflags` after gopack's `-s -w -buildid=`.
    #[serde(default)]
    pub ldflags: Vec<String>,
    /// Go build tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `build-env`: extra environment for `go build` (e.g. GOAMD64 = "v3");
    /// not the image's environment (that is `image-env`).
    #[serde(default, rename = "build-env")]
    pub env: BTreeMap<String, String>,
    /// Build inside the `go.work` that go would find above the module (default true);
    /// `false` builds the module alone, as `GOWORK=off` does.
    #[serde(default = "yes")]
    pub go_work: bool,
    /// The image version; default: from the commits that touch the app (see `vcs`).
    #[serde(default)]
    pub version: Option<String>,
    /// A Go variable set to the version with `-X`, e.g. `main.version`.
    #[serde(default)]
    pub version_variable: Option<String>,
    /// Where the binary goes in the image; default `/go/bin/<name>`.
    #[serde(default)]
    pub binary_path: Option<String>,
    /// Arguments after the entrypoint (the image's Cmd).
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment of the image's config.
    #[serde(default)]
    pub image_env: BTreeMap<String, String>,
    /// The working folder of the image's config.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Exposed ports, e.g. `["8080/tcp"]`.
    #[serde(default)]
    #[serde(deserialize_with = "ports")]
    pub expose: Vec<String>,
    /// Extra OCI labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// What `verify` allows and expects of this app's image.
    #[serde(default)]
    pub verify: Policy,
    /// The engine `pack` uses for this app: `"oci"` (default, daemonless) or
    /// `"docker"` (the multi-stage Dockerfile, run by `docker build`).
    #[serde(default)]
    pub engine: EngineKind,
    /// The docker engine's builder image; default `golang:<go line of go.mod>-alpine`.
    #[serde(default)]
    pub builder_image: Option<String>,
    /// The docker engine: an apk mirror replacing `dl-cdn.alpinelinux.org` in the
    /// builder's /etc/apk/repositories, e.g. `https://mirrors.example.com`.
    #[serde(default)]
    pub apk_mirror: Option<String>,
    /// cgo: `false` (default, CGO_ENABLED=0), `"static"` (cgo, linked fully
    /// static; `true` means the same) or `"dynamic"` (cgo against the build
    /// machine's libc; the loader and libraries go into the image).
    #[serde(default)]
    pub cgo: Cgo,
    /// The C compiler per platform for cgo, e.g.
    /// `{ "linux/arm64" = "aarch64-linux-gnu-gcc" }`; a command with arguments
    /// is split on whitespace (`"zig cc -target aarch64-linux-musl"`).
    #[serde(default)]
    pub cc: BTreeMap<String, String>,
    /// The docker engine: extra apk packages for the builder (C libraries for cgo).
    #[serde(default)]
    pub apk_packages: Vec<String>,
    /// Image tag templates, e.g. `["{{version}}", "{{major}}.{{minor}}", "latest"]`;
    /// default: the version and `latest`.
    #[serde(default)]
    pub image_tags: Option<Vec<String>>,
    /// Extra files copied into the app layer.
    #[serde(default)]
    pub files: Vec<files::FileConfig>,
    /// The SBOM attached to each platform image: `true`/`"spdx"` (default), `"cyclonedx"`, `false`.
    #[serde(default)]
    pub sbom: supply::SbomFormat,
    /// Attach an in-toto SLSA provenance statement to each platform image (default true).
    #[serde(default = "yes")]
    pub provenance: bool,
}

/// `engine = "oci" | "docker"`: how `pack` makes the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// Daemonless: generated layers, OCI layout and archive. Needs only `go`.
    #[default]
    Oci,
    /// The idioms' multi-stage Dockerfile, built by the docker engine.
    Docker,
}

/// What a run does with the cache registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CacheRegistryMode {
    /// Take entries from it and push new ones (trusted branches).
    #[default]
    ReadWrite,
    /// Only take entries from it (pull-request jobs).
    Read,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Oci => "oci",
            EngineKind::Docker => "docker",
        })
    }
}

/// `cgo = false | "static" | "dynamic"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Cgo {
    /// CGO_ENABLED=0: a static Go binary (the idioms' default).
    #[default]
    Off,
    /// CGO_ENABLED=1, linked fully static (musl where available).
    Static,
    /// CGO_ENABLED=1, dynamically linked; the loader and libraries are copied.
    Dynamic,
}

impl Cgo {
    /// Whether the build runs with CGO_ENABLED=1.
    pub fn enabled(self) -> bool {
        self != Cgo::Off
    }

    /// As the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Cgo::Off => "false",
            Cgo::Static => "static",
            Cgo::Dynamic => "dynamic",
        }
    }
}

/// A config value that is either a boolean or a word (`cgo`, `tzdata`, `sbom`).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum BoolOrText {
    Bool(bool),
    Text(String),
}

impl<'de> Deserialize<'de> for Cgo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match BoolOrText::deserialize(deserializer)? {
            BoolOrText::Bool(false) => Ok(Cgo::Off),
            BoolOrText::Bool(true) => Ok(Cgo::Static),
            BoolOrText::Text(t) if t == "static" => Ok(Cgo::Static),
            BoolOrText::Text(t) if t == "dynamic" => Ok(Cgo::Dynamic),
            BoolOrText::Text(t) if t == "false" || t == "off" => Ok(Cgo::Off),
            BoolOrText::Text(t) => Err(serde::de::Error::custom(format!(
                "`{t}` is not a cgo setting; write false, \"static\" or \"dynamic\""
            ))),
        }
    }
}

/// `tzdata = true | false | "embed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tzdata {
    /// Copy zoneinfo files into the image.
    #[default]
    Files,
    /// No zoneinfo.
    None,
    /// Build with the `timetzdata` tag: zoneinfo inside the binary.
    Embed,
}

impl<'de> Deserialize<'de> for Tzdata {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match BoolOrText::deserialize(deserializer)? {
            BoolOrText::Bool(true) => Ok(Tzdata::Files),
            BoolOrText::Bool(false) => Ok(Tzdata::None),
            BoolOrText::Text(t) if t == "embed" => Ok(Tzdata::Embed),
            BoolOrText::Text(t) => Err(serde::de::Error::custom(format!(
                "`{t}` is not a tzdata setting; write true, false or \"embed\""
            ))),
        }
    }
}

/// `user = { name, uid, gid }`: the idioms' USERNAME, USER_ID and GROUP_ID.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UserConfig {
    /// User and group name, default `appuser`.
    #[serde(default = "default_user_name")]
    pub name: String,
    /// Numeric user id, default 10001; never 0.
    #[serde(default = "default_uid")]
    pub uid: u32,
    /// Numeric group id, default = uid; never 0.
    #[serde(default)]
    pub gid: Option<u32>,
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig {
            name: default_user_name(),
            uid: default_uid(),
            gid: None,
        }
    }
}

impl UserConfig {
    /// The group id: the configured one, else the uid.
    pub fn gid(&self) -> u32 {
        self.gid.unwrap_or(self.uid)
    }
}

fn default_main() -> String {
    ".".into()
}
fn yes() -> bool {
    true
}
fn default_user_name() -> String {
    "appuser".into()
}
fn default_uid() -> u32 {
    10001
}

/// A validated app: config plus resolved paths.
#[derive(Debug, Clone)]
pub struct App {
    /// The app's settings, after CLI overrides.
    pub config: AppConfig,
    /// Absolute path of the folder with go.mod.
    pub dir: Utf8PathBuf,
    /// `SOURCE_DATE_EPOCH` as the workspace was given it (checked).
    pub source_date_epoch: Option<u64>,
}

impl App {
    /// The app's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Platforms to build, never empty.
    pub fn platforms(&self) -> Vec<Platform> {
        if self.config.platforms.is_empty() {
            vec![Platform::host()]
        } else {
            self.config.platforms.clone()
        }
    }

    /// Where the binary goes in the image.
    pub fn binary_path(&self) -> String {
        self.config
            .binary_path
            .clone()
            .unwrap_or_else(|| format!("/go/bin/{}", self.config.name))
    }
}

/// Values from the command line that override the config for one run.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--platform`, replacing the configured platforms.
    pub platforms: Vec<Platform>,
    /// `--user-name`.
    pub user_name: Option<String>,
    /// `--uid`.
    pub uid: Option<u32>,
    /// `--gid`.
    pub gid: Option<u32>,
    /// `--version`.
    pub version: Option<String>,
    /// `--cgo`.
    pub cgo: Option<Cgo>,
}

/// The cargo workspace and its gopack configuration.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root folder.
    pub root: Utf8PathBuf,
    /// The root Cargo.toml.
    pub manifest: Utf8PathBuf,
    /// Cargo's target folder; gopack writes under `<target>/gopack/`.
    pub target_dir: Utf8PathBuf,
    /// The parsed configuration.
    pub config: Config,
    /// The environment variables gopack honours, as given (checked when loaded).
    pub environment: settings::Environment,
    apps: Vec<App>,
}

impl Workspace {
    /// Reads the workspace around the current folder, or the given manifest,
    /// with the environment variables of this process ([`settings::Environment::from_process`]).
    pub fn load(manifest_path: Option<&Utf8Path>) -> Result<Workspace> {
        Workspace::load_with(manifest_path, settings::Environment::from_process())
    }

    /// Reads the workspace around the current folder, or the given manifest,
    /// with the environment variables the caller read.
    pub fn load_with(
        manifest_path: Option<&Utf8Path>,
        environment: settings::Environment,
    ) -> Result<Workspace> {
        let mut cmd = cargo_metadata::MetadataCommand::new();
        cmd.no_deps();
        if let Some(path) = manifest_path {
            cmd.manifest_path(path);
        }
        let metadata = cmd.exec().map_err(|e| Error::Metadata {
            message: e.to_string(),
        })?;
        let root = metadata.workspace_root.clone();
        let manifest = root.join("Cargo.toml");
        let value = metadata
            .workspace_metadata
            .get("gopack")
            .cloned()
            .ok_or_else(|| Error::Config {
                manifest: manifest.clone(),
                key: "workspace.metadata.gopack".into(),
                message: "there is no gopack configuration".into(),
                help: "add a table like\n  [[workspace.metadata.gopack.apps]]\n  name = \"api\"\n  path = \"services/api\"  # the folder with go.mod".into(),
            })?;
        Workspace::from_value(root, metadata.target_directory.clone(), &value, environment)
    }

    /// Builds a workspace from an already-read `gopack` table.
    pub fn from_value(
        root: Utf8PathBuf,
        target_dir: Utf8PathBuf,
        value: &serde_json::Value,
        environment: settings::Environment,
    ) -> Result<Workspace> {
        let manifest = root.join("Cargo.toml");
        let config: Config = serde_path_to_error::deserialize(value).map_err(|err| {
            let key = match err.path().to_string().as_str() {
                "." => "workspace.metadata.gopack".to_string(),
                path => format!("workspace.metadata.gopack.{path}"),
            };
            let message = err.inner().to_string();
            let help = suggest::config_help(&key, &message).unwrap_or_else(|| {
                format!("fix the key or its value; {DOCS}/configuration.md lists every key")
            });
            Error::Config {
                manifest: manifest.clone(),
                key,
                message,
                help,
            }
        })?;
        let source_date_epoch = check_environment(&config, &manifest, &environment)?;
        let mut apps = validate(&config, &root, &manifest)?;
        for app in &mut apps {
            app.source_date_epoch = source_date_epoch;
        }
        Ok(Workspace {
            root,
            manifest,
            target_dir,
            config,
            environment,
            apps,
        })
    }

    /// Every configured app.
    pub fn all_apps(&self) -> &[App] {
        &self.apps
    }

    /// The apps named on the command line; all of them when none is named.
    pub fn select(&self, names: &[String], overrides: &Overrides) -> Result<Vec<App>> {
        let mut chosen = Vec::new();
        if names.is_empty() {
            chosen.extend(self.apps.iter().cloned());
        }
        for name in names {
            let app =
                self.apps
                    .iter()
                    .find(|a| a.name() == name)
                    .ok_or_else(|| Error::UnknownApp {
                        name: name.clone(),
                        manifest: self.manifest.clone(),
                        suggestion: suggest::nearest(name, self.apps.iter().map(|a| a.name()))
                            .map(|n| format!("did you mean `{n}`? "))
                            .unwrap_or_default(),
                        known: self
                            .apps
                            .iter()
                            .map(|a| a.name().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
            if !chosen.iter().any(|a: &App| a.name() == name) {
                chosen.push(app.clone());
            }
        }
        if chosen.is_empty() {
            return Err(Error::Config {
                manifest: self.manifest.clone(),
                key: "workspace.metadata.gopack.apps".into(),
                message: "no app is configured".into(),
                help: "add an [[workspace.metadata.gopack.apps]] entry with name and path".into(),
            });
        }
        for app in &mut chosen {
            apply_overrides(app, overrides)?;
        }
        Ok(chosen)
    }

    /// `<target>/gopack`: everything gopack writes.
    pub fn out_dir(&self) -> Utf8PathBuf {
        self.target_dir.join("gopack")
    }

    /// The cache folder: `$GOPACK_CACHE_DIR`, else `cache-dir`, else `<target>/gopack/cache`.
    pub fn cache_dir(&self) -> Utf8PathBuf {
        // Checked when the workspace was loaded; an unusable value is an error there.
        if let Ok(Some(dir)) = settings::cache_dir_env(&self.environment) {
            return self.root.join(dir);
        }
        match &self.config.cache_dir {
            Some(dir) => self.root.join(dir),
            None => self.out_dir().join("cache"),
        }
    }
}

fn apply_overrides(app: &mut App, overrides: &Overrides) -> Result<()> {
    if !overrides.platforms.is_empty() {
        app.config.platforms = overrides.platforms.clone();
    }
    let user = &mut app.config.user;
    if let Some(name) = &overrides.user_name {
        user.name = name.clone();
    }
    if let Some(uid) = overrides.uid {
        user.uid = uid;
    }
    if let Some(gid) = overrides.gid {
        user.gid = Some(gid);
    }
    if let Some(version) = &overrides.version {
        app.config.version = Some(version.clone());
    }
    if let Some(cgo) = overrides.cgo {
        app.config.cgo = cgo;
    }
    check_user(user).map_err(|(field, message)| Error::Flag {
        flag: format!("--{}", field.replace("name", "user-name")),
        message,
        help: "pass a non-zero id and a lower-case name".into(),
    })
}

/// Validates every app; returns them with resolved paths.
fn validate(config: &Config, root: &Utf8Path, manifest: &Utf8Path) -> Result<Vec<App>> {
    let config_error = |key: String, message: String, help: &str| Error::Config {
        manifest: manifest.to_path_buf(),
        key,
        message,
        help: help.to_string(),
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
        if !dir.join(&app.main).is_dir() {
            return Err(config_error(
                key("main"),
                format!("`{}` is not a folder of `{}` (looked for {})", app.main, app.path, dir.join(&app.main)),
                "write the main package's folder relative to `path`, e.g. \".\" or \"./cmd/server\"",
            ));
        }
        if let Err((field, message)) = check_user(&app.user) {
            return Err(config_error(
                key(&format!("user.{field}")),
                message,
                "the app must run as an unprivileged user: use a non-zero uid and gid (default 10001) and a lower-case name",
            ));
        }
        check_settings(app).map_err(|(field, r)| config_error(key(&field), r.message, &r.help))?;
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
        files::check(
            &app.files,
            &dir,
            &app.binary_path
                .clone()
                .unwrap_or_else(|| format!("/go/bin/{}", app.name)),
        )
        .map_err(|(field, message, help)| config_error(key(&field), message, help))?;
        apps.push(App {
            config: app.clone(),
            dir,
            source_date_epoch: None,
        });
    }
    Ok(apps)
}

/// `expose`: `8080`, `"8080"` or `"8080/tcp"` (also `udp`, `sctp`), always
/// written `port/protocol` as image configs spell them.
fn ports<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u64),
        Text(String),
    }
    let ports = Vec::<Port>::deserialize(deserializer)?;
    ports
        .into_iter()
        .map(|port| {
            let text = match port {
                Port::Number(n) => n.to_string(),
                Port::Text(t) => t,
            };
            let (number, protocol) = text.split_once('/').unwrap_or((&text, "tcp"));
            let valid = number.parse::<u16>().is_ok_and(|n| n > 0)
                && matches!(protocol, "tcp" | "udp" | "sctp");
            if valid {
                Ok(format!("{number}/{protocol}"))
            } else {
                Err(serde::de::Error::custom(format!(
                    "`{text}` is not a port: write 8080, \"8080/tcp\" or \"53/udp\""
                )))
            }
        })
        .collect()
}

/// Where the documentation lives, for help lines (users may not have the
/// repository checked out).
pub const DOCS: &str = "https://github.com/gopack/gopack/blob/main/docs";
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
    }
    for (name, value) in &app.labels {
        check_text(name)
            .and_then(|()| check_text(value))
            .map_err(|r| (format!("labels.{name:?}"), r))?;
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

/// The environment gopack reads, checked once when the workspace is loaded;
/// gives `SOURCE_DATE_EPOCH`.
fn check_environment(
    config: &Config,
    manifest: &Utf8Path,
    environment: &settings::Environment,
) -> Result<Option<u64>> {
    let env_error = |var: &str, r: settings::Refusal| Error::Flag {
        flag: format!("environment variable {var}"),
        message: r.message,
        help: r.help,
    };
    let epoch =
        settings::source_date_epoch(environment).map_err(|r| env_error("SOURCE_DATE_EPOCH", r))?;
    settings::cache_dir_env(environment).map_err(|r| env_error("GOPACK_CACHE_DIR", r))?;
    if config
        .cache_dir
        .as_ref()
        .is_some_and(|d| d.as_str().is_empty())
    {
        return Err(Error::Config {
            manifest: manifest.to_path_buf(),
            key: "workspace.metadata.gopack.cache-dir".into(),
            message: "the value is empty".into(),
            help: "write a folder path (relative to the workspace root), or remove the key to use <target>/gopack/cache".into(),
        });
    }
    if let Some(reference) = &config.cache_registry {
        crate::remote_cache::check_reference(reference).map_err(|message| Error::Config {
            manifest: manifest.to_path_buf(),
            key: "workspace.metadata.gopack.cache-registry".into(),
            message,
            help: crate::remote_cache::REFERENCE_HELP.into(),
        })?;
    }
    Ok(epoch)
}

/// Checks a user; on failure returns the field and why.
fn check_user(user: &UserConfig) -> std::result::Result<(), (&'static str, String)> {
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
    if user.uid == 65534 || user.gid() == 65534 {
        return Err(("uid", "65534 belongs to nobody".into()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workspace(value: serde_json::Value) -> Result<Workspace> {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(root.join("app/go.mod"), "module example.com/app\n").unwrap();
        let ws = Workspace::from_value(
            root.clone(),
            root.join("target"),
            &value,
            settings::Environment::default(),
        );
        drop(dir);
        ws
    }

    fn error_text(value: serde_json::Value) -> String {
        workspace(value).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let ws = workspace(json!({"apps": [{"name": "api", "path": "app"}]})).unwrap();
        let app = &ws.all_apps()[0];
        assert_eq!(app.config.main, ".");
        assert_eq!(app.config.user.uid, 10001);
        assert_eq!(app.config.user.gid(), 10001);
        assert_eq!(app.config.user.name, "appuser");
        assert!(app.config.certs);
        assert_eq!(app.config.tzdata, Tzdata::Files);
        assert_eq!(app.binary_path(), "/go/bin/api");
        assert_eq!(app.platforms(), vec![Platform::host()]);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = error_text(json!({"apps": [{"name": "api", "path": "app", "colour": 1}]}));
        assert!(text.contains("apps[0].colour"), "{text}");
        assert!(text.contains("Cargo.toml"), "{text}");
    }

    #[test]
    fn mistakes_get_hints() {
        let text = error_text(json!({"apps": [{"name": "api", "path": "app", "platfroms": []}]}));
        assert!(text.contains("did you mean `platforms`?"), "{text}");
        let text = error_text(json!({"apps": [{"name": "api", "path": "app", "env": {"A": "1"}}]}));
        assert!(
            text.contains("`build-env`") && text.contains("image-env"),
            "{text}"
        );
        let text = error_text(json!({"apps": {"name": "api", "path": "app"}}));
        assert!(
            text.contains("[[workspace.metadata.gopack.apps]]"),
            "{text}"
        );
        let ws = workspace(json!({"apps": [{"name": "api", "path": "app"}]})).unwrap();
        let err = ws
            .select(&["apj".into()], &Overrides::default())
            .unwrap_err();
        assert!(err.to_string().contains("did you mean `api`?"), "{err}");
    }

    #[test]
    fn ports_take_numbers() {
        let ws = workspace(
            json!({"apps": [{"name": "api", "path": "app", "expose": [8080, "53/udp", "9090"]}]}),
        )
        .unwrap();
        assert_eq!(
            ws.all_apps()[0].config.expose,
            ["8080/tcp", "53/udp", "9090/tcp"]
        );
        let text =
            error_text(json!({"apps": [{"name": "api", "path": "app", "expose": ["http"]}]}));
        assert!(
            text.contains("apps[0].expose") && text.contains("8080"),
            "{text}"
        );
    }

    #[test]
    fn bad_platform_is_named() {
        let text = error_text(
            json!({"apps": [{"name": "api", "path": "app", "platforms": ["linux/amd64", "linux/x86"]}]}),
        );
        assert!(text.contains("apps[0].platforms[1]"), "{text}");
    }

    #[test]
    fn root_user_is_rejected() {
        let text =
            error_text(json!({"apps": [{"name": "api", "path": "app", "user": {"uid": 0}}]}));
        assert!(
            text.contains("apps[0].user.uid") && text.contains("root"),
            "{text}"
        );
    }

    #[test]
    fn duplicate_names_and_missing_go_mod() {
        let text = error_text(
            json!({"apps": [{"name": "api", "path": "app"}, {"name": "api", "path": "app"}]}),
        );
        assert!(
            text.contains("apps[1].name") && text.contains("already used"),
            "{text}"
        );
        let text = error_text(json!({"apps": [{"name": "api", "path": "nowhere"}]}));
        assert!(
            text.contains("apps[0].path") && text.contains("go.mod"),
            "{text}"
        );
    }

    #[test]
    fn tzdata_forms() {
        let ws = workspace(json!({"apps": [{"name": "api", "path": "app", "tzdata": "embed"}]}))
            .unwrap();
        assert_eq!(ws.all_apps()[0].config.tzdata, Tzdata::Embed);
        let text = error_text(json!({"apps": [{"name": "api", "path": "app", "tzdata": "yes"}]}));
        assert!(text.contains("tzdata"), "{text}");
    }

    #[test]
    fn cgo_forms_and_cc_keys() {
        let ws = workspace(json!({"apps": [
            {"name": "a", "path": "app", "cgo": true},
            {"name": "b", "path": "app", "cgo": "dynamic", "cc": {"linux/arm64": "zig cc -target aarch64-linux-musl"}},
            {"name": "c", "path": "app"}
        ]}))
        .unwrap();
        let cgo: Vec<Cgo> = ws.all_apps().iter().map(|a| a.config.cgo).collect();
        assert_eq!(cgo, vec![Cgo::Static, Cgo::Dynamic, Cgo::Off]);
        let text = error_text(json!({"apps": [{"name": "a", "path": "app", "cgo": "shared"}]}));
        assert!(
            text.contains("apps[0].cgo") && text.contains("\"dynamic\""),
            "{text}"
        );
        let text =
            error_text(json!({"apps": [{"name": "a", "path": "app", "cc": {"linux/x86": "gcc"}}]}));
        assert!(text.contains("cc.\"linux/x86\""), "{text}");
        let apps = ws
            .select(
                &["c".into()],
                &Overrides {
                    cgo: Some(Cgo::Static),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(apps[0].config.cgo, Cgo::Static);
    }

    #[test]
    fn overrides_apply_and_are_checked() {
        let ws = workspace(json!({"apps": [{"name": "api", "path": "app"}]})).unwrap();
        let apps = ws
            .select(
                &[],
                &Overrides {
                    uid: Some(1234),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(apps[0].config.user.uid, 1234);
        assert_eq!(apps[0].config.user.gid(), 1234);
        let err = ws
            .select(
                &[],
                &Overrides {
                    uid: Some(0),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("--uid"), "{err}");
        let err = ws
            .select(&["web".into()], &Overrides::default())
            .unwrap_err();
        assert!(err.to_string().contains("known apps: api"), "{err}");
    }

    #[test]
    fn settings_that_break_images_are_named() {
        let cases = [
            (
                json!({"binary-path": "/tmp"}),
                "apps[0].binary-path",
                "/tmp",
            ),
            (
                json!({"binary-path": "/etc/passwd"}),
                "apps[0].binary-path",
                "/etc/passwd",
            ),
            (
                json!({"binary-path": "/go/../etc/app"}),
                "apps[0].binary-path",
                "..",
            ),
            (
                json!({"binary-path": "/etc/ssl/certs"}),
                "apps[0].binary-path",
                "ca-certificates",
            ),
            (
                json!({"binary-path": "/usr/share/zoneinfo/UTC"}),
                "apps[0].binary-path",
                "zoneinfo",
            ),
            (
                json!({"workdir": "relative"}),
                "apps[0].workdir",
                "absolute",
            ),
            (
                json!({"image-env": {"A=B": "c"}}),
                "apps[0].image-env",
                "environment variable",
            ),
            (
                json!({"image-env": {"": "c"}}),
                "apps[0].image-env",
                "environment variable",
            ),
            (
                json!({"locale": "en_US.UTF-8\nLC_ALL=C"}),
                "apps[0].locale",
                "newline",
            ),
            (json!({"timezone": "UTC\r"}), "apps[0].timezone", "newline"),
            (
                json!({"labels": {"a": "b\nc"}}),
                "apps[0].labels",
                "newline",
            ),
        ];
        for (extra, key, word) in cases {
            let mut app = json!({"name": "api", "path": "app"});
            app.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let text = error_text(json!({ "apps": [app] }));
            assert!(
                text.contains(key) && text.contains(word) && text.contains("help:"),
                "{extra}: {text}"
            );
        }
        let text = error_text(json!({"cache-dir": "", "apps": [{"name": "api", "path": "app"}]}));
        assert!(
            text.contains("cache-dir") && text.contains("empty"),
            "{text}"
        );
        let ws = workspace(json!({"apps": [{"name": "api", "path": "app",
            "binary-path": "/usr/local/bin/api", "workdir": "/srv",
            "image-env": {"LOG_LEVEL": "debug"}, "locale": "en_US.UTF-8",
            "labels": {"org.example.team": "Zahlungsverkehr ü"}}]}));
        assert!(ws.is_ok(), "{:?}", ws.err());
    }
}
