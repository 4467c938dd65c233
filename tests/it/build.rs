//! `cargo xtask build`: real `go`, real cache, real failures.

use crate::support::*;
use gopack_core::build::Builder;
use gopack_core::config::Overrides;
use gopack_core::report::{Event, Recorder};

const HELLO: &str = r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
platforms = ["linux/amd64", "linux/arm64"]
"#;

fn hello_workspace() -> TestWorkspace {
    let ws = TestWorkspace::new(HELLO);
    ws.copy("examples/hello", "hello");
    ws
}

/// Builds every app of the workspace through the library and returns the events.
fn build_events(ws: &TestWorkspace) -> Vec<Event> {
    let workspace = ws.workspace();
    let recorder = Recorder::default();
    let builder = Builder::new(&workspace, &recorder).unwrap();
    for app in workspace.select(&[], &Overrides::default()).unwrap() {
        builder.build(&app).unwrap();
    }
    recorder.events()
}

fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

fn go_builds(events: &[Event]) -> usize {
    count(events, |e| matches!(e, Event::GoBuild { .. }))
}

fn downloads(events: &[Event]) -> usize {
    count(events, |e| matches!(e, Event::DepsDownload { .. }))
}

#[test]
fn builds_static_binaries_for_two_platforms() {
    let ws = hello_workspace();
    let out = ws.xtask(["build", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let paths: Vec<&str> = stdout.lines().collect();
    assert_eq!(paths.len(), 2, "{}", text(&out));
    for (path, machine) in [
        (
            "target/gopack/hello/bin/linux_amd64/hello",
            goblin::elf::header::EM_X86_64,
        ),
        (
            "target/gopack/hello/bin/linux_arm64/hello",
            goblin::elf::header::EM_AARCH64,
        ),
    ] {
        let full = ws.root.join(path);
        assert!(paths.contains(&full.as_str()), "{path} not in {paths:?}");
        let (found, is_static) = elf_facts(full.as_std_path());
        assert_eq!(found, machine, "{path}");
        assert!(is_static, "{path} is not static");
        let elf_bytes = std::fs::read(&full).unwrap();
        let elf = goblin::elf::Elf::parse(&elf_bytes).unwrap();
        assert!(elf.syms.is_empty(), "{path} still has a symbol table");
    }
    // The amd64 binary runs here and has what it was stamped with.
    let run = std::process::Command::new(ws.root.join("target/gopack/hello/bin/linux_amd64/hello"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("hello from gopack"),
        "{}",
        text(&run)
    );
}

#[test]
fn unchanged_build_runs_no_go_build_and_changes_rebuild() {
    let ws = hello_workspace();
    let first = build_events(&ws);
    assert_eq!(go_builds(&first), 2, "{first:?}");
    // hello's go.mod requires nothing: there is nothing to download.
    assert_eq!(downloads(&first), 0, "{first:?}");

    let second = build_events(&ws);
    assert_eq!(
        go_builds(&second),
        0,
        "a no-change build ran go: {second:?}"
    );
    assert_eq!(downloads(&second), 0, "{second:?}");
    assert_eq!(
        count(&second, |e| matches!(e, Event::BinaryCached { .. })),
        2
    );

    // A test file never reaches the binary: still cached.
    ws.write("hello/extra_test.go", "package main\n");
    assert_eq!(go_builds(&build_events(&ws)), 0);

    // A changed .go file rebuilds both platforms, without a new download.
    let main = ws.root.join("hello/main.go");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, source.replace("hello from gopack", "hi from gopack")).unwrap();
    let third = build_events(&ws);
    assert_eq!(go_builds(&third), 2, "{third:?}");
    assert_eq!(downloads(&third), 0, "{third:?}");
    let run = std::process::Command::new(ws.root.join("target/gopack/hello/bin/linux_amd64/hello"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&run.stdout).contains("hi from gopack"));

    // A changed go.sum is a new deps key: both platforms rebuild (still
    // nothing to download for a go.mod without requirements).
    ws.write("hello/go.sum", "\n");
    let fourth = build_events(&ws);
    assert_eq!(go_builds(&fourth), 2, "{fourth:?}");
    assert_eq!(downloads(&fourth), 0, "{fourth:?}");
}

#[test]
fn app_with_dependencies_builds_offline_from_a_proxy_folder() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "depsapp"
path = "apps/depsapp"
platforms = ["linux/amd64"]
"#,
    );
    ws.copy("tests/fixtures/deps-app", "apps/depsapp");
    let modcache = tempfile::tempdir().unwrap();
    let out = ws
        .xtask_command(["build", "--json"])
        .env("GOMODCACHE", modcache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"event\":\"deps-download\""), "{stderr}");
    assert!(
        modcache
            .path()
            .join("cache/download/example.com/greet/@v/v1.0.0.zip")
            .is_file(),
        "go mod download did not fill the module cache from the proxy folder"
    );
    let run = std::process::Command::new(
        ws.root
            .join("target/gopack/depsapp/bin/linux_amd64/depsapp"),
    )
    .output()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "hello, depsapp, from example.com/greet"
    );
    // Go's module cache is read-only; let the temp dir go away.
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(modcache.path())
        .status();
}

