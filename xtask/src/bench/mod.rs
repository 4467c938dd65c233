//! `cargo xtask bench`: measures gopack against plain `go build` on the
//! bundled example, a generated large app (or any configured app with
//! `--app`), and the xtask's own cold compile, and writes the results to
//! docs/benchmarks.md.
//!
//! Timing lives here, never in tests' asserts.

mod apps;
mod generate;
mod levels;
mod monorepo;
mod peer;
mod since_repo;

use camino::{Utf8Path, Utf8PathBuf};
use gopack_core::toolchain::Go;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Runs per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Write the table to docs/benchmarks.md.
    #[arg(long)]
    write: bool,
    /// Measure these configured apps of the current workspace (no-change re-pack,
    /// one-file change against plain `go build`, sizes) instead of the bundled
    /// example and the generated large app. The one-file measurement appends a
    /// comment to a Go file of the app's main package and restores it afterwards.
    #[arg(long = "app", value_name = "NAME")]
    apps: Vec<String>,
    /// Also time a cold `cargo build -p xtask` in an empty target folder (slow).
    #[arg(long)]
    cold_xtask: bool,
    /// Only measure gzip levels 1-9 on these files (real apps' stripped
    /// binaries): bytes and time as layers are compressed, on every core.
    #[arg(long = "levels", value_name = "FILE", num_args = 1..)]
    levels: Vec<std::path::PathBuf>,
    /// Only measure the monorepo case: N generated apps in one repository,
    /// no-change and one-app-changed `pack` of all, against one app.
    #[arg(long, value_name = "N")]
    monorepo: Option<usize>,
    /// Only measure the Dockerfile peer: `buildah bud --layers` with cache
    /// mounts against gopack's `pack` and plain `go build`, after a one-line
    /// change of the generated large app with vendored modules.
    #[arg(long)]
    peer: bool,
    /// The xtask binary whose gopack commands are measured (default: this one),
    /// e.g. a build of main, to compare two versions with the same benchmark.
    #[arg(long, value_name = "PATH")]
    gopack: Option<std::path::PathBuf>,
    /// Only write the generated large app and a workspace that configures it
    /// as `large` into DIR (which must not exist), to profile by hand:
    /// `cd DIR && git init -q && git add -A && git commit -qm large`, then
    /// `xtask pack large` under perf or strace.
    #[arg(long, value_name = "DIR")]
    generate: Option<Utf8PathBuf>,
}

/// A workspace that configures the generated large app (in `large/`).
const LARGE_WORKSPACE: &str = "[workspace]\nmembers = []\n\n[[workspace.metadata.gopack.apps]]\n\
    name = \"large\"\npath = \"large\"\nplatforms = [\"linux/amd64\"]\n\
    version-variable = \"main.version\"\nversion = \"1.0.0\"\n";

/// Apps of the generated monorepo `--since` is timed on.
const MONOREPO_APPS: usize = 200;

/// Sections of docs/benchmarks.md that `--write` keeps, from the first of
/// them to the end: the xtask's cold compile with `--timings` (measured by
/// hand) and the compression levels (`--levels`). Every section before them,
/// the buildah peer's included, is made anew by `--write`.
const KEPT_SECTIONS: [&str; 2] = [
    "## Compiling the xtask from a fresh clone",
    "## Layer compression level",
];

struct Row {
    what: &'static str,
    gopack: Duration,
    go: Option<Duration>,
    /// The load average once the figure was taken.
    load: String,
}

