//! `cargo metadata`'s answer, remembered (config/memo.rs): a run where
//! nothing changed does not start cargo, and every change cargo would see is
//! seen. `CARGO` points at a wrapper script that logs each call and runs the
//! real cargo, so "cargo ran" is counted, not timed. Each fixture has its own
//! folder above the workspace, so a `.cargo/config.toml` or a `Cargo.toml`
//! can appear between the workspace and `/` without touching other tests.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use std::process::Command;
use std::time::Duration;

const TABLE: &str = "[workspace.metadata.gopack]\n[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\nplatforms = [\"linux/amd64\"]\n";

/// `<base>/ws`: a workspace with the hello app and a member crate under
/// `crates/member`, whose `target/gopack/cache` exists (as after a pack).
struct Fixture {
    _dir: tempfile::TempDir,
    base: Utf8PathBuf,
    ws: Utf8PathBuf,
    log: Utf8PathBuf,
    cargo: Utf8PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        init();
        let dir = tempfile::Builder::new()
            .prefix("gopack-memo-")
            .tempdir()
            .unwrap();
        let base = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        let ws = base.join("ws");
        copy_dir(&repo_root().join("examples/hello"), &ws.join("hello"));
        write(
            &ws.join("Cargo.toml"),
            &format!("[workspace]\nresolver = \"2\"\nmembers = [\"crates/member\"]\n\n{TABLE}"),
        );
        write(
            &ws.join("crates/member/Cargo.toml"),
            "[package]\nname = \"member\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        );
        write(&ws.join("crates/member/src/lib.rs"), "");
        std::fs::create_dir_all(ws.join("target/gopack/cache")).unwrap();
        let log = base.join("calls");
        let cargo = base.join("bin/cargo");
        let real = std::env::var("CARGO").expect("cargo test sets CARGO");
        write(
            &cargo,
            &format!("#!/bin/sh\necho \"$PWD $*\" >> '{log}'\nexec '{real}' \"$@\"\n"),
        );
        run_ok(Command::new("chmod").arg("+x").arg(cargo.as_str()));
        let fixture = Fixture {
            _dir: dir,
            base,
            ws,
            log,
            cargo,
        };
        settle();
        fixture
    }

    /// `pack hello --dry-run` in `<base>/<dir>` with `env`: the folder of the
    /// image layout it names, its output, and how many times cargo ran.
    fn pack(&self, dir: &str, env: &[(&str, &str)]) -> (Utf8PathBuf, String, usize) {
        self.pack_with(dir, &[], env)
    }

    /// [`Fixture::pack`] with more arguments.
    fn pack_with(
        &self,
        dir: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Utf8PathBuf, String, usize) {
        let before = self.calls();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(["pack", "hello", "--dry-run"])
            .args(args)
            .current_dir(self.base.join(dir))
            .env("CARGO", &self.cargo)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let layout = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("layout"))
            .unwrap_or_else(|| panic!("no layout line in {stdout}"))
            .trim();
        (Utf8PathBuf::from(layout), stdout, self.calls() - before)
    }

    fn calls(&self) -> usize {
        std::fs::read_to_string(&self.log).map_or(0, |t| t.lines().count())
    }

    /// Packs in `dir` until the answer is remembered: cargo runs once, then not.
    fn remembered(&self, dir: &str, env: &[(&str, &str)]) -> Utf8PathBuf {
        let (layout, _, calls) = self.pack(dir, env);
        assert_eq!(calls, 1, "the first run in {dir} asks cargo");
        let (again, _, calls) = self.pack(dir, env);
        assert_eq!(
            calls, 0,
            "a second run in {dir} with nothing changed runs no cargo"
        );
        assert_eq!(again, layout);
        layout
    }

    /// The records in the workspace's cache.
    fn records(&self) -> Vec<Utf8PathBuf> {
        let tools = self.ws.join("target/gopack/cache/tools");
        let mut records: Vec<Utf8PathBuf> = tools
            .read_dir_utf8()
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path().to_path_buf())
                    .filter(|p| !p.file_name().unwrap().starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        records.sort();
        records
    }
}

