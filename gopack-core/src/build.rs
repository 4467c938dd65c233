//! `go build` with the idioms' flags, one static binary per platform, cached.
//!
//! Dependencies are downloaded once per deps key (go.sum, go.mod, Go
//! version); a binary is reused, without running `go build`, while its key
//! (deps key, module sources, flags, environment, platform) is unchanged.

use crate::cache::{Cache, KeyHasher};
use crate::config::{App, Tzdata, Workspace};
use crate::error::{IoContext, Result};
use crate::fingerprint;
use crate::platform::Platform;
use crate::process::Cmd;
use crate::report::{Event, Reporter};
use crate::statcache::StatCache;
use crate::toolchain::{which_utf8, Go};
use camino::{Utf8Path, Utf8PathBuf};

/// Environment variables of the caller's shell that change what `go build` makes.
const BUILD_ENV: &[&str] = &[
    "GOFLAGS",
    "GOEXPERIMENT",
    "GOAMD64",
    "GOARM64",
    "GO386",
    "GOPPC64",
    "GORISCV64",
    "GOWORK",
    "GOTOOLCHAIN",
    "CGO_CFLAGS",
    "CGO_CPPFLAGS",
    "CGO_CXXFLAGS",
    "CGO_LDFLAGS",
];

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
    pub cc: Option<crate::cgo::CCompiler>,
}

/// Builds apps with one Go toolchain and one cache.
pub struct Builder<'a> {
    workspace: &'a Workspace,
    go: Go,
    cache: Cache,
    reporter: &'a dyn Reporter,
}

impl<'a> Builder<'a> {
    /// Finds `go` and opens the workspace's cache.
    pub fn new(workspace: &'a Workspace, reporter: &'a dyn Reporter) -> Result<Self> {
        let cache = Cache::open(workspace.cache_dir())?;
        Ok(Builder {
            workspace,
            go: Go::find_cached(&cache)?,
            cache,
            reporter,
        })
    }

    /// The Go toolchain in use.
    pub fn go(&self) -> &Go {
        &self.go
    }

    /// The cache in use.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Builds every platform of `app`.
    pub fn build(&self, app: &App) -> Result<Vec<Binary>> {
        let deps_key = self.ensure_deps(app)?;
        let flags = BuildFlags::for_app(app, &self.workspace.root)?;
        let mut sources = KeyHasher::new("sources/v2");
        let stats_name = stat_cache_name(&self.workspace.root, app, "sources");
        let mut stats = StatCache::open(&self.cache, &stats_name);
        fingerprint::hash_module_sources(
            &app.dir,
            &self.workspace.target_dir,
            &mut sources,
            &mut stats,
        )?;
        stats.save(&self.cache);
        let sources = sources.finish();
        app.platforms()
            .iter()
            .map(|platform| self.build_platform(app, platform, &deps_key, &sources, &flags))
            .collect()
    }

    /// Runs `go mod download` unless this deps key was downloaded before.
    fn ensure_deps(&self, app: &App) -> Result<String> {
        let mut hasher = KeyHasher::new("deps/v1");
        for file in ["go.mod", "go.sum"] {
            let path = app.dir.join(file);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && file == "go.sum" => {
                    Vec::new()
                }
                Err(e) => return Err(crate::error::Error::io(path, "read", e)),
            };
            hasher.field(file, &bytes);
        }
        hasher.text("go", &self.go.version);
        let key = hasher.finish();
        let event_key = short(&key);
        if self.cache.get("deps", &key).is_some() {
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
        self.go
            .cmd(["mod", "download"])
            .dir(&app.dir)
            .help(format!(
                "`go mod download` failed in {}: check go.mod and go.sum, and that the module proxy \
                 (GOPROXY) is reachable",
                app.dir
            ))
            .stream(self.reporter)?;
        self.cache
            .put("deps", &key, format!("{}\n", self.go.version).as_bytes())?;
        Ok(key)
    }