impl BenchArgs {
    pub fn run(self) -> Result<(), String> {
        let go = Go::find().map_err(|e| e.to_string())?;
        let machine = apps::machine();
        eprintln!("machine: {machine}");
        let me = match &self.gopack {
            Some(path) => path.clone(),
            None => std::env::current_exe().map_err(|e| e.to_string())?,
        };
        if let Some(dir) = &self.generate {
            if dir.exists() {
                return Err(format!("{dir} exists: --generate writes a new folder"));
            }
            let (files, bytes) = generate::large_app(&dir.join("large"))?;
            std::fs::write(dir.join("Cargo.toml"), LARGE_WORKSPACE).map_err(|e| e.to_string())?;
            println!("{dir}: app `large`, {files} files, {bytes} bytes");
            return Ok(());
        }
        if !self.levels.is_empty() {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            println!("{machine}\n\n{}", levels::table(&self.levels, threads)?);
            return Ok(());
        }
        if let Some(apps) = self.monorepo {
            let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
            let root = Utf8PathBuf::from_path_buf(scratch.path().to_path_buf()).unwrap();
            let table = monorepo::measure(&root, &me, apps.max(1), self.runs)?;
            println!("{machine}, {}\n\n{table}", go.version);
            return Ok(());
        }
        if self.peer {
            let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
            let root = Utf8PathBuf::from_path_buf(scratch.path().to_path_buf()).unwrap();
            let table = peer::measure(&root, &me, self.runs)?;
            println!(
                "{machine}, {}\n\n{}\n\n{}\n\n{table}",
                go.version,
                peer::HEADING,
                peer::description(self.runs)
            );
            return Ok(());
        }
        if !self.apps.is_empty() {
            let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
            let root = Utf8PathBuf::from_path_buf(scratch.path().to_path_buf()).unwrap();
            let ctx = apps::Context::new(&root, &me)?.with_user_gocache();
            let mut results = Vec::new();
            for name in &self.apps {
                results.push(ctx.measure(None, name, self.runs)?);
            }
            println!("{machine}, {}\n\n{}", go.version, apps::render(&results));
            return Ok(());
        }
        let cold_xtask = if self.cold_xtask {
            Some(apps::cold_xtask()?)
        } else {
            None
        };
        let repo = Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
        let root = Utf8PathBuf::from_path_buf(scratch.path().to_path_buf()).unwrap();
        copy_dir(&repo.join("examples/hello"), &root.join("hello"))?;
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = []\n\n[[workspace.metadata.gopack.apps]]\nname = \"hello\"\n\
             path = \"hello\"\nplatforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\n",
        )
        .map_err(|e| e.to_string())?;
        let gocache = root.join("gocache");
        let gopack = |args: &[&str]| {
            let mut cmd = Command::new(&me);
            cmd.args(args)
                .arg("--quiet")
                .current_dir(&root)
                .env("GOCACHE", &gocache);
            cmd
        };
        let plain_go = || {
            let mut cmd = Command::new(&go.path);
            cmd.args(["build", "-trimpath", "-ldflags=-s -w -buildid=", "-o"])
                .arg(root.join("plain-hello"))
                .arg(".")
                .current_dir(root.join("hello"))
                .env("CGO_ENABLED", "0")
                .env("GOCACHE", &gocache);
            cmd
        };
        let clear = |path: &Utf8Path| {
            let _ = std::fs::remove_dir_all(path);
        };
        let main_go = root.join("hello/main.go");
        let touch_source = |n: usize| {
            let text = std::fs::read_to_string(&main_go).unwrap_or_default();
            let text = text
                .split("\n// bench edit")
                .next()
                .unwrap_or_default()
                .to_string();
            let _ = std::fs::write(&main_go, format!("{text}\n// bench edit {n}\n"));
        };
        let target = root.join("target");
        let mut rows = Vec::new();

        eprintln!("cold builds (empty GOCACHE, empty gopack cache)...");
        let cold_gopack = median(self.runs.min(3), || {
            clear(&gocache);
            clear(&target);
            time(&mut gopack(&["build"]))
        })?;
        let cold_go = median(self.runs.min(3), || {
            clear(&gocache);
            time(&mut plain_go())
        })?;
        rows.push(Row {
            what: "cold build (empty Go and gopack caches)",
            gopack: cold_gopack,
            go: Some(cold_go),
            load: apps::load(),
        });

        time(&mut gopack(&["build"]))?;
        let nochange_gopack = median(self.runs, || time(&mut gopack(&["build"])))?;
        let nochange_go = median(self.runs, || time(&mut plain_go()))?;
        rows.push(Row {
            what: "no-change rebuild",
            gopack: nochange_gopack,
            go: Some(nochange_go),
            load: apps::load(),
        });

        let mut n = 0;
        let onefile_gopack = median(self.runs, || {
            n += 1;
            touch_source(n);
            time(&mut gopack(&["build"]))
        })?;
        let onefile_go = median(self.runs, || {
            n += 1;
            touch_source(n);
            time(&mut plain_go())
        })?;
        rows.push(Row {
            what: "one-file change rebuild",
            gopack: onefile_gopack,
            go: Some(onefile_go),
            load: apps::load(),
        });

