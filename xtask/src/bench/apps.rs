//! Per-app measurements of `bench`: no-change re-pack, re-packs after a
//! one-line edit against plain `go build` with the same flags after the same
//! edit (a comment, which leaves the binary as it was, and a line of code,
//! which changes it), image size against binary size; plus the machine
//! description and the xtask's cold compile.

use super::{median, ms, time};
use camino::{Utf8Path, Utf8PathBuf};
use gopack_core::build::BuildFlags;
use gopack_core::config::{Overrides, Workspace};
use gopack_core::toolchain::Go;
use std::process::Command;
use std::time::{Duration, Instant};

/// What one app measured.
pub struct AppResult {
    pub(super) name: String,
    pub(super) files: usize,
    pub(super) bytes: u64,
    pub(super) binary: u64,
    pub(super) image: u64,
    pub(super) no_change: Duration,
    pub(super) one_file: Duration,
    pub(super) go_build: Duration,
    /// After a one-line change of code (a new binary).
    pub(super) code_change: Duration,
    pub(super) code_go_build: Duration,
    /// The load average when the app's figures were taken.
    pub(super) load: String,
}

/// A Go file with one line of code appended that changes the binary on each
/// `n`: a package variable set by an `init`.
pub(super) fn code_edit(original: &[u8], n: usize) -> Vec<u8> {
    let mut bytes = original.to_vec();
    bytes.extend_from_slice(
        format!("\nvar gopackBenchEdit int\n\nfunc init() {{ gopackBenchEdit = {n} }}\n")
            .as_bytes(),
    );
    bytes
}

/// Where the measurements write: one target folder and one Go cache.
pub struct Context {
    root: Utf8PathBuf,
    me: std::path::PathBuf,
    go: Go,
    /// The Go cache to use; None: the user's own.
    gocache: Option<Utf8PathBuf>,
}

impl Context {
    /// A context writing under `root` (created), measuring the xtask at `gopack`.
    pub fn new(root: &Utf8Path, gopack: &std::path::Path) -> Result<Context, String> {
        std::fs::create_dir_all(root).map_err(|e| format!("{root}: {e}"))?;
        Ok(Context {
            root: root.to_path_buf(),
            me: gopack.to_path_buf(),
            go: Go::find().map_err(|e| e.to_string())?,
            gocache: Some(root.join("gocache")),
        })
    }

    /// Uses the user's Go cache (configured apps: their packages are in it already).
    pub fn with_user_gocache(mut self) -> Self {
        self.gocache = None;
        self
    }

    /// Measures the app `name` of the workspace at `manifest` (default: the current one),
    /// for its first platform.
    pub fn measure(
        &self,
        manifest: Option<&Utf8Path>,
        name: &str,
        runs: usize,
    ) -> Result<AppResult, String> {
        let workspace = Workspace::load(manifest).map_err(|e| e.to_string())?;
        let app = workspace
            .select(&[name.to_string()], &Overrides::default())
            .map_err(|e| e.to_string())?
            .remove(0);
        let platform = app.platforms()[0].clone();
        let target = self.root.join("target");
        let gopack = || {
            let mut cmd = Command::new(&self.me);
            cmd.args(["pack", name, "--quiet", "--platform", &platform.to_string()])
                .arg("--manifest-path")
                .arg(&workspace.manifest)
                .env("CARGO_TARGET_DIR", &target);
            if let Some(gocache) = &self.gocache {
                cmd.env("GOCACHE", gocache);
            }
            cmd
        };
        let setup = gopack_core::gomod::ModuleSetup::detect(&app).map_err(|e| e.to_string())?;
        let flags = BuildFlags::for_app(&app, "bench", &setup).map_err(|e| e.to_string())?;
        let plain_out = self.root.join(format!("plain-{name}"));
        let plain_go = || {
            let mut cmd = Command::new(&self.go.path);
            cmd.arg("build")
                .args(flags.args())
                .arg("-o")
                .arg(&plain_out)
                .arg(gopack_core::build::main_package(&app.config.main))
                .current_dir(&app.dir)
                .env("CGO_ENABLED", "0")
                .envs(platform.go_env())
                .envs(&app.config.env);
            if let Some(gocache) = &self.gocache {
                cmd.env("GOCACHE", gocache);
            }
            cmd
        };
        eprintln!("{name}: first pack...");
        time(&mut gopack())?;
        time(&mut plain_go())?;
        let no_change = median(runs, || time(&mut gopack()))?;

        let edited = main_go_file(&app.dir.join(&app.config.main))?;
        let original = std::fs::read(&edited).map_err(|e| format!("{edited}: {e}"))?;
        let _restore = Restore {
            path: edited.clone(),
            bytes: original.clone(),
        };
        let mut n = 0;
        let mut edit = || {
            n += 1;
            let mut bytes = original.clone();
            bytes.extend_from_slice(format!("\n// gopack bench edit {n}\n").as_bytes());
            std::fs::write(&edited, bytes).map_err(|e| format!("{edited}: {e}"))
        };
        let one_file = median(runs, || {
            edit()?;
            time(&mut gopack())
        })?;
        let go_build = median(runs, || {
            edit()?;
            time(&mut plain_go())
        })?;
        let code = |n: usize| {
            std::fs::write(&edited, code_edit(&original, n)).map_err(|e| format!("{edited}: {e}"))
        };
        let mut n = 0;
        let code_change = median(runs, || {
            n += 1;
            code(n)?;
            time(&mut gopack())
        })?;
        let code_go_build = median(runs, || {
            n += 1;
            code(n)?;
            time(&mut plain_go())
        })?;
        let load = load();

        let out = target.join("gopack").join(name);
        let binary = std::fs::metadata(out.join("bin").join(platform.slug()).join(name))
            .map(|m| m.len())
            .unwrap_or(0);
        let image = std::fs::read_dir(out.join("oci/blobs/sha256"))
            .map_err(|e| e.to_string())?
            .flatten()
            .filter_map(|e| e.metadata().ok().map(|m| m.len()))
            .sum();
        let (files, bytes) = count_files(&app.dir);
        Ok(AppResult {
            name: name.to_string(),
            files,
            bytes,
            binary,
            image,
            no_change,
            one_file,
            go_build,
            code_change,
            code_go_build,
            load,
        })
    }
}

