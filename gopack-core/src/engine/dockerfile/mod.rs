//! The idioms' multi-stage Dockerfile, rendered from an app's config.
//!
//! One file for every platform, in the common multi-platform form: the
//! builder runs on the build machine (`FROM --platform=$BUILDPLATFORM`) and
//! cross-compiles for the target (`ARG TARGETOS TARGETARCH`, `GOOS/GOARCH`
//! from them). Three stages: `deps` (the builder image with the packages, the
//! app user, the final root filesystem's base files, and `go mod download` as
//! its own step, so it is cached by go.sum), `build` (the same `go build` as
//! the oci engine) and the `FROM scratch` image with two `COPY` layers, a
//! numeric `USER` and an exec-form `ENTRYPOINT`. Modes are set in the builder
//! because the classic builder has no `COPY --chmod`; the final tree matches
//! [`crate::image::rootfs`] file for file. cgo apps build on the target platform
//! (their C compiler is the builder's own), so their builder has no
//! `--platform`.
//!
//! The classic builder sets no platform arguments and expands only ARGs
//! declared before the first `FROM`: [`Options::classic`] declares
//! `ARG BUILDPLATFORM` there, and the engine passes the values as build args
//! ([`platform_args`]). [`dockerignore`] renders the `.dockerignore` that
//! keeps the context as the docker engine's copy of the module.

use crate::build::{main_package, BuildFlags};
use crate::config::{App, Tzdata};
use crate::error::{Error, IoContext, Result};
use crate::gomod::ModuleSetup;
use crate::image::rootfs::{self, CA_BUNDLE_PATH, ZONEINFO_PATH};
use crate::platform::Platform;
use camino::Utf8Path;
use std::fmt::Write as _;

mod check;
mod ignore;
mod quote;
mod stages;

pub use check::{check, diff};
pub use ignore::{dockerignore, DOCKERIGNORE_MARKER};
use quote::{docker_string, docker_word, json_array, sh_word};
pub use stages::supported;
use stages::{build_stage, deps_stage, image_stage};

/// Where the deps stage prepares the base files of the final image.
pub const ROOTFS_DIR: &str = "/rootfs";
/// Where the build stage puts the binary, under its path in the image.
pub const APPFS_DIR: &str = "/appfs";
/// The Go build cache inside the builder (a BuildKit cache mount when enabled).
pub const GOCACHE_DIR: &str = "/root/.cache/go-build";
/// Build arguments the Dockerfile declares for the user; the engine sets them from the config.
pub const USER_ARGS: &[&str] = &["USERNAME", "USER_ID", "GROUP_ID"];
/// The label of the builder stages: the app's name.
pub const APP_LABEL: &str = "io.gopack.app";
/// The label of the builder stages: `deps` or `build`.
pub const STAGE_LABEL: &str = "io.gopack.stage";
/// Zoneinfo entries the oci engine's rootfs leaves out, left out here too.
const ZONEINFO_SKIP: &[&str] = &["right", "localtime", "posixrules"];

/// How to render.
#[derive(Debug, Clone)]
pub struct Options {
    /// The platform the docker engine builds (the engine's); the file itself
    /// takes the target from `TARGETOS`/`TARGETARCH`.
    pub platform: Platform,
    /// Start the build stage from this already-built deps image instead of the deps stage.
    pub deps_image: Option<String>,
    /// Use BuildKit cache mounts (`RUN --mount=type=cache`) for the Go build cache.
    pub cache_mounts: bool,
    /// For the classic builder: declare `ARG BUILDPLATFORM` before the first
    /// `FROM` (the classic builder expands only those), to be passed with
    /// `--build-arg` like the target's arguments ([`platform_args`]).
    pub classic: bool,
}

impl Options {
    /// Options for the committed Dockerfile: BuildKit's form, no cache mounts.
    pub fn for_app(app: &App) -> Options {
        Options {
            platform: app.platforms()[0].clone(),
            deps_image: None,
            cache_mounts: false,
            classic: false,
        }
    }
}

/// Whether the builder runs on the build platform and cross-compiles: every
/// app but a cgo one, whose C compiler builds for its own platform.
pub fn cross_compiles(app: &App) -> bool {
    !app.config.cgo.enabled()
}

