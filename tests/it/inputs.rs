//! Hostile inputs from the config and the source tree, tried as a pull request
//! would: paths that leave the workspace (absolute, `..`, symlinked parents and
//! folders), FIFOs where gopack reads files, values that would be rewritten
//! or end up in labels, and a git repository another process is using. Each
//! runs the real `cargo xtask` under a watchdog, so a hang fails the test.

use crate::support::*;
use camino::Utf8Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longer than any of these runs takes on a loaded machine; a hang fails here.
const WATCHDOG: Duration = Duration::from_secs(300);

/// Runs the command, killing it (and failing) when it outlives the watchdog.
fn run_watched(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the xtask binary runs");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "`{cmd:?}` still ran after {WATCHDOG:?} (a FIFO or lock blocked it):\n{}",
                text(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mkfifo(path: &Utf8Path) {
    let c = std::ffi::CString::new(path.as_str()).unwrap();
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {path}"
    );
}

fn hello(extra: &str) -> TestWorkspace {
    let ws = TestWorkspace::new(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n{extra}\n"
    ));
    ws.copy("examples/hello", "hello");
    ws
}

fn refused(ws: &TestWorkspace, args: &[&str], key: &str, words: &[&str]) {
    let mut cmd = ws.xtask_command(args);
    cmd.env("SOURCE_DATE_EPOCH", "0");
    let output = run_watched(cmd);
    let all = text(&output);
    assert!(!output.status.success(), "{args:?} passed:\n{all}");
    assert!(
        all.contains(key),
        "{args:?}: the error names no `{key}`:\n{all}"
    );
    for word in words {
        assert!(all.contains(word), "{args:?}: no `{word}`:\n{all}");
    }
}

#[test]
fn files_sources_never_leave_the_app_folder() {
    let ws = hello("");
    let outside = tempfile::tempdir().unwrap();
    let outside = Utf8Path::from_path(outside.path()).unwrap().to_path_buf();
    std::fs::write(outside.join("secret"), "s").unwrap();
    std::os::unix::fs::symlink("/etc", ws.root.join("hello/etc")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.root.join("hello/od")).unwrap();
    std::fs::create_dir_all(ws.root.join(".git")).unwrap();
    std::fs::write(ws.root.join(".git/config"), "[core]\n").unwrap();
    for src in [
        "/etc/shadow",
        "../../../../etc/shadow",
        "../.git/config",
        "etc/hostname",
        "od/",
    ] {
        ws.set_config(&format!(
            "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n\
             files = [{{ src = \"{src}\", dst = \"/etc/x\" }}]\n"
        ));
        refused(
            &ws,
            &["pack", "--dry-run"],
            "apps[0].files[0].src",
            &["files-root", src.trim_end_matches('/')],
        );
    }
    // A configured CA bundle or zoneinfo is read inside the workspace only.
    ws.set_config(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n\
         ca-bundle = \"/etc/ssl/certs/ca-certificates.crt\"\n",
    );
    refused(
        &ws,
        &["pack", "--dry-run"],
        "apps[0].ca-bundle",
        &["inside the workspace"],
    );
    std::os::unix::fs::symlink("/usr/share/zoneinfo", ws.root.join("zi")).unwrap();
    ws.set_config(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\nzoneinfo = \"zi\"\n",
    );
    refused(&ws, &["pack"], "zoneinfo", &["symbolic link"]);
}

