//! The keys of `[workspace.metadata.gopack]` as serde reads them: the workspace
//! table, one app, and the bool-or-word settings. Defaults live here; checks
//! that need more than one key or the filesystem are in `validate`.

use super::{files, supply, Policy};
use crate::platform::Platform;
use camino::Utf8PathBuf;
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
    /// The folder, relative to the workspace root and inside it, beneath which
    /// every app's `files` sources are read; default: each app's own folder.
    #[serde(default)]
    pub files_root: Option<Utf8PathBuf>,
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
    /// The app's name: the binary's, and the image's unless `image-name` is set.
    pub name: String,
    /// The image's repository path under `registry` (e.g. `team/api`);
    /// default: the app's name. Used by `--load`, `--push`, the archive's
    /// tags and `run`.
    #[serde(default)]
    pub image_name: Option<String>,
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
    /// Where `files` sources are read from, and the folder they may not leave.
    pub sources: files::SourceRoot,
    /// `SOURCE_DATE_EPOCH` as the workspace was given it (checked).
    pub source_date_epoch: Option<u64>,
    /// The app's place in the manifest's `apps` array.
    pub index: usize,
    /// The manifest (the workspace's Cargo.toml) that declares it.
    pub manifest: Utf8PathBuf,
}

impl App {
    /// The app's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// One of the app's keys as an error names it: `workspace.metadata.gopack.apps[N].<field>`.
    pub fn key(&self, field: &str) -> String {
        format!("workspace.metadata.gopack.apps[{}].{field}", self.index)
    }

    /// The image's repository path: `image-name`, else the app's name.
    pub fn image_name(&self) -> &str {
        self.config
            .image_name
            .as_deref()
            .unwrap_or(&self.config.name)
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