/// Puts a file's bytes back when dropped, even when a measurement fails.
pub(super) struct Restore {
    pub(super) path: Utf8PathBuf,
    pub(super) bytes: Vec<u8>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.bytes);
    }
}

/// The first Go file (by name) of the main package in `dir`.
fn main_go_file(dir: &Utf8Path) -> Result<Utf8PathBuf, String> {
    let mut names: Vec<Utf8PathBuf> = dir
        .read_dir_utf8()
        .map_err(|e| format!("{dir}: {e}"))?
        .flatten()
        .map(|e| e.path().to_path_buf())
        .filter(|p| p.as_str().ends_with(".go") && !p.as_str().ends_with("_test.go"))
        .collect();
    names.sort();
    names
        .into_iter()
        .next()
        .ok_or_else(|| format!("{dir} has no Go file to edit"))
}

/// Files and bytes under `dir`, hidden folders left out.
fn count_files(dir: &Utf8Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in dir.read_dir_utf8().into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if !entry.file_name().starts_with('.') {
                    stack.push(entry.path().to_path_buf());
                }
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

/// The results as a markdown table.
pub fn render(results: &[AppResult]) -> String {
    let mut out = String::from(
        "| app | files | source bytes | binary | image blobs | no-change re-pack | comment edit: pack | plain `go build` | ratio | code edit: pack | plain `go build` | ratio | load average |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {:.2} | {} |\n",
            r.name,
            r.files,
            r.bytes,
            r.binary,
            r.image,
            ms(r.no_change),
            ms(r.one_file),
            ms(r.go_build),
            ratio(r.one_file, r.go_build),
            ms(r.code_change),
            ms(r.code_go_build),
            ratio(r.code_change, r.code_go_build),
            r.load,
        ));
    }
    out
}

/// CPU model, core count and load average: the figures depend on them.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores, load average {}", load())
}

pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Times `cargo build -p xtask` into an empty target folder (crates already
/// downloaded), through `$CARGO` when cargo runs the bench.
pub fn cold_xtask() -> Result<String, String> {
    let repo = Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("cold `cargo build -p xtask` (this takes a minute or more)...");
    let before = load();
    let start = Instant::now();
    let status = Command::new(cargo)
        .args(["build", "-p", "xtask", "--quiet"])
        .current_dir(&repo)
        .env("CARGO_TARGET_DIR", target.path())
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(format!("cold cargo build failed: {status}"));
    }
    Ok(format!(
        "| measurement | time | load average before → after |\n|---|---|---|\n\
         | cold `cargo build -p xtask` (empty target folder, crates downloaded) | {} | {before} → {} |",
        ms(elapsed),
        load()
    ))
}