        let pack_fresh = median(self.runs, || {
            clear(&target.join("gopack/cache/layers"));
            time(&mut gopack(&["pack"]))
        })?;
        rows.push(Row {
            what: "pack, binary cached, layers compressed anew",
            gopack: pack_fresh,
            go: None,
            load: apps::load(),
        });
        let pack_nochange = median(self.runs, || time(&mut gopack(&["pack"])))?;
        rows.push(Row {
            what: "no-change re-pack",
            gopack: pack_nochange,
            go: None,
            load: apps::load(),
        });

        eprintln!("--since on a generated monorepo of {MONOREPO_APPS} apps, one changed...");
        let mono = root.join("monorepo");
        let changed = since_repo::generate(&mono, MONOREPO_APPS)?;
        std::fs::write(
            &changed,
            "package main

func main() { println(\"changed\") }
",
        )
        .map_err(|e| e.to_string())?;
        let since = median(self.runs, || {
            let mut cmd = Command::new(&me);
            cmd.args(["pack", "--since", "HEAD", "--dry-run", "--json", "--quiet"])
                .current_dir(&mono)
                .stdout(Stdio::null());
            time(&mut cmd)
        })?;
        rows.push(Row {
            what: "pack --since HEAD --dry-run, 200 apps, one changed",
            gopack: since,
            go: None,
            load: apps::load(),
        });

        let binary = target.join("gopack/hello/bin/linux_amd64/hello");
        let binary_size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        let archive_size = std::fs::metadata(target.join("gopack/hello/hello.tar"))
            .map(|m| m.len())
            .unwrap_or(0);
        let layers: u64 = std::fs::read_dir(target.join("gopack/hello/oci/blobs/sha256"))
            .map_err(|e| e.to_string())?
            .flatten()
            .filter_map(|e| e.metadata().ok().map(|m| m.len()))
            .sum();

        eprintln!("peak memory of pack, small and large binary...");
        let rss_small = peak_rss_kib(&mut gopack(&["pack", "hello"]))?;
        let big = root.join("big");
        copy_dir(&repo.join("examples/hello"), &big)?;
        let mut noise = vec![0u8; 64 << 20];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for chunk in noise.chunks_mut(8) {
            // xorshift: incompressible bytes, so gzip cannot shrink the layer.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(big.join("big.bin"), &noise).map_err(|e| e.to_string())?;
        drop(noise);
        std::fs::write(
            big.join("big.go"),
            "package main\n\nimport (\n\t_ \"embed\"\n\t\"os\"\n)\n\n//go:embed big.bin\nvar big []byte\n\nfunc init() {\n\tif len(os.Args) > 99 {\n\t\tos.Stdout.Write(big)\n\t}\n}\n",
        )
        .map_err(|e| e.to_string())?;
        let manifest = root.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
        std::fs::write(&manifest, text.replace("[[workspace", "[[workspace.metadata.gopack.apps]]\nname = \"big\"\npath = \"big\"\nplatforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\n\n[[workspace"))
            .map_err(|e| e.to_string())?;
        time(&mut gopack(&["build", "big"]))?;
        let rss_big_streaming = peak_rss_kib(&mut gopack(&["pack", "big", "--no-verify"]))?;
        clear(&target.join("gopack/cache/verified"));
        let rss_big = peak_rss_kib(&mut gopack(&["pack", "big"]))?;
        let big_binary = std::fs::metadata(target.join("gopack/big/bin/linux_amd64/big"))
            .map(|m| m.len())
            .unwrap_or(0);

        eprintln!("apps: no-change and one-file change re-packs...");
        let large = root.join("large");
        let (files, bytes) = generate::large_app(&large)?;
        eprintln!("generated {large}: {files} files, {bytes} bytes");
        let text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
        std::fs::write(&manifest, text.replacen("[[workspace", "[[workspace.metadata.gopack.apps]]\nname = \"large\"\npath = \"large\"\nplatforms = [\"linux/amd64\"]\nversion-variable = \"main.version\"\nversion = \"1.0.0\"\n\n[[workspace", 1))
            .map_err(|e| e.to_string())?;
        let ctx = apps::Context::new(&root.join("apps"), &me)?;
        let app_results = vec![
            ctx.measure(Some(&manifest), "hello", self.runs)?,
            ctx.measure(Some(&manifest), "large", self.runs)?,
        ];

        eprintln!("monorepo: 30 apps...");
        let monorepo = monorepo::measure(&root.join("mono"), &me, 30, self.runs)?;

        eprintln!("peer: buildah bud --layers against pack and go build...");
        let peer = peer::section(&root.join("peer"), &me, self.runs)?;

        let mut table = render(
            &rows,
            &go.version,
            binary_size,
            layers,
            archive_size,
            self.runs,
        );
        table = table.replacen("\n\n|", &format!("\n\nMachine: {machine}.\n\n|"), 1);
        table.push_str(&format!(
            "\n## Re-packs by app size\n\n`pack APP --platform linux/amd64`, whole process, median of {} runs; \
             the comment edit appends a comment to a Go file of the main package (go builds \
             again; the binary comes out the same), the code edit appends a line of code to it \
             (a package variable set in an `init`: a new binary each time); plain `go build` \
             runs with gopack's flags after the same kind of edit (warm Go cache for both).\n\n{}",
            self.runs,
            apps::render(&app_results)
        ));
        table.push_str(&format!(
            "\n## Monorepo: many apps at once\n\n`pack` of every app of a generated workspace \
             (30 small apps in one git repository, linux/amd64), whole process, median of {} runs, \
             after the first pack; against a no-change `pack` of one of them.\n\n{monorepo}",
            self.runs
        ));
        if let Some(cold) = &cold_xtask {
            table.push_str(&format!("\n## Compiling the xtask\n\n{cold}\n"));
        }
        table.push_str(&format!(
            "\n| peak memory of `pack` (GNU time, max RSS) | binary size | max RSS |\n|---|---|---|\n\
             | examples/hello, layers cached | {binary_size} | {rss_small} KiB |\n\
             | hello + 64 MiB of incompressible embedded data, layers compressed, `--no-verify` | {big_binary} | {rss_big_streaming} KiB |\n\
             | the same image, then `verify` (it reads the entrypoint binary into memory once) | {big_binary} | {rss_big} KiB |\n"
        ));
        table.push_str(&peer);
        println!("{table}");
        if self.write {
            let path = repo.join("docs/benchmarks.md");
            // Sections this run does not make are kept as they were.
            let kept = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(at) = KEPT_SECTIONS.iter().filter_map(|h| kept.find(h)).min() {
                table.push('\n');
                table.push_str(&kept[at..]);
            }
            std::fs::write(&path, table).map_err(|e| format!("{path}: {e}"))?;
            eprintln!("wrote {path}");
        }
        Ok(())
    }
}

fn time(cmd: &mut Command) -> Result<Duration, String> {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}"));
    }
    Ok(elapsed)
}

