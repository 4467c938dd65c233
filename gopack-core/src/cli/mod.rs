//! The clap subcommands of gopack, ready to mount in any xtask.
//!
//! ```no_run
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! // `--version` says gopack's version; a host may print its own next to it.
//! #[command(name = "cargo xtask", version = gopack_core::VERSION)]
//! enum Xtask {
//!     #[command(flatten)]
//!     Gopack(gopack_core::cli::Command),
//!     // ... the project's own subcommands
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     // Not `Xtask::parse()`: with `--json`, a command line clap refuses must
//!     // be a JSON `usage` event and exit 2, as docs/ci.md promises.
//!     match gopack_core::cli::parse::<Xtask>() {
//!         // gopack's own output: progress on stderr, results on stdout (`--json` for CI).
//!         Xtask::Gopack(command) => command.main(),
//!     }
//! }
//! ```
//!
//! A host that keeps its own output runs the command with its own
//! [`Reporter`] instead: `command.run_with(&my_reporter)` returns the exit
//! code, or the [`crate::Error`] for the host to show. gopack's flags are
//! per subcommand (`--json`, `--quiet`, `--verbose`, `--manifest-path`,
//! `--go`, `--cache-dir`), so a host's own global `--json` or `--quiet` does
//! not collide with them; given after the subcommand, they set both.

mod build;
mod clean;
mod console;
mod diff;
mod dockerfile;
mod doctor;
mod elapsed;
mod heartbeat;
mod pack;
mod parallel;
mod results;
mod run;
mod verify;
mod verify_signed;

pub use build::BuildArgs;
pub use clean::CleanArgs;
pub use console::Console;
pub use diff::{DiffArgs, DiffFormat};
pub use dockerfile::DockerfileArgs;
pub use doctor::DoctorArgs;
pub use pack::PackArgs;
pub use results::{BinaryResult, BuildResult, PackResult, PlatformResult};
pub use run::{RunArgs, RunResult, APP_FAILED};
pub use verify::VerifyArgs;

use crate::config::settings::Environment;
use crate::config::{Overrides, Workspace};
use crate::platform::Platform;
use crate::report::{Event, Reporter};
use crate::verify::Report;
use crate::Result;
use camino::Utf8PathBuf;
use std::ffi::OsString;
use std::process::ExitCode;

/// The exit status when checks fail.
pub const CHECKS_FAILED: u8 = 1;
/// The exit status of an error: usage, config, a missing tool, an unreadable input.
pub const ERROR: u8 = 2;

/// Reports an image that failed its checks (`checks-failed`, with verify's
/// report) and gives [`CHECKS_FAILED`].
fn checks_failed(reporter: &dyn Reporter, err: &crate::Error, report: Option<&Report>) -> ExitCode {
    let mut event = Event::error(err);
    if let Event::Error {
        code,
        report: slot,
        text,
        ..
    } = &mut event
    {
        *code = "checks-failed".into();
        if let Some(report) = report {
            *slot = serde_json::to_value(report).ok();
            *text = report.table();
        }
    }
    reporter.report(event);
    ExitCode::from(CHECKS_FAILED)
}

/// Parses the process's command line into a host's clap type `P` (an
/// xtask enum that mounts [`Command`]), keeping gopack's CI contract: a
/// command line clap refuses ends the process as [`exit_on_parse_error`]
/// says (with `--json`, one `usage` error event on stderr and exit status
/// 2; `--help` and `--version` as clap prints them). Use it in place of
/// `P::parse()`, which prints clap's text even with `--json`.
pub fn parse<P: clap::Parser>() -> P {
    P::try_parse().unwrap_or_else(|err| exit_on_parse_error(err))
}

/// Ends the process on a command line clap refuses (or `--help`, `--version`):
/// as clap prints it, or, when `--json` is among the arguments, as one
/// `usage` error event on stderr, so that a CI parser sees only JSON.
pub fn exit_on_parse_error(err: clap::Error) -> ! {
    let json = std::env::args_os().any(|a| a == "--json");
    if !json || !err.use_stderr() {
        err.exit()
    }
    let rendered = err.render().to_string();
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let message = lines
        .next()
        .unwrap_or("the command line is invalid")
        .trim_start_matches("error: ")
        .to_string();
    let help = lines.map(str::trim).collect::<Vec<_>>().join(" ");
    let event = Event::Error {
        code: "usage".into(),
        message,
        help,
        report: None,
        text: String::new(),
    };
    if let Ok(line) = serde_json::to_string(&event) {
        eprintln!("{line}");
    }
    std::process::exit(ERROR.into())
}

