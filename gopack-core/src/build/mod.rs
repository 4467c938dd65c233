//! `go build` with the idioms' flags, one static binary per platform, cached.
//!
//! Dependencies are downloaded once per deps key (go.mod, go.sum,
//! vendor/modules.txt, go.work, Go version; vendored modules need no
//! download); a binary is reused, without running `go build`, while its key
//! (deps key, module sources, flags, environment, platform) is unchanged.
//! go runs with `-mod=readonly` (or `-mod=vendor`) and never writes into the
//! user's folders; see [`crate::gomod`].

use crate::cache::stat::StatCache;
use crate::cache::{Cache, KeyHasher, RemoteStore};
use crate::config::{App, Workspace};
use crate::error::{Error, IoContext, Result};
use crate::fingerprint;
use crate::gomod::{self, ModuleSetup};
use crate::platform::Platform;
use crate::report::{Event, Reporter};
use crate::toolchain::Go;
use crate::vcs;

pub(crate) mod cgo;
mod diagnose;
mod flags;
use camino::{Utf8Path, Utf8PathBuf};
pub use flags::{main_package, BuildFlags};

/// A binary built (or taken from the cache) for one platform.
#[derive(Debug, Clone)]
pub struct Binary {
    /// The app's name.
    pub app: String,
    /// The platform it was built for.
    pub platform: Platform,
    /// Where it is: `<target>/gopack/<app>/bin/<os_arch>/<name>`.
    pub path: Utf8PathBuf,
    /// Its cache key (also a fingerprint of everything it was built from).
    pub key: String,
    /// The key of the module tree it was built against (go.mod, go.sum, Go version).
    pub deps_key: String,
    /// Whether it came from the cache.
    pub cached: bool,
    /// The C compiler of a cgo build.
    pub cc: Option<cgo::CCompiler>,
}

impl Binary {
    /// What the binary holds, as keys of what is made from it (its layer,
    /// SBOM and build info) name it: the recorded digest and size, so a
    /// rebuild that came out the same reuses them; the build key when no
    /// record is at hand.
    pub fn content_key(&self, cache: &Cache) -> String {
        crate::integrity::recorded_binary(cache, &self.key)
            .map(|(digest, size)| format!("{digest} {size}"))
            .unwrap_or_else(|| self.key.clone())
    }
}

/// What `go mod download` says for a module without dependencies: noise.
const NO_DEPENDENCIES: &str = "go: no module dependencies to download";

/// Passes every event on, except go's lines that tell nothing, with the
/// scratch copy's folder (`-modfile=`) named as the user's module folder:
/// messages never name a temporary path that is gone.
struct WithoutNoise<'a> {
    reporter: &'a dyn Reporter,
    /// (scratch folder, the module folder it stands for).
    rename: (String, String),
}

impl WithoutNoise<'_> {
    fn rename(&self, text: &str) -> String {
        let (from, to) = &self.rename;
        if from.is_empty() {
            text.to_string()
        } else {
            text.replace(from.as_str(), to)
        }
    }
}

impl Reporter for WithoutNoise<'_> {
    fn report(&self, event: Event) {
        if let Event::Output { line, tool } = &event {
            if line.trim() == NO_DEPENDENCIES {
                return;
            }
            self.reporter.report(Event::Output {
                tool: tool.clone(),
                line: self.rename(line),
            });
            return;
        }
        self.reporter.report(event);
    }

    fn shows_output(&self) -> bool {
        self.reporter.shows_output()
    }
}

/// Builds apps with one Go toolchain and one cache.
pub struct Builder<'a> {
    workspace: &'a Workspace,
    go: Go,
    cache: Cache,
    reporter: &'a dyn Reporter,
    remote: Option<&'a dyn RemoteStore>,
}

impl<'a> Builder<'a> {
    /// Finds `go` and opens the workspace's cache.
    pub fn new(workspace: &'a Workspace, reporter: &'a dyn Reporter) -> Result<Self> {
        let cache = Cache::open(workspace.cache_dir())?;
        Ok(Builder {
            workspace,
            go: Go::find_cached(&cache, workspace.environment.go.as_deref(), reporter)?,
            cache,
            reporter,
            remote: None,
        })
    }