fn write(path: &Utf8Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Waits out the racy window (100 ms on a file system with ns timestamps):
/// a file changed within it is never trusted by its identity.
fn settle() {
    std::thread::sleep(Duration::from_millis(250));
}

#[test]
fn a_second_run_with_nothing_changed_does_not_run_cargo() {
    let f = Fixture::new();
    // No cache folder yet: cargo runs every time and nothing is created.
    std::fs::remove_dir_all(f.ws.join("target")).unwrap();
    for _ in 0..2 {
        let (layout, _, calls) = f.pack("ws", &[]);
        assert_eq!(calls, 1);
        assert_eq!(layout, f.ws.join("target/gopack/hello/oci"));
    }
    assert!(!f.ws.join("target").exists(), "a memo creates no folder");
    std::fs::create_dir_all(f.ws.join("target/gopack/cache")).unwrap();
    settle();
    let layout = f.remembered("ws", &[]);
    assert_eq!(layout, f.ws.join("target/gopack/hello/oci"));
    assert_eq!(f.records().len(), 1);
    let (_, _, calls) = f.pack("ws", &[]);
    assert_eq!(calls, 0);
}

#[test]
fn an_edit_that_keeps_size_and_mtime_is_seen() {
    let f = Fixture::new();
    f.remembered("ws", &[]);
    let manifest = f.ws.join("Cargo.toml");
    let old = std::fs::metadata(&manifest).unwrap();
    let text = std::fs::read_to_string(&manifest).unwrap();
    let edited = text.replace("linux/amd64", "linux/arm64");
    assert_eq!(edited.len(), text.len());
    std::fs::write(&manifest, edited).unwrap();
    // `touch -d`: the mtime set back exactly; only ctime (and content) moved.
    std::fs::File::options()
        .write(true)
        .open(&manifest)
        .unwrap()
        .set_modified(old.modified().unwrap())
        .unwrap();
    let edited_at = std::time::Instant::now();
    let new = std::fs::metadata(&manifest).unwrap();
    assert_eq!(
        (new.len(), new.modified().unwrap()),
        (old.len(), old.modified().unwrap())
    );
    // Changed just now: cargo runs, and its answer is not remembered yet.
    let (_, out, calls) = f.pack("ws", &[]);
    assert_eq!(calls, 1);
    assert!(out.contains("linux/arm64"), "{out}");
    // Whether that run started within 100 ms of the edit (a loaded machine may be slower).
    let racy = edited_at.elapsed() < Duration::from_millis(90);
    settle();
    let (_, out, calls) = f.pack("ws", &[]);
    assert!(out.contains("linux/arm64"), "{out}");
    if racy {
        assert_eq!(
            calls, 1,
            "an answer read within the racy window is not remembered"
        );
    }
    let (_, out, calls) = f.pack("ws", &[]);
    assert_eq!((calls, out.contains("linux/arm64")), (0, true));
}

#[test]
fn a_cargo_config_moving_the_target_folder_is_seen() {
    let f = Fixture::new();
    f.remembered("ws", &[]);
    for (config, target) in [
        // In the workspace, then in the folder above it.
        ("ws/.cargo/config.toml", "ws/elsewhere"),
        (".cargo/config.toml", "elsewhere"),
        // The old name, which cargo still reads.
        ("ws/.cargo/config", "ws/elsewhere"),
    ] {
        write(
            &f.base.join(config),
            "[build]\ntarget-dir = \"elsewhere\"\n",
        );
        settle();
        for _ in 0..2 {
            let (layout, _, calls) = f.pack("ws", &[]);
            assert_eq!(calls, 1, "{config}: asked every time (no cache there)");
            assert_eq!(layout, f.base.join(target).join("gopack/hello/oci"));
        }
        std::fs::remove_file(f.base.join(config)).unwrap();
        settle();
        // Every file as when the record was written: it holds again (the
        // runs in between kept no record, their target folder had no cache).
        let (layout, _, calls) = f.pack("ws", &[]);
        assert_eq!(calls, 0, "{config} gone");
        assert_eq!(layout, f.ws.join("target/gopack/hello/oci"));
    }
    let (_, _, calls) = f.pack("ws", &[]);
    assert_eq!(calls, 0);
}

#[test]
fn cargo_target_dir_set_and_unset_is_seen() {
    let f = Fixture::new();
    let default = f.remembered("ws", &[]);
    let other = f.base.join("t");
    // Set to a folder without a cache: asked every time, nothing created there.
    for _ in 0..2 {
        let (layout, _, calls) = f.pack("ws", &[("CARGO_TARGET_DIR", other.as_str())]);
        assert_eq!((layout, calls), (other.join("gopack/hello/oci"), 1));
    }
    assert!(!other.exists());
    // Set to the very folder of the record: the variable alone changes the key.
    let same = f.ws.join("target");
    let (layout, _, calls) = f.pack("ws", &[("CARGO_TARGET_DIR", same.as_str())]);
    assert_eq!((layout, calls), (default.clone(), 1));
    // With a cache there, it is remembered there.
    std::fs::create_dir_all(other.join("gopack/cache")).unwrap();
    settle();
    let layout = f.remembered("ws", &[("CARGO_TARGET_DIR", other.as_str())]);
    assert_eq!(layout, other.join("gopack/hello/oci"));
    // Unset again: the record of the run with the variable set is not this one.
    let layout = f.remembered("ws", &[]);
    assert_eq!(layout, default);
    let (layout, _, calls) = f.pack("ws", &[("CARGO_BUILD_TARGET_DIR", other.as_str())]);
    assert_eq!((layout, calls), (other.join("gopack/hello/oci"), 1));
}

#[test]
fn a_member_folder_and_the_root_are_asked_apart() {
    let f = Fixture::new();
    let root = f.remembered("ws", &[]);
    let member = f.remembered("ws/crates/member", &[]);
    assert_eq!(member, root);
    assert_eq!(f.records().len(), 2, "one record per way of asking");
    let (_, _, calls) = f.pack("ws", &[]);
    assert_eq!(calls, 0);
    // --manifest-path is another way of asking.
    let manifest = ["--manifest-path", "ws/Cargo.toml"];
    let (layout, _, calls) = f.pack_with("", &manifest, &[]);
    assert_eq!((layout, calls), (root.clone(), 1));
    let (layout, _, calls) = f.pack_with("", &manifest, &[]);
    assert_eq!((layout, calls), (root.clone(), 0));
    assert_eq!(f.records().len(), 3);
    // An edit of the member's manifest is seen from the root too: cargo reads it.
    write(
        &f.ws.join("crates/member/Cargo.toml"),
        "[package]\nname = \"member\"\nversion = \"0.2.0\"\nedition = \"2021\"\n",
    );
    settle();
    let (_, _, calls) = f.pack("ws", &[]);
    assert_eq!(calls, 1);
    // A broken member manifest fails the run as cargo does.
    write(&f.ws.join("crates/member/Cargo.toml"), "[package\n");
    settle();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["pack", "hello", "--dry-run"])
        .current_dir(&f.ws)
        .env("CARGO", &f.cargo);
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("crates/member/Cargo.toml"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_workspace_appearing_between_the_member_and_the_root_is_seen() {
    let f = Fixture::new();
    let root = f.remembered("ws/crates/member", &[]);
    assert_eq!(root, f.ws.join("target/gopack/hello/oci"));
    // `ws/crates/Cargo.toml`, a workspace of its own that claims the member:
    // cargo now names it the root, with its own table and target folder.
    write(
        &f.ws.join("crates/Cargo.toml"),
        &format!(
            "[workspace]\nresolver = \"2\"\nmembers = [\"member\"]\n\n{}",
            TABLE
                .replace("\"hello\"\nplatforms", "\"../hello\"\nplatforms")
                .replace("linux/amd64", "linux/arm64")
        ),
    );
    settle();
    let (layout, out, calls) = f.pack("ws/crates/member", &[]);
    assert_eq!(calls, 1);
    assert_eq!(layout, f.ws.join("crates/target/gopack/hello/oci"));
    assert!(out.contains("linux/arm64"), "{out}");
    // Gone again: every file is as when the first record was written.
    std::fs::remove_file(f.ws.join("crates/Cargo.toml")).unwrap();
    settle();
    let (layout, out, calls) = f.pack("ws/crates/member", &[]);
    assert_eq!((layout, calls), (root, 0));
    assert!(out.contains("linux/amd64"), "{out}");
    // A `Cargo.toml` in between that is no workspace: cargo reads it, and so
    // does the key; cargo fails on one that is not TOML, and so does gopack.
    write(&f.ws.join("crates/Cargo.toml"), "[package\n");
    settle();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["pack", "hello", "--dry-run"])
        .current_dir(f.ws.join("crates/member"))
        .env("CARGO", &f.cargo)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(f.calls(), 3);
}

#[test]
fn a_damaged_or_foreign_record_is_ignored_then_replaced() {
    let f = Fixture::new();
    f.remembered("ws/crates/member", &[]);
    let other = f.records().pop().unwrap();
    f.remembered("ws", &[]);
    let record = f.records().into_iter().find(|p| *p != other).unwrap();
    let text_of = |path: &Utf8Path| std::fs::read_to_string(path).unwrap();
    let whole = std::fs::read(&record).unwrap();
    let mut flipped = whole.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let fifo = |path: &Utf8Path| {
        let c = std::ffi::CString::new(path.as_str()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    };
    type Damage<'a> = (&'a str, Box<dyn Fn(&Utf8Path) + 'a>);
    let damages: Vec<Damage> = vec![
        (
            "a flipped byte",
            Box::new(|p| std::fs::write(p, &flipped).unwrap()),
        ),
        (
            "cut short",
            Box::new(|p| std::fs::write(p, &whole[..whole.len() / 2]).unwrap()),
        ),
        (
            "another way of asking's record",
            Box::new(|p| {
                std::fs::copy(&other, p).unwrap();
            }),
        ),
        (
            "no seal",
            Box::new(|p| {
                let text = String::from_utf8(whole.clone()).unwrap();
                std::fs::write(p, text.split_once('\n').unwrap().1).unwrap()
            }),
        ),
        (
            "too large",
            Box::new(|p| std::fs::write(p, vec![b'x'; 2 << 20]).unwrap()),
        ),
        ("a FIFO", Box::new(|p| fifo(p))),
        (
            "a symlink",
            Box::new(|p| std::os::unix::fs::symlink(&other, p).unwrap()),
        ),
    ];
    for (what, damage) in damages {
        std::fs::remove_file(&record).unwrap();
        damage(&record);
        let (_, _, calls) = f.pack("ws", &[]);
        assert_eq!(calls, 1, "{what}: ignored");
        let meta = std::fs::symlink_metadata(&record).unwrap();
        assert!(meta.is_file(), "{what}: replaced by a file");
        assert!(text_of(&record).starts_with("gopack-sealed v1 "), "{what}");
        let (_, _, calls) = f.pack("ws", &[]);
        assert_eq!(calls, 0, "{what}: replaced");
    }
}