#[test]
fn a_fifo_as_a_files_source_is_refused() {
    let ws = hello("files = [{ src = \"pipe\", dst = \"/etc/x\" }]");
    mkfifo(&ws.root.join("hello/pipe"));
    refused(&ws, &["pack"], "apps[0].files[0].src", &["FIFO"]);
    // Inside a copied folder, too.
    ws.set_config(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n\
         files = [{ src = \"assets/\", dst = \"/srv/assets/\" }]\n",
    );
    std::fs::create_dir_all(ws.root.join("hello/assets")).unwrap();
    std::fs::write(ws.root.join("hello/assets/a.txt"), "a").unwrap();
    mkfifo(&ws.root.join("hello/assets/pipe"));
    refused(&ws, &["pack"], "files[0]", &["FIFO"]);
}

#[test]
fn a_fifo_in_the_module_folder_does_not_block_and_embeds_still_rebuild() {
    let ws = hello("");
    // Gitignored or not, go build never reads it: neither does gopack.
    mkfifo(&ws.root.join("hello/debug.pipe"));
    std::fs::create_dir_all(ws.root.join("hello/logs")).unwrap();
    mkfifo(&ws.root.join("hello/logs/out"));
    std::fs::write(
        ws.root.join("hello/embed.go"),
        "package main\n\nimport (\n\t_ \"embed\"\n\t\"os\"\n)\n\n//go:embed banner.txt\nvar banner string\n\n\
         func init() { os.Setenv(\"GOPACK_TEST_BANNER\", banner) }\n",
    )
    .unwrap();
    std::fs::write(ws.root.join("hello/banner.txt"), "one\n").unwrap();
    let build = || {
        let output = run_watched(ws.xtask_command(["build", "--json"]));
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let digest = |out: &str| -> String {
        let v: serde_json::Value = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v.get("binaries").is_some())
            .unwrap_or_else(|| panic!("no result line in {out}"));
        v["binaries"][0]["sha256"].as_str().unwrap().to_string()
    };
    let first = digest(&build());
    // An edit of a file that only an embed pattern names changes the binary.
    std::fs::write(ws.root.join("hello/banner.txt"), "two\n").unwrap();
    let second = digest(&build());
    assert_ne!(first, second, "an embedded file's edit must rebuild");
    // A big file no pattern names changes nothing (and is not read).
    std::fs::write(ws.root.join("hello/dump.bin"), vec![7u8; 1 << 20]).unwrap();
    assert_eq!(digest(&build()), second);
}

#[test]
fn values_are_refused_not_rewritten() {
    let ws = hello("");
    for (extra, key, word) in [
        ("version = \"a b\"", "apps[0].version", "[A-Za-z0-9_]"),
        (
            "version = \"v1.0.0+build.5\"",
            "apps[0].version",
            "v1.0.0-build.5",
        ),
        ("tags = [\"a b\"]", "apps[0].tags[0]", "build tag"),
        (
            "build-env = { \"A=B\" = \"x\" }",
            "apps[0].build-env",
            "environment variable",
        ),
        (
            "platforms = [\"linux/amd64\", \"linux/amd64\"]",
            "apps[0].platforms[1]",
            "platforms[0]",
        ),
        ("user = { gid = 65534 }", "apps[0].user.gid", "65534"),
    ] {
        ws.set_config(&format!(
            "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n{extra}\n"
        ));
        refused(&ws, &["pack", "--dry-run"], key, &[word]);
    }
    ws.set_config("[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n");
    refused(
        &ws,
        &["pack", "--dry-run", "--app-version", "v1\nLABEL evil=1"],
        "--app-version",
        &["control character"],
    );
    refused(
        &ws,
        &[
            "pack",
            "--dry-run",
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/amd64",
        ],
        "--platform",
        &["twice"],
    );
}

#[test]
fn a_pack_never_takes_the_git_index_lock() {
    let ws = hello("");
    git_commit_all(&ws.root);
    // A tracked file whose stat changed: `git status` would refresh and rewrite the index.
    std::thread::sleep(Duration::from_millis(1100));
    let main_go = ws.root.join("hello/main.go");
    let text_go = std::fs::read_to_string(&main_go).unwrap();
    std::fs::write(&main_go, &text_go).unwrap();
    let index = ws.root.join(".git/index");
    let before = (
        std::fs::read(&index).unwrap(),
        std::fs::metadata(&index).unwrap().modified().unwrap(),
    );
    // Another git command holds the lock for the whole pack.
    let lock = ws.root.join(".git/index.lock");
    std::fs::write(&lock, "held by another git\n").unwrap();
    let output = run_watched(ws.xtask_command(["pack"]));
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "held by another git\n"
    );
    std::fs::remove_file(&lock).unwrap();
    // Without the lock, a pack still leaves the index as it found it.
    let output = run_watched(ws.xtask_command(["pack"]));
    assert!(output.status.success(), "{}", text(&output));
    let after = (
        std::fs::read(&index).unwrap(),
        std::fs::metadata(&index).unwrap().modified().unwrap(),
    );
    assert!(
        before == after,
        "pack rewrote .git/index (git ran without --no-optional-locks)"
    );
    assert!(!lock.exists());
}