    /// Asks `remote` (the cache registry) before building, and queues what is built for it.
    pub fn with_remote<R: RemoteStore + 'a>(mut self, remote: Option<&'a R>) -> Self {
        self.remote = remote.map(|r| r as &'a dyn RemoteStore);
        self
    }

    /// The Go toolchain in use.
    pub fn go(&self) -> &Go {
        &self.go
    }

    /// The cache in use.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Builds every platform of `app`; the version stamp (`version-variable`)
    /// comes from the app's history (see `crate::vcs`).
    pub fn build(&self, app: &App) -> Result<Vec<Binary>> {
        let version = match (&app.config.version_variable, &app.config.version) {
            (None, _) => String::new(),
            (Some(_), Some(version)) => version.clone(),
            (Some(_), None) => {
                let setup = ModuleSetup::detect(app)?;
                let revision = vcs::revision(&app.dir, &setup.input_paths(app)?, Some(&self.cache));
                for message in revision.warnings(app.name()) {
                    self.reporter.report(Event::Warning { message });
                }
                revision.version
            }
        };
        self.build_version(app, &version)
    }

    /// Builds every platform of `app`, stamping `version` (when the app has a `version-variable`).
    pub fn build_version(&self, app: &App, version: &str) -> Result<Vec<Binary>> {
        let setup = ModuleSetup::detect(app)?;
        // With a cache registry, dependencies are downloaded only when a binary
        // must be built here: a runner that gets every binary needs no modules.
        let deps_key = self.ensure_deps(app, &setup, self.remote.is_none())?;
        let deps = std::cell::OnceCell::new();
        if self.remote.is_none() {
            let _ = deps.set(());
        }
        let flags = BuildFlags::for_app(app, version, &setup)?;
        let mut sources = KeyHasher::new("sources/v2");
        let stats_name = stat_cache_name(&self.workspace.root, app, "sources");
        let mut stats = StatCache::open(&self.cache, &stats_name);
        fingerprint::hash_module_sources(
            &app.dir,
            &setup.source_folders(app)?,
            &self.workspace.target_dir,
            &mut sources,
            &mut stats,
        )?;
        stats.save(&self.cache);
        let sources = sources.finish();
        app.platforms()
            .iter()
            .map(|platform| {
                let inputs = Inputs {
                    deps_key: &deps_key,
                    sources: &sources,
                    flags: &flags,
                };
                self.build_platform(app, platform, &inputs, None, &|| {
                    if deps.get().is_none() {
                        self.ensure_deps(app, &setup, true)?;
                        let _ = deps.set(());
                    }
                    Ok(())
                })
            })
            .collect()
    }

    /// Runs `go mod download` unless this deps key was downloaded before, or
    /// go.mod requires no module, or the modules are vendored, or a go.work is in effect (then `go build`
    /// fetches what it needs, read-only).
    /// With `download` false, only the key is computed (and go.sum checked).
    fn ensure_deps(&self, app: &App, setup: &ModuleSetup, download: bool) -> Result<String> {
        let mut hasher = KeyHasher::new("deps/v2");
        for path in setup.deps_files(app) {
            // Only a regular file, read without blocking (a FIFO named go.sum
            // is an error, not a hang).
            let bytes = match crate::config::confine::read_text(&path) {
                Ok(text) => text.into_bytes(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(Error::io(path, "read", e)),
            };
            hasher.field(&relative_label(&path, &app.dir), &bytes);
        }
        hasher
            .text("go", &self.go.version)
            .text("mod", setup.mod_flag());
        let key = hasher.finish();
        let event_key = short(&key);
        if setup.vendored() || setup.work.is_some() {
            return Ok(key);
        }
        let go_mod = app.dir.join("go.mod");
        let go_sum = app.dir.join("go.sum");
        let go_mod_text = std::fs::read_to_string(&go_mod).at(&go_mod, "read")?;
        let requires = gomod::has_requirements(&go_mod_text);
        if requires && !go_sum.is_file() {
            return Err(tidy_error(
                app,
                "go.sum is missing, and go.mod requires modules",
            ));
        }
        // Nothing to download: no `Downloading` line, no `go mod download`.
        if !download || !requires {
            return Ok(key);
        }
        if self.cache.get(crate::cache::Kind::Deps, &key).is_some() {
            self.reporter.report(Event::DepsCached {
                app: app.name().into(),
                key: event_key,
            });
            return Ok(key);
        }
        self.reporter.report(Event::DepsDownload {
            app: app.name().into(),
            key: event_key,
        });
        // go writes what it would add to go.mod and go.sum into a copy, never the user's files.
        let scratch = tempfile::Builder::new()
            .prefix("gopack-modfile-")
            .tempdir()
            .map_err(|e| {
                Error::io(
                    std::env::temp_dir().display().to_string(),
                    "create a folder in",
                    e,
                )
            })?;
        let modfile = scratch.path().join("go.mod");
        std::fs::copy(&go_mod, &modfile).at(&go_mod, "copy")?;
        if go_sum.is_file() {
            std::fs::copy(&go_sum, scratch.path().join("go.sum")).at(&go_sum, "copy")?;
        }
        let quiet = WithoutNoise {
            reporter: self.reporter,
            rename: (scratch.path().display().to_string(), app.dir.to_string()),
        };
        self.go
            .cmd(["mod", "download"])
            .arg(format!("-modfile={}", modfile.display()))
            // Only modules outside a go.work download here (-modfile needs that).
            .env("GOWORK", "off")
            .dir(&app.dir)
            .help(format!(
                "`go mod download` failed in {}: check go.mod and go.sum, and that the module proxy \
                 (GOPROXY) is reachable",
                app.dir
            ))
            .stream(&quiet)
            .map_err(|err| match err {
                Error::Command {
                    command,
                    status,
                    output,
                    help,
                } => Error::Command {
                    command: quiet.rename(&command),
                    status,
                    output: quiet.rename(&output),
                    help,
                },
                other => other,
            })?;
        self.cache.put(
            crate::cache::Kind::Deps,
            &key,
            format!("{}\n", self.go.version).as_bytes(),
        )?;
        Ok(key)
    }

    /// Builds one platform; `forced_cc` replaces the compiler gopack would pick.
    fn build_platform(
        &self,
        app: &App,
        platform: &Platform,
        inputs: &Inputs<'_>,
        forced_cc: Option<cgo::CCompiler>,
        ensure_deps: &dyn Fn() -> Result<()>,
    ) -> Result<Binary> {
        let Inputs {
            deps_key,
            sources,
            flags,
        } = *inputs;
        let manifest = &self.workspace.manifest;
        let mut cc = match forced_cc {
            Some(cc) => Some(cc),
            None => cgo::CCompiler::for_platform(app, platform, manifest)?,
        };
        // A default musl-gcc that could not see the app's headers before is
        // replaced at once (remembered per sources and compiler).
        let musl_memo = cc.as_ref().filter(|c| c.is_default_musl()).map(|c| {
            let mut memo = KeyHasher::new("cc-fallback/v1");
            c.hash_into(&mut memo);
            memo.text("sources", sources)
                .text("platform", &platform.to_string())
                .finish()
        });
        if let Some(memo) = &musl_memo {
            if self.cache.get(crate::cache::Kind::Tools, memo).is_some() {
                if let Some(gcc) = cgo::CCompiler::glibc_fallback(app, platform, manifest) {
                    self.reporter.report(Event::Warning {
                        message: musl_fallback_message(app, platform, &gcc),
                    });
                    cc = Some(gcc);
                }
            }
        }
        let env = build_env(app, platform, cc.as_ref());
        let main = main_package(&app.config.main);
        // v2: binary records are sealed (see crate::cache).
        let mut hasher = KeyHasher::new("bin/v2");
        if let Some(cc) = &cc {
            cc.hash_into(&mut hasher);
        }
        hasher
            .text("deps", deps_key)
            .text("go", &self.go.version)
            .text("sources", sources)
            .text("platform", &platform.to_string())
            .text("main", &app.config.main);
        for arg in flags.args() {
            hasher.text("arg", &arg);
        }
        for (name, value) in &env {
            hasher.text(name, value);
        }
        let key = hasher.finish();
        let output = self
            .workspace
            .out_dir()
            .join(app.name())
            .join("bin")
            .join(platform.slug())
            .join(app.name());
        let local = |cache: &Cache| crate::integrity::checked_binary(cache, &key, self.reporter);
        let mut entry = local(&self.cache);
        let mut remote_hit = false;
        if let (None, Some(remote)) = (&entry, self.remote) {
            if remote.fetch_binary(app.name(), &key) {
                entry = local(&self.cache);
                remote_hit = entry.is_some();
            }
        }
        let cached = match entry {
            Some(entry) => {
                if !remote_hit {
                    self.reporter.report(Event::BinaryCached {
                        app: app.name().into(),
                        platform: platform.to_string(),
                        key: short(&key),
                    });
                }
                let stats = stat_cache_name(&self.workspace.root, app, "bin-output");
                let mut stats = StatCache::open(&self.cache, &stats);
                if !installed(&self.cache, &key, &output, &mut stats) {
                    install(&entry, &output)?;
                }
                stats.save(&self.cache);
                true
            }
            None => {
                ensure_deps()?;
                self.reporter.report(Event::GoBuild {
                    app: app.name().into(),
                    platform: platform.to_string(),
                });
                let temp = self.cache.temp_path(crate::cache::Kind::Bin)?;
                let temp_str = temp.to_str().unwrap_or_default().to_string();
                let mut cmd = self
                    .go
                    .cmd(["build"])
                    .args(flags.args())
                    .args(["-o", &temp_str, &main])
                    .dir(&app.dir)
                    .help(format!(
                        "`go build` failed for {} ({platform}) in {}: fix the errors above (paths are relative to that folder), then run again",
                        app.name(),
                        app.dir
                    ));
                for (name, value) in &env {
                    cmd = cmd.env(name.clone(), value.clone());
                }
                // go's error stays as go printed it; gopack adds help only
                // for a cause it can prove (see diagnose).
                let output_path = &output;
                let tail = std::cell::RefCell::new(String::new());
                let built = cmd
                    .stream_explained(self.reporter, |output| {
                        tail.replace(output.to_string());
                        diagnose::known_cause(app, output)
                    })
                    .map_err(|err| match err {
                        Error::Command {
                            command,
                            status,
                            output,
                            help,
                        } => {
                            let failed = diagnose::Failed {
                                go: &self.go,
                                app,
                                env: &env,
                                flags,
                                main: &main,
                                manifest: &self.workspace.manifest,
                            };
                            let help = diagnose::help(&failed, &tail.borrow(), cc.as_ref())
                                .unwrap_or(help);
                            // The temporary output is gone: name the output path.
                            Error::Command {
                                command: command.replace(&temp_str, output_path.as_str()),
                                status,
                                output,
                                help,
                            }
                        }
                        other => other,
                    });
                if let Err(err) = built {
                    let missing_header = tail
                        .borrow()
                        .lines()
                        .any(|l| l.contains(".h: No such file or directory"));
                    if let (Some(memo), true) = (&musl_memo, missing_header) {
                        if let Some(gcc) = cgo::CCompiler::glibc_fallback(app, platform, manifest) {
                            self.cache.put(crate::cache::Kind::Tools, memo, b"gcc\n")?;
                            self.reporter.report(Event::Warning {
                                message: musl_fallback_message(app, platform, &gcc),
                            });
                            return self.build_platform(
                                app,
                                platform,
                                inputs,
                                Some(gcc),
                                ensure_deps,
                            );
                        }
                    }
                    return Err(err);
                }
                diagnose::check_executable(app, &temp)?;
                crate::integrity::record_binary(&self.cache, &key, Utf8Path::new(&temp_str))?;
                let entry = self.cache.commit(crate::cache::Kind::Bin, &key, temp)?;
                install(&entry, &output)?;
                if let Some(remote) = self.remote {
                    remote.built_binary(app.name(), &platform.to_string(), &key);
                }
                false
            }
        };
        self.reporter.report(Event::BinaryReady {
            app: app.name().into(),
            platform: platform.to_string(),
            path: output.to_string(),
            cached,
        });
        Ok(Binary {
            app: app.name().into(),
            platform: platform.clone(),
            path: output,
            key,
            deps_key: deps_key.to_string(),
            cached,
            cc,
        })
    }
}

/// What every platform's binary of one app is built from.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    deps_key: &'a str,
    sources: &'a str,
    flags: &'a BuildFlags,
}

