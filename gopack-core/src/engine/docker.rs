//! The docker engine: the idioms' multi-stage Dockerfile (see
//! [`crate::engine::dockerfile`]) run by `docker build`.
//!
//! The deps stage (builder image, packages, app user, base files, `go mod
//! download`) is built once per deps key and tagged
//! `gopack-deps/<app>:<key>`; the key hashes go.mod, go.sum, the builder
//! image's id and the deps stage's text. Later builds start from that tag, so
//! nothing is downloaded again until go.sum changes, and the tag can be
//! pushed and pulled to share it between CI machines. The build context is a
//! temporary copy of the module (no `.git`, no `target/`); the user's files
//! are never touched. BuildKit cache mounts are used when buildx is there; the
//! classic builder works too.
//!
//! The Dockerfile is the one multi-platform file `cargo xtask dockerfile`
//! prints. With buildx every configured platform is built (into
//! `<target>/gopack/<app>/<app>.docker.tar`, an OCI archive) and the engine's
//! platform is loaded; the classic builder builds the engine's platform, and
//! gets the platform arguments BuildKit would set (`BUILDPLATFORM`,
//! `TARGETOS`, `TARGETARCH`) as `--build-arg`s.
//!
//! With a cache registry ([`crate::remote_cache`]), a deps image missing in the
//! engine is pulled from `<cache-registry>/gopack-deps/<app>:<key>` before it
//! is built, and one built here is pushed there (read-write mode). The final
//! stage starts `FROM` the deps image itself, so the pulled image is the cache:
//! no `--cache-from` is needed.

use crate::build::short;
use crate::cache::KeyHasher;
use crate::config::{App, Workspace};
use crate::engine::dockerfile::{self, Options, USER_ARGS};
use crate::error::{Error, IoContext, Result};
use crate::fingerprint::local_replacements;
use crate::gomod::ModuleSetup;
use crate::image::ImageMetadata;
use crate::platform::Platform;
use crate::process::Cmd;
use crate::remote_cache::RemoteCache;
use crate::report::{Event, Reporter};
use crate::toolchain::Docker;
use camino::{Utf8Path, Utf8PathBuf};

/// The repository of deps images; the app's name and the deps key follow.
pub const DEPS_REPOSITORY: &str = "gopack-deps";

/// Settings of one run of the docker engine.
#[derive(Debug, Clone, Default)]
pub struct DockerOptions {
    /// `--build-arg K=V`, passed to every `docker build`.
    pub build_args: Vec<(String, String)>,
    /// `--builder NAME`: the buildx builder (only with buildx).
    pub builder: Option<String>,
}

/// An image built by [`DockerEngine::pack`], in the docker engine, with no
/// tag yet: [`DockerEngine::tag`] gives it its references once verify passed.
#[derive(Debug, Clone)]
pub struct DockerPacked {
    /// The app's name.
    pub app: String,
    /// The references it gets: `name:version` and `name:latest` (or its `image-tags`).
    pub references: Vec<String>,
    /// The image id (`sha256:...`).
    pub image_id: String,
    /// The deps image the build started from: `gopack-deps/<app>:<key>`.
    pub deps_tag: String,
    /// Whether the deps image was already there (no `go mod download` ran).
    pub deps_cached: bool,
    /// The platform of the image (the engine's).
    pub platform: Platform,
    /// Provenance of the image.
    pub metadata: ImageMetadata,
}

/// The engine that runs `docker build`.
pub struct DockerEngine<'a> {
    workspace: &'a Workspace,
    docker: Docker,
    buildx: bool,
    engine_platform: Platform,
    options: DockerOptions,
    reporter: &'a dyn Reporter,
    remote: Option<&'a RemoteCache<'a>>,
}

