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

/// Where the deps stage prepares the base files of the final image.
pub const ROOTFS_DIR: &str = "/rootfs";
/// Where the build stage puts the binary, under its path in the image.
pub const APPFS_DIR: &str = "/appfs";
/// The Go build cache inside the builder (a BuildKit cache mount when enabled).
pub const GOCACHE_DIR: &str = "/root/.cache/go-build";
/// Build arguments the Dockerfile declares for the user; the engine sets them from the config.
pub const USER_ARGS: &[&str] = &["USERNAME", "USER_ID", "GROUP_ID"];
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
            "# Build:      DOCKER_BUILDKIT=0 docker build{args}{version_arg} -t {name}:{tag} {context}"
        );
        let _ = writeln!(
            s,
            "#             (the classic builder sets no platform arguments: pass them, one platform per build)"
        );
    } else {
        let _ = writeln!(
            s,
            "# Build:      docker buildx build --platform {}{version_arg} -t {name}:{tag} {context}",
            platforms.join(",")
        );
        let _ = writeln!(
            s,
            "#             docker build{version_arg} -t {name}:{tag} {context}   (BuildKit; the engine's platform only)"
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

/// The first line of a `.dockerignore` gopack wrote.
pub const DOCKERIGNORE_MARKER: &str = "# generated by gopack:";

/// A `.dockerignore` for the module folder that leaves out what the docker
/// engine's copy of the module leaves out: `.git` and every hidden folder,
/// nested modules, and the cargo target folder when it is inside the module.
pub fn dockerignore(app: &App, target_dir: &Utf8Path) -> Result<String> {
    let mut excluded = Vec::new();
    ignored_paths(&app.dir, &app.dir, target_dir, &mut excluded)?;
    excluded.sort();
    let mut s = format!(
        "{DOCKERIGNORE_MARKER} the build context of `{}` ({}), as `pack --engine docker` copies it.\n\
         # Regenerate: cargo xtask dockerfile {} --dockerignore <this file>\n\
         .git\n**/.git\n",
        app.name(),
        context_dir(app),
        app.name()
    );
    for path in excluded {
        if path != ".git" {
            let _ = writeln!(s, "{path}");
        }
    }
    Ok(s)
}

fn ignored_paths(
    root: &Utf8Path,
    dir: &Utf8Path,
    target_dir: &Utf8Path,
    out: &mut Vec<String>,
) -> Result<()> {
    let mut entries: Vec<_> = dir
        .read_dir_utf8()
        .at(dir, "list")?
        .collect::<std::io::Result<Vec<_>>>()
        .at(dir, "list")?;
    entries.sort_by(|a, b| a.file_name().cmp(b.file_name()));
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().at(path, "read")?;
        if !kind.is_dir() {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(path).as_str().to_string();
        if entry.file_name().starts_with('.') || path == target_dir || path.join("go.mod").is_file()
        {
            out.push(relative);
            continue;
        }
        ignored_paths(root, path, target_dir, out)?;
    }
    Ok(())
}

fn deps_stage(app: &App, builder: &str, has_go_sum: bool, vendored: bool) -> String {
    let config = &app.config;
    let user = &config.user;
    let mut s = String::new();
    if vendored {
        s.push_str(
            "# Stage 1: builder image, app user and base files. The modules are vendored:\n",
        );
        s.push_str("# the build stage copies vendor/ with the sources, nothing is downloaded.\n");
    } else {
        s.push_str(
            "# Stage 1: builder image, app user, base files, and the module's dependencies\n",
        );
        s.push_str("# (cached until go.mod or go.sum change).\n");
    }
    if cross_compiles(app) {
        s.push_str("# It runs on the build machine and cross-compiles for the target platform.\n");
    } else {
        s.push_str("# cgo: it runs on the target platform (emulated when that is not the build machine's).\n");
    }
    let _ = writeln!(s, "FROM {}{builder} AS deps", from_platform(app));
    let _ = writeln!(s, "ARG USERNAME={}", user.name);
    let _ = writeln!(s, "ARG USER_ID={}", user.uid);
    let _ = writeln!(s, "ARG GROUP_ID={}", user.gid());
    s.push_str("ARG GOPROXY\nARG GOPRIVATE\nARG GOFLAGS\nARG GOSUMDB\n");
    if let Some(mirror) = &config.apk_mirror {
        let _ = writeln!(
            s,
            "RUN sed -i 's|https\\?://dl-cdn.alpinelinux.org|{}|g' /etc/apk/repositories",
            mirror.trim_end_matches('/')
        );
    }
    let mut packages: Vec<String> = vec!["git".into(), "ca-certificates".into(), "tzdata".into()];
    if config.cgo.enabled() {
        packages.extend(["gcc".into(), "musl-dev".into()]);
    }
    packages.extend(config.apk_packages.iter().cloned());
    let _ = writeln!(s, "RUN apk add --no-cache {}", packages.join(" "));

    // The builder's own user (the idioms' adduser), then the final image's base
    // files, written in exactly the format of the oci engine's rootfs.
    let mut steps: Vec<String> = vec![
        "addgroup -g \"${GROUP_ID}\" \"${USERNAME}\"".into(),
        "adduser --disabled-password --gecos \"\" --home /nonexistent --shell /sbin/nologin \\\n      \
         --no-create-home --uid \"${USER_ID}\" --ingroup \"${USERNAME}\" \"${USERNAME}\""
            .into(),
    ];
    let mut dirs = vec![format!("{ROOTFS_DIR}/etc"), format!("{ROOTFS_DIR}/tmp")];
    if config.certs {
        dirs.push(format!("{ROOTFS_DIR}/{}", parent(CA_BUNDLE_PATH)));
    }
    if config.tzdata == Tzdata::Files {
        dirs.push(format!("{ROOTFS_DIR}/{}", parent(ZONEINFO_PATH)));
    }
    steps.push(format!("mkdir -p {}", dirs.join(" ")));
    steps.push(format!(
        "printf '{}' \"${{USERNAME}}\" \"${{USER_ID}}\" \"${{GROUP_ID}}\" > {ROOTFS_DIR}/etc/passwd",
        PASSWD_FORMAT
    ));
    steps.push(format!(
        "printf '{}' \"${{USERNAME}}\" \"${{GROUP_ID}}\" > {ROOTFS_DIR}/etc/group",
        GROUP_FORMAT
    ));
    if config.certs {
        steps.push(format!(
            "cp /{CA_BUNDLE_PATH} {ROOTFS_DIR}/{CA_BUNDLE_PATH}"
        ));
    }
    if config.tzdata == Tzdata::Files {
        let zoneinfo = format!("{ROOTFS_DIR}/{ZONEINFO_PATH}");
        steps.push(format!("cp -a /{ZONEINFO_PATH} {zoneinfo}"));
        steps.push(format!(
            "rm -rf {}",
            ZONEINFO_SKIP
                .iter()
                .map(|name| format!("{zoneinfo}/{name}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if let Some(zone) = &config.timezone {
        steps.push(format!(
            "cp -L /{ZONEINFO_PATH}/{zone} {ROOTFS_DIR}/etc/localtime"
        ));
        steps.push(format!("echo {zone} > {ROOTFS_DIR}/etc/timezone"));
    }
    steps.push(format!("find {ROOTFS_DIR} -type d -exec chmod 0755 {{}} +"));
    steps.push(format!("find {ROOTFS_DIR} -type f -exec chmod 0644 {{}} +"));
    steps.push(format!("chmod 1777 {ROOTFS_DIR}/tmp"));
    let _ = writeln!(s, "RUN {}", steps.join(" \\\n && "));
    s.push_str("WORKDIR /src\n");
    if vendored {
        return s;
    }
    if has_go_sum {
        s.push_str("COPY go.mod go.sum ./\n");
    } else {
        s.push_str("COPY go.mod ./\n");
    }
    s.push_str("RUN go mod download\n");
    s
}

/// `rootfs::passwd` as a printf format over USERNAME, USER_ID, GROUP_ID.
const PASSWD_FORMAT: &str = "root:x:0:0:root:/root:/sbin/nologin\\n\
                             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\\n\
                             %s:x:%s:%s::/nonexistent:/sbin/nologin\\n";
/// `rootfs::group` as a printf format over USERNAME, GROUP_ID.
const GROUP_FORMAT: &str = "root:x:0:\\nnogroup:x:65534:\\n%s:x:%s:\\n";

fn build_stage(app: &App, options: &Options) -> Result<String> {
    let config = &app.config;
    if config.cgo == crate::config::Cgo::Dynamic {
        return Err(Error::Invalid {
            path: format!("app `{}`: cgo = \"dynamic\"", app.name()),
            message: "the docker engine builds cgo apps static only (its builder is musl-based)"
                .into(),
            help: "use cgo = \"static\" with the docker engine, or engine = \"oci\" (or --engine oci) for cgo = \"dynamic\"".into(),
        });
    }
    // The version is a build argument, so that a committed Dockerfile does not
    // change with every commit; the engine passes the resolved version.
    let setup = ModuleSetup::detect(app)?;
    // Static cgo's -ldflags and tags come with the flags.
    let flags = BuildFlags::for_app(app, "${VERSION}", &setup)?;
    let binary = app.binary_path();
    let output = format!("{APPFS_DIR}{binary}");

    let mut env: Vec<(String, String)> = vec![(
        "CGO_ENABLED".into(),
        if config.cgo.enabled() { "1" } else { "0" }.into(),
    )];
    env.extend(config.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if options.cache_mounts {
        env.push(("GOCACHE".into(), GOCACHE_DIR.into()));
    }
    env.sort();

    // The target platform, from the arguments BuildKit sets (the engine passes
    // them to the classic builder).
    let mut go_build = String::from("GOOS=\"${TARGETOS}\" GOARCH=\"${TARGETARCH}\" ");
    if uses_variant(app) {
        go_build.push_str("GOARM=\"${TARGETVARIANT#v}\" ");
    }
    for (name, value) in &env {
        let _ = write!(go_build, "{name}={} ", sh_word(value));
    }
    go_build.push_str("go build");
    for arg in flags.args() {
        let _ = write!(go_build, " {}", sh_word(&arg));
    }
    let _ = write!(
        go_build,
        " -o {output} {}",
        sh_word(&main_package(&config.main))
    );

    let mut parents = Vec::new();
    let mut dir = parent(&output);
    while dir != APPFS_DIR && !dir.is_empty() {
        parents.push(dir.to_string());
        dir = parent(dir);
    }
    parents.reverse();

    let mut s = String::new();
    s.push_str("# Stage 2: the static binary for the target platform, built as the oci engine builds it.\n");
    s.push_str("FROM deps AS build\n");
    if uses_variant(app) {
        s.push_str("ARG TARGETOS TARGETARCH TARGETVARIANT\n");
    } else {
        s.push_str("ARG TARGETOS TARGETARCH\n");
    }
    let _ = writeln!(s, "ARG VERSION={}", version_default(app));
    s.push_str("COPY . .\n");
    let run = if options.cache_mounts {
        format!("RUN --mount=type=cache,id=gopack-go-build,target={GOCACHE_DIR} ")
    } else {
        "RUN ".to_string()
    };
    let _ = writeln!(
        s,
        "{run}mkdir -p {} \\\n && {go_build} \\\n && chmod 0755 {} {output}",
        parent(&output),
        parents.join(" ")
    );
    Ok(s)
}

fn image_stage(app: &App) -> String {
    let config = &app.config;
    let mut s = String::new();
    s.push_str("# Stage 3: the image: base files and the binary, two layers, no shell.\n");
    s.push_str("FROM scratch\n");
    let _ = writeln!(s, "ARG VERSION={}", version_default(app));
    let _ = writeln!(s, "COPY --from=deps {ROOTFS_DIR}/ /");
    let _ = writeln!(s, "COPY --from=build {APPFS_DIR}/ /");
    let mut env = rootfs::settings_env(app);
    env.extend(config.image_env.clone());
    for (name, value) in &env {
        let _ = writeln!(s, "ENV {name}={}", docker_string(value));
    }
    let mut labels = vec![
        (
            "org.opencontainers.image.title".to_string(),
            docker_string(&config.name),
        ),
        (
            "org.opencontainers.image.version".to_string(),
            "\"${VERSION}\"".to_string(),
        ),
    ];
    labels.extend(
        config
            .labels
            .iter()
            .map(|(k, v)| (docker_string(k), docker_string(v))),
    );
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(s, "LABEL {}", labels.join(" \\\n      "));
    for port in &config.expose {
        let _ = writeln!(s, "EXPOSE {port}");
    }
    if let Some(workdir) = &config.workdir {
        let _ = writeln!(s, "WORKDIR {workdir}");
    }
    let _ = writeln!(s, "USER {}:{}", config.user.uid, config.user.gid());
    let _ = writeln!(s, "ENTRYPOINT {}", json_array(&[app.binary_path()]));
    if !config.args.is_empty() {
        let _ = writeln!(s, "CMD {}", json_array(&config.args));
    }
    s
}

/// Compares the rendered text with a committed file; the error shows the difference.
pub fn check(rendered: &str, file: &Utf8Path, app: &str) -> Result<()> {
    let committed = std::fs::read_to_string(file).at(file, "read")?;
    if committed == rendered {
        return Ok(());
    }
    Err(Error::Invalid {
        path: file.to_string(),
        message: format!(
            "out of date with the config of `{app}` (- committed, + generated):\n{}",
            diff(&committed, rendered)
        ),
        help: format!("regenerate it: cargo xtask dockerfile {app} > {file}"),
    })
}

/// A line diff (`-` old, `+` new) with one line of context around changes.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table; Dockerfiles are short.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', j + 1, b[j]));
            j += 1;
        } else {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        }
    }
    if old.ends_with('\n') != new.ends_with('\n') {
        ops.push(('~', 0, "(the files differ in the final newline)"));
    }
    let near = |k: usize| {
        ops[k.saturating_sub(1)..(k + 2).min(ops.len())]
            .iter()
            .any(|op| op.0 != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line, text)) in ops.iter().enumerate() {
        if *op == ' ' && !near(k) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("  ...\n");
            skipped = false;
        }
        let _ = writeln!(out, "{op}{line:>4} | {text}");
    }
    out
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// One shell word: bare when safe, else double-quoted with `${VERSION}` left to expand.
fn sh_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if safe {
        return word.to_string();
    }
    let mut quoted = String::from("\"");
    for c in word.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted.replace("\\${VERSION}", "${VERSION}")
}

/// A Dockerfile word: bare when safe, else a double-quoted string.
fn docker_word(value: &str) -> String {
    let safe = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+:@".contains(c));
    if safe && !value.is_empty() {
        value.to_string()
    } else {
        docker_string(value)
    }
}

/// A double-quoted Dockerfile value with no variable expansion.
fn docker_string(value: &str) -> String {
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' | '\\' | '$' => {
                quoted.push('\\');
                quoted.push(c)
            }
            '\n' => quoted.push_str("\\n"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn json_array(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
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