    fn build_platform(
        &self,
        app: &App,
        platform: &Platform,
        deps_key: &str,
        sources: &str,
        flags: &BuildFlags,
    ) -> Result<Binary> {
        let cc = crate::cgo::CCompiler::for_platform(app, platform, &self.workspace.manifest)?;
        let env = build_env(app, platform, cc.as_ref());
        let mut hasher = KeyHasher::new("bin/v1");
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
        let cached = match self.cache.get("bin", &key) {
            Some(entry) => {
                self.reporter.report(Event::BinaryCached {
                    app: app.name().into(),
                    platform: platform.to_string(),
                    key: short(&key),
                });
                install(&entry, &output)?;
                true
            }
            None => {
                self.reporter.report(Event::GoBuild {
                    app: app.name().into(),
                    platform: platform.to_string(),
                });
                let temp = self.cache.temp_path("bin")?;
                let temp_str = temp.to_str().unwrap_or_default().to_string();
                let mut cmd = self
                    .go
                    .cmd(["build"])
                    .args(flags.args())
                    .args(["-o", &temp_str, &app.config.main])
                    .dir(&app.dir)
                    .help(format!(
                        "`go build` failed for {} ({platform}) in {}: fix the errors above (paths are relative to that folder), then run again",
                        app.name(),
                        app.dir
                    ));
                for (name, value) in &env {
                    cmd = cmd.env(name.clone(), value.clone());
                }
                cmd.stream(self.reporter)?;
                let entry = self.cache.commit("bin", &key, temp)?;
                install(&entry, &output)?;
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

/// The flags gopack passes to `go build`.
#[derive(Debug, Clone)]
pub struct BuildFlags {
    /// The value of `-ldflags`.
    pub ldflags: String,
    /// The value of `-tags` (comma separated), maybe empty.
    pub tags: String,
}

impl BuildFlags {
    /// The idioms' flags plus the app's ldflags, tags and version stamp.
    pub fn for_app(app: &App, workspace_root: &Utf8Path) -> Result<BuildFlags> {
        let mut ldflags = vec!["-s".to_string(), "-w".into(), "-buildid=".into()];
        if let Some(variable) = &app.config.version_variable {
            let version = resolve_version(app, workspace_root);
            ldflags.push("-X".into());
            ldflags.push(quote_ldflag(&format!("{variable}={version}")));
        }
        if app.config.cgo == crate::config::Cgo::Static {
            ldflags.push(crate::cgo::STATIC_LDFLAGS.into());
        }
        ldflags.extend(app.config.ldflags.iter().cloned());
        let mut tags = app.config.tags.clone();
        if app.config.cgo == crate::config::Cgo::Static {
            for tag in crate::cgo::STATIC_TAGS {
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_string());
                }
            }
        }
        if app.config.tzdata == Tzdata::Embed && !tags.iter().any(|t| t == "timetzdata") {
            tags.push("timetzdata".into());
        }
        Ok(BuildFlags {
            ldflags: ldflags.join(" "),
            tags: tags.join(","),
        })
    }

    /// The arguments after `go build`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-trimpath".to_string(),
            "-buildvcs=false".into(),
            format!("-ldflags={}", self.ldflags),
        ];
        if !self.tags.is_empty() {
            args.push(format!("-tags={}", self.tags));
        }
        args
    }
}

/// Quotes one `-ldflags` word for Go's flag splitter when it has spaces.
fn quote_ldflag(word: &str) -> String {
    if word.contains(char::is_whitespace) {
        format!("'{}'", word.replace('\'', ""))
    } else {
        word.to_string()
    }
}

/// The app's version: config or `--version`, else `git describe --tags --always --dirty`,
/// else `dev`.
pub fn resolve_version(app: &App, workspace_root: &Utf8Path) -> String {
    if let Some(version) = &app.config.version {
        return version.clone();
    }
    git(
        workspace_root,
        &["describe", "--tags", "--always", "--dirty"],
    )
    .unwrap_or_else(|| "dev".into())
}

/// Runs git in `dir` and returns its trimmed output, or None when git or the repository is missing.
pub fn git(dir: &Utf8Path, args: &[&str]) -> Option<String> {
    let git = which_utf8("git")?;
    let text = Cmd::new("git", git).args(args).dir(dir).read().ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The environment of `go build` for one platform, sorted by name.
fn build_env(
    app: &App,
    platform: &Platform,
    cc: Option<&crate::cgo::CCompiler>,
) -> Vec<(String, String)> {
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
    for name in BUILD_ENV {
        if let Ok(value) = std::env::var(name) {
            if !app.config.env.contains_key(*name) {
                env.push((name.to_string(), value));
            }
        }
    }
    env.extend(app.config.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.sort();
    env
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

/// The first 12 hex digits of a key, for messages.
pub fn short(key: &str) -> String {
    key.chars().take(12).collect()
}