impl<'a> DockerEngine<'a> {
    /// Finds the docker client, checks that the engine answers, and detects buildx.
    pub fn new(
        workspace: &'a Workspace,
        options: DockerOptions,
        reporter: &'a dyn Reporter,
    ) -> Result<Self> {
        for (name, _) in &options.build_args {
            if USER_ARGS.contains(&name.as_str()) {
                return Err(Error::Flag {
                    flag: format!("--build-arg {name}"),
                    message: "the app user comes from the config, so that USER and /etc/passwd agree"
                        .into(),
                    help: "pass --user-name, --uid or --gid instead, or set `user` in the app's config"
                        .into(),
                });
            }
        }
        let docker = Docker::find()?;
        docker.engine_version()?;
        let buildx = docker
            .cmd(["buildx", "version"])
            .output()
            .map(|out| out.code == Some(0))
            .unwrap_or(false);
        if options.builder.is_some() && !buildx {
            return Err(Error::Flag {
                flag: "--builder".into(),
                message: "names a buildx builder, and this docker client has no buildx".into(),
                help: "install the buildx plugin (https://github.com/docker/buildx), or leave out \
                       --builder to use the classic builder"
                    .into(),
            });
        }
        let engine_platform =
            docker
                .engine_platform()?
                .parse()
                .map_err(|e: crate::platform::PlatformError| Error::Invalid {
                    path: "docker engine".into(),
                    message: e.to_string(),
                    help: "the docker engine builds Linux images only".into(),
                })?;
        Ok(DockerEngine {
            workspace,
            docker,
            buildx,
            engine_platform,
            options,
            reporter,
            remote: None,
        })
    }

    /// Pulls missing deps images from, and pushes new ones to, the cache registry.
    pub fn with_remote(mut self, remote: Option<&'a RemoteCache<'a>>) -> Self {
        self.remote = remote;
        self
    }

    /// Whether builds go through `docker buildx build` (with cache mounts).
    pub fn uses_buildx(&self) -> bool {
        self.buildx
    }

    /// The deps tag `app` would build from now (for tests and `docker push`).
    pub fn deps_tag(&self, app: &App) -> Result<String> {
        let options = self.render_options(app)?;
        let image_id = self.ensure_builder_image(app)?;
        deps_tag(app, &options, &image_id)
    }