#[test]
fn bad_inputs_get_clear_errors_and_leave_the_cache_intact() {
    let ws = hello_workspace();
    let out = ws.xtask(["build", "hello", "--platform", "linux/amd64"]);
    assert!(out.status.success(), "{}", text(&out));
    let bins_before = cache_entries(&ws.cache_dir(), "bin");
    assert_eq!(bins_before.len(), 1);

    ws.expect_error(
        &["build", "web"],
        &[],
        &["unknown app `web`", "known apps: hello"],
    );
    ws.expect_error(
        &["build", "--platform", "linux/sparc"],
        &[],
        &["--platform", "sparc"],
    );
    ws.expect_error(&["build", "--uid", "0"], &[], &["--uid", "root"]);
    ws.expect_error(
        &["build"],
        &[("GOPACK_GO", "/nonexistent/go")],
        &[
            "`go (--go or GOPACK_GO=/nonexistent/go)` was not found",
            "the `--go` flag",
            "install Go",
        ],
    );

    // A broken config names the manifest and the key.
    let manifest = ws.root.join("Cargo.toml");
    ws.set_config(&format!("{HELLO}\ncolour = \"red\"\n"));
    ws.expect_error(
        &["build"],
        &[],
        &[manifest.as_str(), "apps[0].colour", "unknown field"],
    );
    ws.set_config(&HELLO.replace("path = \"hello\"", "path = \"nowhere\""));
    ws.expect_error(&["build"], &[], &["apps[0].path", "no go.mod"]);
    ws.set_config(&HELLO.replace(
        "platforms = [\"linux/amd64\", \"linux/arm64\"]",
        "platforms = [\"linux\"]",
    ));
    ws.expect_error(&["build"], &[], &["apps[0].platforms[0]", "os/arch"]);
    ws.set_config(&format!("{HELLO}user = {{ uid = 0 }}\n"));
    ws.expect_error(&["build"], &[], &["apps[0].user.uid", "root"]);
    ws.set_config(&format!("{HELLO}main = \"./cmd/missing\"\n"));
    ws.expect_error(
        &["build"],
        &[],
        &["apps[0].main", "./cmd/missing", "not a folder"],
    );
    ws.set_config(&format!("{HELLO}{HELLO}"));
    ws.expect_error(&["build"], &[], &["apps[1].name", "already used"]);
    ws.set_config(HELLO);

    // A compile error shows go's stderr, and stores nothing.
    let main = ws.root.join("hello/main.go");
    let good = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        good.replace("func main() {", "func main() {\n\tundefinedThing()"),
    )
    .unwrap();
    ws.expect_error(
        &["build", "--platform", "linux/amd64"],
        &[],
        &["go build", "undefined: undefinedThing", "main.go"],
    );
    assert_eq!(
        cache_entries(&ws.cache_dir(), "bin"),
        bins_before,
        "a failed build stored an entry"
    );

    // The cache still answers for the good sources.
    std::fs::write(&main, good).unwrap();
    let out = ws.xtask(["build", "--json", "--platform", "linux/amd64"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"event\":\"binary-cached\""),
        "{}",
        text(&out)
    );
}

