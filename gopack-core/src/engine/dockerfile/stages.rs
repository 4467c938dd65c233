//! The three stages: `deps` (builder packages, the app user, the final root
//! filesystem's base files, `go mod download`), `build` (the oci engine's
//! `go build`) and the `FROM scratch` image.

use super::*;

pub(super) fn deps_stage(app: &App, builder: &str, has_go_sum: bool, vendored: bool) -> String {
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
    s.push_str(&stage_label(app, "deps"));
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
pub(super) const PASSWD_FORMAT: &str = "root:x:0:0:root:/root:/sbin/nologin\\n\
                             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\\n\
                             %s:x:%s:%s::/nonexistent:/sbin/nologin\\n";
/// `rootfs::group` as a printf format over USERNAME, GROUP_ID.
pub(super) const GROUP_FORMAT: &str = "root:x:0:\\nnogroup:x:65534:\\n%s:x:%s:\\n";

pub(super) fn build_stage(app: &App, options: &Options) -> Result<String> {
    let config = &app.config;
    supported(app)?;
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
    s.push_str(&stage_label(app, "build"));
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
    s.push_str(&files_steps(app)?);
    Ok(s)
}

/// The label of a builder stage (`io.gopack.app`, `io.gopack.stage`): the
/// classic builder keeps every stage as an image, and gopack and `clean`
/// find the ones it left by it.
fn stage_label(app: &App, stage: &str) -> String {
    format!(
        "LABEL {APP_LABEL}={} {STAGE_LABEL}={stage}\n",
        docker_string(app.name())
    )
}

/// Refuses what the Dockerfile cannot build: `cgo = "dynamic"` (the builder
/// is musl-based), and `files` the build context cannot hold. Checked before
/// any image is pulled.
pub fn supported(app: &App) -> Result<()> {
    files_steps(app)?;
    if app.config.cgo == crate::config::Cgo::Dynamic {
        return Err(Error::Invalid {
            path: format!("app `{}`: cgo = \"dynamic\"", app.name()),
            message: "the docker engine builds cgo apps static only (its builder is musl-based)"
                .into(),
            help: "use cgo = \"static\" with the docker engine, or engine = \"oci\" (or --engine oci) for cgo = \"dynamic\"".into(),
        });
    }
    Ok(())
}

/// `files`: each copied from the build context into the app layer's tree
/// (`COPY`, then the configured mode in the builder, as the classic builder
/// has no `COPY --chmod`), the way the oci engine places them: a folder's
/// contents into `dst`, a file into `dst` or, when `dst` ends with `/`, under
/// its own name. A source the build context cannot hold (outside the module
/// folder, in a hidden folder or a nested module) or that `COPY` would read
/// as a pattern is refused.
fn files_steps(app: &App) -> Result<String> {
    let mut s = String::new();
    for (index, file) in app.config.files.iter().enumerate() {
        let refuse = |message: String| Error::Invalid {
            path: format!("app `{}`: files[{index}].src", app.name()),
            message,
            help:
                "the Dockerfile's build context is the module folder: put the file there (not in \
                   a hidden folder or a nested module), or pack with the oci engine, which reads \
                   `files` from anywhere beneath `files-root`"
                    .into(),
        };
        let src = file.src.as_str().trim_end_matches('/');
        let parts: Vec<&str> = src
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if file.src.is_absolute()
            || parts.is_empty()
            || parts.iter().any(|p| *p == ".." || p.starts_with('.'))
        {
            return Err(refuse(format!(
                "`{}` is not inside the build context (the module folder)",
                file.src
            )));
        }
        let special = |text: &str| text.contains(['$', '\\', '*', '?', '[', '"', '\n']);
        if special(src) || special(&file.dst) {
            return Err(refuse(format!(
                "`{}` or `{}` holds a character COPY reads as a pattern or a variable",
                file.src, file.dst
            )));
        }
        let mut dir = app.dir.clone();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            if dir.join("go.mod").is_file() {
                return Err(refuse(format!(
                    "`{}` is in the nested module {dir}, which the build context leaves out",
                    file.src
                )));
            }
        }
        let path = app.dir.join(parts.join("/"));
        let is_dir = std::fs::metadata(&path).at(&path, "read")?.is_dir();
        let mode = file
            .mode
            .as_deref()
            .and_then(|m| crate::config::files::parse_mode(m).ok())
            .unwrap_or(crate::config::files::DEFAULT_MODE);
        let dst = if is_dir {
            format!("{APPFS_DIR}{}", file.dst.trim_end_matches('/'))
        } else if file.dst.ends_with('/') {
            format!("{APPFS_DIR}{}{}", file.dst, parts[parts.len() - 1])
        } else {
            format!("{APPFS_DIR}{}", file.dst)
        };
        let copy_dst = if is_dir {
            format!("{dst}/")
        } else {
            dst.clone()
        };
        let _ = writeln!(s, "COPY {}", json_array(&[parts.join("/"), copy_dst]));
        if is_dir {
            let _ = writeln!(
                s,
                "RUN find {} -type d -exec chmod 0755 {{}} + \\\n && find {} -type f -exec chmod {mode:04o} {{}} +",
                sh_word(&dst),
                sh_word(&dst)
            );
        } else {
            let _ = writeln!(s, "RUN chmod {mode:04o} {}", sh_word(&dst));
        }
    }
    Ok(s)
}

pub(super) fn image_stage(app: &App) -> String {
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
    // The ids of the deps stage's /etc/passwd and /etc/group: a
    // `--build-arg USER_ID=...` changes both alike.
    let _ = writeln!(s, "ARG USER_ID={}", config.user.uid);
    let _ = writeln!(s, "ARG GROUP_ID={}", config.user.gid());
    s.push_str("USER ${USER_ID}:${GROUP_ID}\n");
    let _ = writeln!(s, "ENTRYPOINT {}", json_array(&[app.binary_path()]));
    if !config.args.is_empty() {
        let _ = writeln!(s, "CMD {}", json_array(&config.args));
    }
    s
}

/// The folder part of a `/`-separated path.
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}