/// Peak resident memory of a command, measured by GNU time (`/usr/bin/time`).
fn peak_rss_kib(cmd: &mut Command) -> Result<u64, String> {
    let gnu_time = Utf8Path::new("/usr/bin/time");
    if !gnu_time.is_file() {
        return Err("the memory benchmark needs GNU time: apt-get install time".into());
    }
    let mut timed = Command::new(gnu_time);
    timed
        .arg("-f")
        .arg("%M")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            timed.env(key, value);
        }
    }
    let out = timed.output().map_err(|e| format!("{timed:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{timed:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("GNU time printed no peak memory: {text}"))
}

fn median(
    runs: usize,
    mut f: impl FnMut() -> Result<Duration, String>,
) -> Result<Duration, String> {
    let mut times = (0..runs.max(1))
        .map(|_| f())
        .collect::<Result<Vec<_>, _>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

fn ms(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

fn render(
    rows: &[Row],
    go_version: &str,
    binary: u64,
    blobs: u64,
    archive: u64,
    runs: usize,
) -> String {
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str(&format!(
        "Made by `cargo xtask bench --write` (median of {runs} runs; cold builds: median of up to 3) \
         on the bundled example (`examples/hello`, linux/amd64), {go_version}, {} cores. \
         gopack times are the `xtask` binary's whole run, `cargo metadata` included; \
         plain `go build` uses the same flags.\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    ));
    out.push_str("| measurement | gopack | plain `go build` | load average |\n|---|---|---|---|\n");
    for row in rows {
        let go = row.go.map(ms).unwrap_or_else(|| "—".into());
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.what,
            ms(row.gopack),
            go,
            row.load
        ));
    }
    out.push_str(&format!(
        "\n| size | bytes |\n|---|---|\n| stripped static binary | {binary} |\n\
         | image blobs (layers, config, manifest) | {blobs} |\n| archive (`hello.tar`) | {archive} |\n"
    ));
    out
}

fn copy_dir(from: &Utf8Path, to: &Utf8Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{to}: {e}"))?;
    for entry in from.read_dir_utf8().map_err(|e| format!("{from}: {e}"))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| format!("{target}: {e}"))?;
        }
    }
    Ok(())
}