#[test]
fn concurrent_runs_on_one_cache_both_succeed() {
    let ws = hello_workspace();
    ws.write(
        "hello/concurrent.go",
        "package main\n\nvar concurrent = 1\n",
    );
    let spawn = || {
        ws.xtask_command(["build", "--platform", "linux/amd64"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    assert_eq!(cache_entries(&ws.cache_dir(), "bin").len(), 1);
    // hello requires no module: nothing is downloaded, so no deps marker.
    assert_eq!(cache_entries(&ws.cache_dir(), "deps").len(), 0);
    let (_, is_static) = elf_facts(
        ws.root
            .join("target/gopack/hello/bin/linux_amd64/hello")
            .as_std_path(),
    );
    assert!(is_static);
}

#[test]
fn a_killed_build_leaves_no_entry_that_a_later_run_trusts() {
    let ws = hello_workspace();
    // New source, so this run must compile.
    ws.write("hello/killed.go", "package main\n\nvar killed = 2\n");
    let mut child = ws
        .xtask_command(["build", "--json", "--platform", "linux/arm64"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        use std::io::BufRead;
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the run ended before go build started"
        );
        if line.contains("\"event\":\"go-build\"") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        cache_entries(&ws.cache_dir(), "bin").is_empty(),
        "the killed run stored an entry"
    );

    let out = ws.xtask(["build", "--json", "--platform", "linux/arm64"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"event\":\"go-build\""));
    let (machine, is_static) = elf_facts(
        ws.root
            .join("target/gopack/hello/bin/linux_arm64/hello")
            .as_std_path(),
    );
    assert_eq!(machine, goblin::elf::header::EM_AARCH64);
    assert!(is_static);
}

/// Sets the mtime of `path` with the real `touch` (its ctime becomes now).
fn touch_back(path: &camino::Utf8Path) {
    run_ok(std::process::Command::new("touch").args(["-d", "2020-01-01 00:00:00", path.as_str()]));
}

fn stat_records(ws: &TestWorkspace) -> String {
    let dir = ws.cache_dir().join("stat");
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        // Records are binary; their paths are UTF-8 within them.
        text.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.path()).unwrap_or_default(),
        ));
    }
    text
}

#[test]
fn edits_that_keep_size_and_mtime_rebuild_even_after_a_killed_run() {
    let ws = hello_workspace();
    let main = ws.root.join("hello/main.go");
    touch_back(&main);
    // Past the racy window, so the first run records main.go's identity.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let out = ws.xtask(["build", "--platform", "linux/amd64"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stat_records(&ws).contains(main.as_str()),
        "main.go's identity was not recorded: {}",
        stat_records(&ws)
    );

    // Same size, same mtime, same inode: only the content (and ctime) differ.
    let before = std::fs::metadata(&main).unwrap();
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        source.replace("hello from gopack", "hullo from gopack"),
    )
    .unwrap();
    touch_back(&main);
    let after = std::fs::metadata(&main).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (
            before.len(),
            before.mtime(),
            before.mtime_nsec(),
            before.ino()
        ),
        (after.len(), after.mtime(), after.mtime_nsec(), after.ino())
    );

    // A run killed while go build runs, then a whole run: the edit is in the binary.
    let mut child = ws
        .xtask_command(["build", "--json", "--platform", "linux/amd64"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        use std::io::BufRead;
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the edit was not seen: the run ended without go build"
        );
        if line.contains("\"event\":\"go-build\"") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let binary = ws.root.join("target/gopack/hello/bin/linux_amd64/hello");
    let hello = || {
        let out = ws.xtask(["build", "--platform", "linux/amd64"]);
        assert!(out.status.success(), "{}", text(&out));
        let run = std::process::Command::new(&binary).output().unwrap();
        String::from_utf8_lossy(&run.stdout).into_owned()
    };
    assert!(hello().contains("hullo from gopack"));

    // A file replaced by another of the same size and mtime (a new inode).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(hello().contains("hullo from gopack"));
    let replacement = ws.root.join("hello/main.go.new");
    std::fs::write(
        &replacement,
        source.replace("hello from gopack", "hallo from gopack"),
    )
    .unwrap();
    touch_back(&replacement);
    std::fs::rename(&replacement, &main).unwrap();
    assert_ne!(std::fs::metadata(&main).unwrap().ino(), after.ino());
    assert!(hello().contains("hallo from gopack"));
}

/// A host's xtask binary run directly (no `cargo xtask`, so no CARGO in the
/// environment) finds cargo on PATH to read the workspace; with no cargo at
/// all, the error names cargo.
#[test]
fn the_xtask_run_directly_reads_the_workspace_with_cargo_from_path() {
    let ws = hello_workspace();
    let out = ws
        .xtask_command(["pack", "--dry-run"])
        .env_remove("CARGO")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello"),
        "{}",
        text(&out)
    );
    let out = ws
        .xtask_command(["pack", "--dry-run"])
        .env_remove("CARGO")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cargo is not on PATH"),
        "{}",
        text(&out)
    );
}