/// The warning when gopack builds with gcc in place of its default musl-gcc.
fn musl_fallback_message(app: &App, platform: &Platform, gcc: &cgo::CCompiler) -> String {
    format!(
        "`{}` ({platform}): musl-gcc cannot find a C header the app includes (musl's include \
         path has no system headers such as zlib.h); built with `{}` ({}), glibc linked \
         statically, instead. Set the app's `cc` (e.g. cc = {{ \"{platform}\" = \"gcc\" }}) to \
         choose, and silence this",
        app.name(),
        gcc.command,
        gcc.version
    )
}

/// `path` relative to `base`, for cache keys that must not depend on the checkout's location.
fn relative_label(path: &Utf8Path, base: &Utf8Path) -> String {
    let path = gomod::normalize(path);
    let base = gomod::normalize(base);
    let common = path
        .components()
        .zip(base.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = base.components().count() - common;
    let mut label = "../".repeat(ups);
    for component in path.components().skip(common) {
        label.push_str(component.as_str());
        label.push('/');
    }
    label.trim_end_matches('/').to_string()
}

fn tidy_error(app: &App, message: &str) -> Error {
    Error::Invalid {
        path: app.dir.join("go.sum").to_string(),
        message: format!("{message}; gopack does not change your go.mod or go.sum"),
        help: format!("run \"go mod tidy\" in {}, then run again", app.dir),
    }
}

/// The environment of `go build` for one platform, sorted by name.
fn build_env(app: &App, platform: &Platform, cc: Option<&cgo::CCompiler>) -> Vec<(String, String)> {
    let cgo = if cc.is_some() { "1" } else { "0" };
    let mut env: Vec<(String, String)> = vec![("CGO_ENABLED".into(), cgo.into())];
    if let Some(cc) = cc {
        env.push(("CC".into(), cc.cc_env()));
    }
    env.extend(
        platform
            .go_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    for name in crate::environment::GO_BUILD {
        if let Some(value) = crate::environment::var(name) {
            if !app.config.env.contains_key(*name) {
                env.push((name.to_string(), value));
            }
        }
    }
    env.extend(app.config.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !app.config.go_work {
        env.retain(|(name, _)| name != "GOWORK");
        env.push(("GOWORK".into(), "off".into()));
    }
    env.sort();
    env
}

/// Whether the binary at `output` is already the cached binary `key` (its
/// recorded digest and size, mode 0755): then a run leaves it in place. Its
/// content hash is remembered by identity in `stats`, so an unchanged output
/// is not read again.
fn installed(cache: &Cache, key: &str, output: &Utf8Path, stats: &mut StatCache) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some((digest, size)) = crate::integrity::recorded_binary(cache, key) else {
        return false;
    };
    match std::fs::symlink_metadata(output) {
        Ok(meta)
            if meta.is_file()
                && meta.len() == size
                && meta.permissions().mode() & 0o7777 == 0o755 =>
        {
            stats
                .content_hash(output, &meta)
                .is_ok_and(|hash| crate::oci::digest::from_hash(&hash) == digest)
        }
        _ => false,
    }
}

/// Copies a cached binary to its output path, atomically.
fn install(entry: &Utf8Path, output: &Utf8Path) -> Result<()> {
    let folder = output.parent().expect("output paths have a parent");
    std::fs::create_dir_all(folder).at(folder, "create")?;
    let temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(folder)
        .at(folder, "create a temporary file in")?
        .into_temp_path();
    std::fs::copy(entry, &temp).at(output, "copy the binary to")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755)).at(output, "chmod")?;
    temp.persist(output)
        .map_err(|e| e.error)
        .at(output, "write")?;
    Ok(())
}

/// The name of an app's stat cache for one `role` (sources, base files).
pub fn stat_cache_name(workspace_root: &Utf8Path, app: &App, role: &str) -> String {
    KeyHasher::new("stat/v1")
        .text("workspace", workspace_root.as_str())
        .text("app", app.name())
        .text("role", role)
        .finish()
}

pub use crate::cache::short;