    /// Builds `app`'s image with `docker build`, untagged (its id is in the
    /// result); [`DockerEngine::tag`] names it.
    pub fn pack(&self, app: &App) -> Result<DockerPacked> {
        let go_mod = app.dir.join("go.mod");
        let go_mod_text = std::fs::read_to_string(&go_mod).at(&go_mod, "read")?;
        let replaced = local_replacements(&go_mod_text);
        let setup = ModuleSetup::detect(app)?;
        if let Some(work) = &setup.work {
            return Err(Error::Invalid {
                path: work.file.to_string(),
                message: format!(
                    "`{}` builds inside this go.work, and a docker build context of the module \
                     folder cannot hold the other modules it uses",
                    app.name()
                ),
                help: "pack this app with the default oci engine, or set `go-work = false` in its \
                       config to build the module alone (GOWORK=off)"
                    .into(),
            });
        }
        // `go mod vendor` copies local replacements into vendor/, which the context holds.
        if !replaced.is_empty() && !setup.vendored() {
            return Err(Error::Invalid {
                path: go_mod.to_string(),
                message: format!(
                    "replaces modules with local folders ({}), which a docker build context of the \
                     module folder cannot hold",
                    replaced.join(", ")
                ),
                help: "pack this app with the default oci engine, or vendor the replaced modules"
                    .into(),
            });
        }
        let options = self.render_options(app)?;
        let builder_id = self.ensure_builder_image(app)?;
        let deps_tag = deps_tag(app, &options, &builder_id)?;
        let key = deps_tag.rsplit(':').next().unwrap_or_default().to_string();
        let mut deps_cached = self.image_id(&deps_tag).is_some();
        if let (false, Some(remote)) = (deps_cached, self.remote) {
            deps_cached = self.pull_deps(remote, app, &deps_tag, &key);
        }
        let temp = tempfile::Builder::new()
            .prefix("gopack-docker-")
            .tempdir()
            .map_err(|e| {
                Error::io(
                    std::env::temp_dir().display().to_string(),
                    "create a folder in",
                    e,
                )
            })?;
        let temp_dir = Utf8Path::from_path(temp.path())
            .ok_or_else(|| Error::Invalid {
                path: temp.path().display().to_string(),
                message: "the temporary folder's path is not UTF-8".into(),
                help: "set TMPDIR to a folder with a UTF-8 path".into(),
            })?
            .to_path_buf();

        if deps_cached {
            self.reporter.report(Event::DepsCached {
                app: app.name().into(),
                key: short(&key),
            });
        } else {
            self.reporter.report(Event::DepsDownload {
                app: app.name().into(),
                key: short(&key),
            });
            let context = temp_dir.join("deps-context");
            std::fs::create_dir_all(&context).at(&context, "create")?;
            for file in ["go.mod", "go.sum"] {
                let from = app.dir.join(file);
                if from.is_file() && !setup.vendored() {
                    std::fs::copy(&from, context.join(file)).at(&from, "copy")?;
                }
            }
            let text = dockerfile::render(app, &options)?.text();
            let file = temp_dir.join("deps.Dockerfile");
            std::fs::write(&file, text).at(&file, "write")?;
            self.build_cmd(&file, &context)
                .args(self.platform_args(app, &options, true))
                .args(["--target", "deps", "--tag", deps_tag.as_str()])
                .help(format!(
                    "the deps stage of `{}` failed: check go.mod and go.sum, the module proxy \
                     (pass --build-arg GOPROXY=...), and the builder image's packages",
                    app.name()
                ))
                .stream(self.reporter)?;
            if let Some(remote) = self.remote.filter(|r| r.pushes()) {
                self.push_deps(remote, app, &deps_tag, &key);
            }
        }

        self.reporter.report(Event::Note {
            message: format!(
                "deps image {deps_tag} ({})",
                if deps_cached { "reused" } else { "built" }
            ),
        });
        let metadata = ImageMetadata::read(app, self.reporter)?;
        let context = temp_dir.join("context");
        copy_module(&app.dir, &context, &self.workspace.target_dir)?;
        let options = Options {
            deps_image: Some(deps_tag.clone()),
            ..options
        };
        let file = temp_dir.join("Dockerfile");
        std::fs::write(&file, dockerfile::render(app, &options)?.text()).at(&file, "write")?;
        let references: Vec<String> = super::image_tags(app, &metadata, self.reporter)?
            .iter()
            .map(|tag| format!("{}:{tag}", app.image_name()))
            .collect();
        self.build_every_platform(app, &file, &context, &metadata)?;
        let iidfile = temp_dir.join("image-id");
        let mut cmd = self
            .build_cmd(&file, &context)
            .args(self.platform_args(app, &options, false))
            .args(["--build-arg", &format!("VERSION={}", metadata.version)])
            .args(["--iidfile", iidfile.as_str()])
            .args([
                "--label",
                &format!("org.opencontainers.image.created={}", metadata.created()),
            ]);
        if let Some(revision) = &metadata.revision {
            cmd = cmd.args([
                "--label",
                &format!("org.opencontainers.image.revision={revision}"),
            ]);
        }
        // A `source` in the app's labels wins, as with the oci engine.
        if let Some(source) = metadata.source.as_ref().filter(|_| {
            !app.config
                .labels
                .contains_key("org.opencontainers.image.source")
        }) {
            cmd = cmd.args([
                "--label",
                &format!("org.opencontainers.image.source={source}"),
            ]);
        }
        cmd.help(format!(
            "`docker build` of `{}` failed: fix the errors above (`cargo xtask dockerfile {}` \
             prints the Dockerfile), then run again",
            app.name(),
            app.name()
        ))
        .stream(self.reporter)?;
        let image_id = std::fs::read_to_string(&iidfile)
            .at(&iidfile, "read")?
            .trim()
            .to_string();
        super::build_stages::remove_old(&self.docker, app.name(), self.reporter);
        Ok(DockerPacked {
            app: app.name().into(),
            references,
            image_id,
            deps_tag,
            deps_cached,
            platform: options.platform,
            metadata,
        })
    }