/// With `--json`, a panic (a bug) is reported as a `panic` error event too,
/// so that stderr stays JSON.
fn json_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = match info.payload().downcast_ref::<&str>() {
            Some(text) => text.to_string(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        };
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let event = Event::Error {
            code: "panic".into(),
            message: format!("gopack panicked{location}: {message}"),
            help: "this is a bug in gopack: report it with this message and the command line"
                .into(),
            report: None,
            text: String::new(),
        };
        if let Ok(line) = serde_json::to_string(&event) {
            eprintln!("{line}");
        }
    }));
}

/// gopack's subcommands (boxed, so that a host's enum that mounts them stays small).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Build static Go binaries (cached by go.sum and source hashes).
    Build(Box<BuildArgs>),
    /// Build and pack apps into minimal FROM-scratch images (OCI layout and archive).
    Pack(Box<PackArgs>),
    /// Check the tools gopack uses and say how to install the missing ones.
    Doctor(DoctorArgs),
    /// Check that an image keeps the promises of the idioms (static, non-root, certs, ...).
    Verify(Box<VerifyArgs>),
    /// Print the app's multi-platform Dockerfile (the docker engine's), or check a committed one.
    Dockerfile(Box<DockerfileArgs>),
    /// Pack the app, load it into docker and run it (`docker run --rm`), passing ARGS after `--`.
    Run(Box<RunArgs>),
    /// Remove gopack's outputs, cache and deps images (all, or those of the named apps).
    Clean(CleanArgs),
    /// Show what differs between two images: files, config, layers, pull size
    /// (exit 0 when the same, 1 when different).
    Diff(Box<DiffArgs>),
}

impl Command {
    /// Runs the subcommand with the [`Console`] its flags ask for, prints
    /// errors through it, and returns the process exit code: 0 on success, 1
    /// when checks fail (verify, `dockerfile --check`, pack's verify), 2 for
    /// errors (usage, config, tools, unreadable input), as ripgrep does.
    /// SIGINT and SIGTERM stop the run: children are stopped, temporary files
    /// removed, and the exit code is 130 or 143 (`run` passes them on to the
    /// container and exits with its code).
    pub fn main(self) -> ExitCode {
        let _ = crate::process::handle_signals();
        if self.json() {
            json_panics();
        }
        let console = self.console();
        let result = self.run_with(&console);
        // Stopped by a signal: the signal thread ends the run (130/143).
        crate::process::wait_if_stopping();
        match result {
            Ok(code) => code,
            Err(err) => {
                console.report(Event::error(&err));
                ExitCode::from(ERROR)
            }
        }
    }

    /// Runs the subcommand with the [`Console`] its flags ask for; errors are
    /// returned, not printed.
    pub fn run(self) -> Result<ExitCode> {
        let console = self.console();
        self.run_with(&console)
    }

    /// Runs the subcommand, reporting progress, warnings and failed checks to
    /// `reporter` (a host xtask keeps its own output); results go to stdout
    /// (one JSON line per app with `--json`). Errors are returned, not printed.
    pub fn run_with(self, reporter: &dyn Reporter) -> Result<ExitCode> {
        match self {
            Command::Build(args) => args.run(reporter),
            Command::Doctor(args) => args.run(),
            Command::Pack(args) => args.run(reporter),
            Command::Verify(args) => args.run(reporter),
            Command::Dockerfile(args) => args.run(reporter),
            Command::Run(args) => args.run(reporter),
            Command::Clean(args) => args.run(reporter),
            Command::Diff(args) => args.run(reporter),
        }
    }