/// Whether the file declares `TARGETVARIANT` (for GOARM): the app has a 32-bit arm platform.
fn uses_variant(app: &App) -> bool {
    app.platforms().iter().any(|p| p.arch == "arm")
}

/// The build args the classic builder needs to build `platform` on
/// `build_platform` (BuildKit sets them itself): `BUILDPLATFORM` when the
/// builder cross-compiles, `TARGETOS`, `TARGETARCH` and, for arm,
/// `TARGETVARIANT`. With `deps_only`, only what the deps stage reads.
pub fn platform_args(
    app: &App,
    platform: &Platform,
    build_platform: &Platform,
    deps_only: bool,
) -> Vec<(String, String)> {
    let mut args = Vec::new();
    if cross_compiles(app) {
        args.push(("BUILDPLATFORM".to_string(), build_platform.to_string()));
    }
    if deps_only {
        return args;
    }
    args.push(("TARGETOS".into(), platform.os.clone()));
    args.push(("TARGETARCH".into(), platform.arch.clone()));
    if uses_variant(app) {
        let variant = match (&platform.variant, platform.arch.as_str()) {
            (Some(v), _) => v.clone(),
            (None, "arm") => "v7".into(),
            (None, _) => String::new(),
        };
        args.push(("TARGETVARIANT".into(), variant));
    }
    args
}

/// A rendered Dockerfile, stage by stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The header comment.
    pub header: String,
    /// The deps stage (what the deps tag stores).
    pub deps: String,
    /// The build stage.
    pub build: String,
    /// The final `FROM scratch` stage.
    pub image: String,
}

impl Dockerfile {
    /// The whole file.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.header, self.deps, self.build, self.image
        )
    }
}

/// The Go version of go.mod's `go` line as `major.minor`, e.g. `1.23`.
pub fn go_version(app: &App) -> Result<String> {
    let path = app.dir.join("go.mod");
    let text = std::fs::read_to_string(&path).at(&path, "read")?;
    text.lines()
        .filter_map(|line| line.split("//").next()?.trim().strip_prefix("go "))
        .map(str::trim)
        .find_map(|version| {
            let mut parts = version.split('.');
            let major = parts.next()?.parse::<u32>().ok()?;
            let minor = parts.next()?.split(|c: char| !c.is_ascii_digit()).next()?;
            let minor = minor.parse::<u32>().ok()?;
            Some(format!("{major}.{minor}"))
        })
        .ok_or_else(|| Error::Invalid {
            path: path.to_string(),
            message: "no `go` line (such as `go 1.23`) to pick a builder image by".into(),
            help: "add a `go` line to go.mod, or set `builder-image` in the app's config".into(),
        })
}

/// The builder image: `builder-image`, else `golang:<go version>-alpine`.
pub fn builder_image(app: &App) -> Result<String> {
    match &app.config.builder_image {
        Some(image) => Ok(image.clone()),
        None => Ok(format!("golang:{}-alpine", go_version(app)?)),
    }
}

/// Renders the Dockerfile of `app`.
pub fn render(app: &App, options: &Options) -> Result<Dockerfile> {
    supported(app)?;
    let builder = builder_image(app)?;
    let has_go_sum = app.dir.join("go.sum").is_file();
    let vendored = ModuleSetup::detect(app)?.vendored();

    let header = header(app, options);

    let deps = match &options.deps_image {
        Some(image) => format!(
            "# Stage 1: the dependencies, built before and tagged by the go.sum hash.\n\
             FROM {}{image} AS deps\n",
            from_platform(app)
        ),
        None => deps_stage(app, &builder, has_go_sum, vendored),
    };

    let build = build_stage(app, options)?;
    let image = image_stage(app);
    Ok(Dockerfile {
        header,
        deps,
        build,
        image,
    })
}

/// `--platform=$BUILDPLATFORM ` for a builder that cross-compiles, else nothing.
fn from_platform(app: &App) -> &'static str {
    if cross_compiles(app) {
        "--platform=$BUILDPLATFORM "
    } else {
        ""
    }
}

/// `ARG VERSION`'s default: the fixed version (`version` or `--app-version`), else `dev`.
fn version_default(app: &App) -> String {
    match &app.config.version {
        Some(version) if !version.is_empty() => docker_word(version),
        _ => "dev".into(),
    }
}