    /// Tags the built image with its references (after verify passed, or
    /// was skipped); a tag that moves away from an older image is a warning
    /// naming that image.
    pub fn tag(&self, packed: &DockerPacked) -> Result<()> {
        let before = self.docker.image_ids(&packed.references);
        for reference in &packed.references {
            self.docker
                .cmd(["tag", packed.image_id.as_str(), reference.as_str()])
                .help("`docker tag` failed: check the docker engine")
                .read()?;
        }
        self.reporter.report(Event::Loaded {
            app: packed.app.clone(),
            tags: packed.references.clone(),
        });
        self.docker.warn_dangling(&before, self.reporter);
        Ok(())
    }

    /// Pulls the deps image from the cache registry and tags it `deps_tag`;
    /// true when the engine has it now. A registry that fails is a warning.
    fn pull_deps(&self, remote: &RemoteCache, app: &App, deps_tag: &str, key: &str) -> bool {
        if remote.is_down() {
            return false;
        }
        let reference = remote.docker_reference(deps_tag);
        let start = std::time::Instant::now();
        let pulled = self.docker.cmd(["pull", "--quiet", &reference]).output();
        match pulled {
            Ok(out) if out.code == Some(0) => {}
            Ok(out) => {
                let text = out.stderr.to_ascii_lowercase();
                if text.contains("not found") || text.contains("manifest unknown") {
                    remote.miss(app.name(), "deps-image", key);
                } else {
                    remote.fail("docker pull", &out.stderr.trim());
                }
                return false;
            }
            Err(e) => {
                remote.fail("docker pull", &e);
                return false;
            }
        }
        let tagged = self
            .docker
            .cmd(["tag", &reference, deps_tag])
            .output()
            .is_ok_and(|out| out.code == Some(0));
        // The registry's name is only an alias of the deps image: drop it.
        let _ = self.docker.cmd(["rmi", &reference]).output();
        if !tagged {
            return false;
        }
        let size = self
            .docker
            .cmd(["image", "inspect", "--format", "{{.Size}}", deps_tag])
            .output()
            .ok()
            .and_then(|out| out.stdout.trim().parse().ok())
            .unwrap_or(0);
        remote.hit(app.name(), "deps-image", key, size, start);
        true
    }

    /// Pushes a deps image built here to the cache registry; a failure is a warning.
    fn push_deps(&self, remote: &RemoteCache, app: &App, deps_tag: &str, key: &str) {
        if remote.is_down() {
            return;
        }
        let reference = remote.docker_reference(deps_tag);
        let start = std::time::Instant::now();
        let tagged = self.docker.cmd(["tag", deps_tag, &reference]).output();
        let pushed = match tagged {
            Ok(out) if out.code == Some(0) => {
                self.docker.cmd(["push", "--quiet", &reference]).output()
            }
            other => other,
        };
        let _ = self.docker.cmd(["rmi", &reference]).output();
        match pushed {
            Ok(out) if out.code == Some(0) => {
                let size = self
                    .docker
                    .cmd(["image", "inspect", "--format", "{{.Size}}", deps_tag])
                    .output()
                    .ok()
                    .and_then(|out| out.stdout.trim().parse().ok())
                    .unwrap_or(0);
                remote.pushed(app.name(), "deps-image", key, size, start);
            }
            Ok(out) => remote.fail("docker push", &out.stderr.trim()),
            Err(e) => remote.fail("docker push", &e),
        }
    }