    /// The reporter the subcommand's flags ask for (`--json`, `--quiet`, `--verbose`).
    pub fn console(&self) -> Console {
        match self.common() {
            Some(common) => common.console(),
            None => Console::new(self.json(), false),
        }
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            Command::Doctor(args) => args.json,
            _ => self.common().is_some_and(|c| c.json),
        }
    }

    /// The options shared by the subcommands that read the workspace.
    pub fn common(&self) -> Option<&Common> {
        match self {
            Command::Build(args) => Some(&args.common),
            Command::Pack(args) => Some(&args.common),
            Command::Verify(args) => Some(&args.common),
            Command::Dockerfile(args) => Some(&args.common),
            Command::Run(args) => Some(&args.common),
            Command::Clean(args) => Some(&args.common),
            Command::Diff(args) => Some(&args.common),
            Command::Doctor(_) => None,
        }
    }
}

/// Options every subcommand that reads the workspace takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The workspace's Cargo.toml (default: found from the current folder).
    #[arg(long, value_name = "PATH", global = true)]
    pub manifest_path: Option<Utf8PathBuf>,
    /// Print only JSON lines: progress, warnings and errors on stderr, one result
    /// per app on stdout (docs/ci.md has the schema).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors and results.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print more detail (e.g. the libraries of a cgo = "dynamic" binary).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// The `go` binary to use (default: PATH, then the usual install folders).
    #[arg(long = "go", env = "GOPACK_GO", value_name = "PATH", global = true)]
    pub go: Option<OsString>,
    /// The cache folder, e.g. one shared by checkouts or CI jobs (default: the
    /// config's `cache-dir`, else `<target>/gopack/cache`).
    #[arg(long, env = "GOPACK_CACHE_DIR", value_name = "DIR", global = true)]
    pub cache_dir: Option<OsString>,
}

impl Common {
    /// Reads the workspace, with the environment this command was given
    /// (`SOURCE_DATE_EPOCH` is read here, at the edge, too).
    pub fn workspace(&self) -> Result<Workspace> {
        Workspace::load_with(self.manifest_path.as_deref(), self.environment())
    }

    /// The environment variables the library honours, as this command was given them.
    pub fn environment(&self) -> Environment {
        Environment {
            go: self.go.clone(),
            cache_dir: self.cache_dir.clone(),
            source_date_epoch: crate::environment::var_os("SOURCE_DATE_EPOCH"),
            sign_key: crate::config::settings::Secret::from_env("GOPACK_SIGN_KEY"),
            cosign_password: crate::config::settings::Secret::from_env("COSIGN_PASSWORD"),
        }
    }

    /// The reporter that prints progress as asked.
    pub fn console(&self) -> Console {
        Console::new(self.json, self.quiet).verbose(self.verbose)
    }
}

/// `--since REF`, for the commands that work on many apps (build, pack).
#[derive(Debug, Clone, clap::Args)]
pub struct Since {
    /// Only the apps whose inputs changed between the git revision REF (a
    /// branch, tag, commit or merge base) and the working tree, uncommitted and
    /// untracked files included; nothing when none changed (docs/ci.md).
    #[arg(long, value_name = "REF", conflicts_with_all = ["apps", "all"])]
    pub since: Option<String>,
}

impl Since {
    /// The apps to work on, with the CLI's overrides applied, and with
    /// `--since` the reasons each was selected (empty without it). With
    /// `--since` and no changed app, none, and a note says so.
    pub fn select(
        &self,
        selection: &Selection,
        workspace: &Workspace,
        reporter: &dyn Reporter,
    ) -> Result<Vec<(crate::config::App, Vec<String>)>> {
        let Some(reference) = &self.since else {
            let apps = workspace.select(&selection.apps, &selection.overrides())?;
            return Ok(apps.into_iter().map(|app| (app, Vec::new())).collect());
        };
        since_select(workspace, reference, &selection.overrides(), reporter)
    }
}