/// The header: what the file is, the build context, and the commands that build it.
fn header(app: &App, options: &Options) -> String {
    let name = &app.config.name;
    let image = app.image_name();
    let context = context_dir(app);
    let file = format!("{}/Dockerfile", context.trim_end_matches('/'));
    let file = file.trim_start_matches("./");
    let (version_arg, tag) = match &app.config.version {
        Some(version) if !version.is_empty() => {
            (String::new(), crate::image::metadata::tag_for(version))
        }
        _ => (
            " --build-arg VERSION=<version>".to_string(),
            "<version>".to_string(),
        ),
    };
    let platforms: Vec<String> = app.platforms().iter().map(|p| p.to_string()).collect();
    let classic_flag = if options.classic { " --classic" } else { "" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# The image of `{name}`, generated by gopack from [workspace.metadata.gopack]."
    );
    let _ = writeln!(
        s,
        "# Regenerate: cargo xtask dockerfile {name}{classic_flag} > {file}"
    );
    let _ = writeln!(
        s,
        "# Check:      cargo xtask dockerfile {name}{classic_flag} --check {file}"
    );
    let _ = writeln!(
        s,
        "# Context:    {context} (the module folder, relative to the workspace root; this file is its"
    );
    let _ = writeln!(
        s,
        "#             Dockerfile). Keep .git, target/ and nested modules out of the context with"
    );
    let _ = writeln!(
        s,
        "#             cargo xtask dockerfile {name} --dockerignore {}/.dockerignore",
        context.trim_end_matches('/')
    );
    if options.classic {
        let platform = &options.platform;
        let mut args = String::new();
        for (key, value) in platform_args(app, platform, platform, false) {
            let _ = write!(args, " --build-arg {key}={value}");
        }
        let _ = writeln!(
            s,
            "# Build:      DOCKER_BUILDKIT=0 docker build{args}{version_arg} -t {image}:{tag} {context}"
        );
        let _ = writeln!(
            s,
            "#             (the classic builder sets no platform arguments: pass them, one platform per build)"
        );
    } else {
        let _ = writeln!(
            s,
            "# Build:      docker buildx build --platform {}{version_arg} -t {image}:{tag} {context}",
            platforms.join(",")
        );
        let _ = writeln!(
            s,
            "#             docker build{version_arg} -t {image}:{tag} {context}   (BuildKit; the engine's platform only)"
        );
    }
    if options.classic && cross_compiles(app) {
        s.push_str(
            "\n# The classic builder expands only arguments declared before the first FROM.\n",
        );
        s.push_str("ARG BUILDPLATFORM\n");
    }
    s
}

/// The build context: the module folder, relative to the workspace root.
fn context_dir(app: &App) -> String {
    let path = app.config.path.as_str().trim_end_matches('/');
    if path.is_empty() {
        ".".into()
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::stages::{GROUP_FORMAT, PASSWD_FORMAT};
    use super::*;

    fn printf(format: &str, args: &[&str]) -> String {
        let mut out = format.replace("\\n", "\n");
        for arg in args {
            out = out.replacen("%s", arg, 1);
        }
        out
    }

    #[test]
    fn accounts_match_the_oci_engine() {
        assert_eq!(
            printf(PASSWD_FORMAT, &["appuser", "10001", "10002"]),
            rootfs::passwd("appuser", 10001, 10002)
        );
        assert_eq!(
            printf(GROUP_FORMAT, &["appuser", "10002"]),
            rootfs::group("appuser", 10002)
        );
    }

    #[test]
    fn words_and_strings_are_quoted() {
        assert_eq!(sh_word("-trimpath"), "-trimpath");
        assert_eq!(
            sh_word("-ldflags=-s -w -X main.version=${VERSION}"),
            "\"-ldflags=-s -w -X main.version=${VERSION}\""
        );
        assert_eq!(sh_word("a$b\"c"), "\"a\\$b\\\"c\"");
        assert_eq!(docker_string("x$y"), "\"x\\$y\"");
    }

    #[test]
    fn diff_shows_changed_lines() {
        let d = diff("a\nb\nc\nd\ne\nf\n", "a\nb\nC\nd\ne\nf\n");
        assert!(d.contains("-   3 | c"), "{d}");
        assert!(d.contains("+   3 | C"), "{d}");
        assert!(!d.contains("| f"), "{d}");
    }
}