    /// The platform to build for: the engine's, which the app must list.
    fn render_options(&self, app: &App) -> Result<Options> {
        // Refused before the builder image is looked for, let alone pulled.
        dockerfile::supported(app)?;
        let engine = &self.engine_platform;
        let platform = app
            .platforms()
            .into_iter()
            .find(|p| p.os == engine.os && p.arch == engine.arch)
            .ok_or_else(|| Error::Flag {
                flag: "--engine docker".into(),
                message: format!(
                    "the docker engine runs {engine}, and `{}` is not built for it",
                    app.name()
                ),
                help: format!(
                    "add \"{engine}\" to the app's platforms or pass --platform {engine}; the oci \
                     engine builds every platform"
                ),
            })?;
        Ok(Options {
            platform,
            deps_image: None,
            cache_mounts: self.buildx,
            classic: !self.buildx,
        })
    }

    /// The platform arguments: `--platform` for buildx, the values BuildKit
    /// would set as `--build-arg`s for the classic builder.
    fn platform_args(&self, app: &App, options: &Options, deps_only: bool) -> Vec<String> {
        if self.buildx {
            return vec!["--platform".into(), options.platform.to_string()];
        }
        dockerfile::platform_args(app, &options.platform, &self.engine_platform, deps_only)
            .into_iter()
            .flat_map(|(k, v)| ["--build-arg".to_string(), format!("{k}={v}")])
            .collect()
    }