/// The apps whose inputs changed since `reference` (see [`crate::since`]),
/// with `overrides` applied after the comparison (a flag is not a change).
pub(crate) fn since_select(
    workspace: &Workspace,
    reference: &str,
    overrides: &Overrides,
    reporter: &dyn Reporter,
) -> Result<Vec<(crate::config::App, Vec<String>)>> {
    let chosen = crate::since::select(workspace, workspace.all_apps(), reference)?;
    if chosen.is_empty() {
        reporter.report(Event::Note {
            message: format!("no app's inputs changed since {reference}"),
        });
        return Ok(Vec::new());
    }
    let names: Vec<String> = chosen.iter().map(|s| s.app.name().to_string()).collect();
    let apps = workspace.select(&names, overrides)?;
    Ok(apps
        .into_iter()
        .zip(chosen.into_iter().map(|s| s.reasons))
        .collect())
}

/// The cache registry of a run: flags (or their environment variables) over
/// the config's `cache-registry` and `cache-registry-mode`.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheRegistryFlags {
    /// Share built binaries and layers between machines through this registry,
    /// e.g. ghcr.io/acme/gopack-cache (default: the config's `cache-registry`;
    /// an empty value turns it off).
    #[arg(
        long,
        value_name = "HOST[/PATH]",
        env = "GOPACK_CACHE_REGISTRY",
        hide_env_values = true
    )]
    pub cache_registry: Option<String>,
    /// `read-write` (take entries, push new ones) or `read` (take entries only,
    /// for pull-request jobs); default: the config's `cache-registry-mode`.
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        env = "GOPACK_CACHE_REGISTRY_MODE"
    )]
    pub cache_registry_mode: Option<crate::config::CacheRegistryMode>,
    /// A PEM file of CA certificates to trust for registries (the cache
    /// registry, and `--push`), besides the system's CA bundle.
    #[arg(long, value_name = "PEM", env = "GOPACK_REGISTRY_CA_FILE")]
    pub registry_ca_file: Option<camino::Utf8PathBuf>,
}

impl CacheRegistryFlags {
    /// The run's cache registry, if one is configured.
    pub fn open<'a>(
        &self,
        workspace: &Workspace,
        connection: crate::registry::Connection,
        reporter: &'a dyn crate::report::Reporter,
    ) -> Result<Option<crate::remote_cache::RemoteCache<'a>>> {
        let (prefix, source) = match &self.cache_registry {
            Some(value) if value.is_empty() => return Ok(None),
            Some(value) => (value.clone(), "--cache-registry (or GOPACK_CACHE_REGISTRY)"),
            None => match &workspace.config.cache_registry {
                Some(value) => (value.clone(), "workspace.metadata.gopack.cache-registry"),
                None => return Ok(None),
            },
        };
        let mode = self
            .cache_registry_mode
            .unwrap_or(workspace.config.cache_registry_mode);
        let connection = crate::registry::Connection {
            ca_file: self.registry_ca_file.clone(),
            ..connection
        };
        let cache = crate::cache::Cache::open(workspace.cache_dir())?;
        crate::remote_cache::RemoteCache::new(&prefix, source, mode, connection, &cache, reporter)
            .map(Some)
    }
}

/// Which apps to work on, and the overrides of config for this run.
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// Apps to work on (default: all of them).
    #[arg(value_name = "APP")]
    pub apps: Vec<String>,
    /// Work on every app (the default when no app is named).
    #[arg(long, conflicts_with = "apps")]
    pub all: bool,
    /// Target platform `os/arch[/variant]`; repeat for several (overrides `platforms`).
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<Platform>,
    /// The app user's name (the idioms' USERNAME).
    #[arg(long, value_name = "NAME")]
    pub user_name: Option<String>,
    /// The app user's numeric id (the idioms' USER_ID).
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,
    /// The app user's numeric group id (the idioms' GROUP_ID).
    #[arg(long, value_name = "GID")]
    pub gid: Option<u32>,
    /// The version stamped into the binary and used as the image tag.
    #[arg(long = "app-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Build with cgo: `off`, `static` or `dynamic` (overrides `cgo`).
    #[arg(long, value_enum, value_name = "MODE")]
    pub cgo: Option<crate::config::Cgo>,
}

impl Selection {
    /// The CLI's overrides of the config.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            platforms: self.platforms.clone(),
            user_name: self.user_name.clone(),
            uid: self.uid,
            gid: self.gid,
            version: self.version.clone(),
            cgo: self.cgo,
        }
    }
}