    /// With buildx and more than one platform, builds every platform into
    /// `<target>/gopack/<app>/<app>.docker.tar` (an OCI archive), written to a
    /// temporary name and renamed. The classic builder builds one platform; a
    /// builder that cannot build them all (the `docker` driver exports no OCI
    /// archive of several platforms) is a warning.
    fn build_every_platform(
        &self,
        app: &App,
        file: &Utf8Path,
        context: &Utf8Path,
        metadata: &ImageMetadata,
    ) -> Result<()> {
        let platforms = app.platforms();
        if !self.buildx || platforms.len() < 2 {
            if platforms.len() > 1 {
                self.reporter.report(Event::Note {
                    message: format!(
                        "{}: the classic builder builds {} only; buildx builds every platform \
                         ({}), or use the oci engine",
                        app.name(),
                        self.engine_platform,
                        platforms
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            return Ok(());
        }
        let dir = self.workspace.out_dir().join(app.name());
        std::fs::create_dir_all(&dir).at(&dir, "create")?;
        let archive = dir.join(format!("{}.docker.tar", app.name()));
        let temp = dir.join(format!(".tmp-{}.docker.tar", std::process::id()));
        let list: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
        let mut cmd = self
            .docker
            .cmd(["buildx", "build", "--platform", &list.join(",")])
            .args(["--output", &format!("type=oci,dest={temp}")])
            .args(["--build-arg", &format!("VERSION={}", metadata.version)]);
        if let Some(builder) = &self.options.builder {
            cmd = cmd.args(["--builder", builder.as_str()]);
        }
        for (name, value) in &self.options.build_args {
            cmd = cmd.args(["--build-arg", &format!("{name}={value}")]);
        }
        let result = cmd
            .args(["--file", file.as_str(), context.as_str()])
            .help(format!(
                "`docker buildx build` of `{}` for {} failed: the builder must be able to build \
                 every platform (a docker-container builder, `--builder NAME`), or use the oci \
                 engine",
                app.name(),
                list.join(", ")
            ))
            .stream(self.reporter);
        if let Err(e) = result {
            let _ = std::fs::remove_file(&temp);
            // The engine's platform is still built and loaded, as without buildx.
            self.reporter.report(Event::Warning {
                message: format!(
                    "{}: every platform was not built ({e}); the image of {} is built and loaded",
                    app.name(),
                    self.engine_platform
                ),
            });
            return Ok(());
        }
        std::fs::rename(&temp, &archive).at(&archive, "write")?;
        self.reporter.report(Event::Note {
            message: format!(
                "{}: every platform ({}) in {archive}",
                app.name(),
                list.join(", ")
            ),
        });
        Ok(())
    }

    /// The builder image's id; pulls it when the engine lacks it.
    fn ensure_builder_image(&self, app: &App) -> Result<String> {
        let image = dockerfile::builder_image(app)?;
        if let Some(id) = self.image_id(&image) {
            return Ok(id);
        }
        self.docker
            .cmd(["pull", image.as_str()])
            .help(format!(
                "the builder image `{image}` is not in the docker engine and could not be pulled: \
                 pull it (`docker pull {image}`) or load it, or set `builder-image` in the config \
                 of `{}` to an image the engine has",
                app.name()
            ))
            .stream(self.reporter)?;
        self.image_id(&image).ok_or_else(|| Error::Invalid {
            path: image.clone(),
            message: "the builder image is still missing after `docker pull`".into(),
            help: "set `builder-image` to an image the docker engine has".into(),
        })
    }

    /// The id of a local image, or None when the engine has no such image.
    fn image_id(&self, reference: &str) -> Option<String> {
        self.docker.image_id(reference)
    }

    /// `docker build` (or `docker buildx build --load`) with the Dockerfile and context.
    fn build_cmd(&self, dockerfile: &Utf8Path, context: &Utf8Path) -> Cmd {
        let mut cmd = if self.buildx {
            let mut cmd = self.docker.cmd(["buildx", "build", "--load"]);
            if let Some(builder) = &self.options.builder {
                cmd = cmd.args(["--builder", builder.as_str()]);
            }
            cmd
        } else {
            // The client would refuse DOCKER_BUILDKIT=1 without buildx; say classic.
            self.docker.cmd(["build"]).env("DOCKER_BUILDKIT", "0")
        };
        for (name, value) in &self.options.build_args {
            cmd = cmd.args(["--build-arg", &format!("{name}={value}")]);
        }
        cmd.args(["--file", dockerfile.as_str(), context.as_str()])
    }
}

/// `gopack-deps/<app>:<key>`: the key covers go.mod, go.sum, the builder image and the deps stage.
fn deps_tag(app: &App, options: &Options, builder_id: &str) -> Result<String> {
    let rendered = dockerfile::render(app, options)?;
    let mut hasher = KeyHasher::new("docker-deps/v1");
    hasher
        .text("stage", &rendered.deps)
        .text("builder", builder_id);
    for file in ["go.mod", "go.sum"] {
        let path = app.dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => hasher.field(file, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => hasher.text(file, "-"),
            Err(e) => return Err(Error::io(path, "read", e)),
        };
    }
    let key = hasher.finish();
    Ok(format!("{DEPS_REPOSITORY}/{}:{}", app.name(), &key[..20]))
}

/// Copies the module to `to` for the build context: no hidden folders, no
/// nested modules, no gopack or cargo output, no `.dockerignore`.
fn copy_module(from: &Utf8Path, to: &Utf8Path, target_dir: &Utf8Path) -> Result<()> {
    std::fs::create_dir_all(to).at(to, "create")?;
    for entry in from.read_dir_utf8().at(from, "list")? {
        let entry = entry.at(from, "list")?;
        let name = entry.file_name();
        let path = entry.path();
        let kind = entry.file_type().at(path, "read")?;
        let target: Utf8PathBuf = to.join(name);
        if kind.is_dir() {
            if name.starts_with('.') || path == target_dir || path.join("go.mod").is_file() {
                continue;
            }
            copy_module(path, &target, target_dir)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(path).at(path, "read the link")?;
            std::os::unix::fs::symlink(link, &target).at(&target, "create")?;
        } else if name != ".dockerignore" {
            std::fs::copy(path, &target).at(path, "copy")?;
        }
    }
    Ok(())
}
