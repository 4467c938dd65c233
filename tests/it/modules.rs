//! Real Go modules in real monorepos: vendored modules, go.work, path-scoped
//! versions from git history, a source tree gopack never writes into, and
//! clear errors for bad input. Every fixture is generated here, offline.

use crate::support::*;
use camino::Utf8Path;
use gopack_core::image::ImageMetadata;
use gopack_core::report::{Event, Recorder};
use std::process::{Command, Output};

/// Runs `cargo xtask ARGS --json` in `ws` with extra environment; checks success.
fn xtask_ok(ws: &TestWorkspace, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = ws.xtask_command(args);
    cmd.arg("--json");
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{args:?}\n{}", text(&out));
    out
}

fn events(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The digest `pack` printed for `app`.
fn digest_of(out: &Output, app: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    packed_digests(&stdout)
        .into_iter()
        .find(|(name, _)| name == app)
        .unwrap_or_else(|| panic!("no digest for {app} in {stdout}"))
        .1
}

/// The labels of the (single-platform) image of `app` in its OCI layout.
fn labels(ws: &TestWorkspace, app: &str, digest: &str) -> serde_json::Value {
    let layout = ws.root.join(format!("target/gopack/{app}/oci"));
    let manifest = layout_json(&layout, digest);
    let config = layout_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    config["config"]["Labels"].clone()
}

fn run_binary(path: &Utf8Path) -> String {
    let out = Command::new(path).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn vendored_app_packs_with_goproxy_off_and_leaves_the_tree_alone() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "vendored"
path = "services/vendored"
main = "cmd/hello"
platforms = ["linux/amd64"]
version-variable = "main.version"
"#,
    );
    write_vendored_app(&ws.root.join("services/vendored"));
    git_commit_all(&ws.root);
    let before = git_status(&ws.root);
    // No module proxy, no module cache: everything comes from vendor/.
    let modcache = tempfile::tempdir().unwrap();
    let env = [
        ("GOPROXY", "off"),
        ("GOMODCACHE", modcache.path().to_str().unwrap()),
    ];
    let out = xtask_ok(&ws, &["pack", "vendored"], &env);
    let log = events(&out);
    assert!(!log.contains("deps-download"), "{log}");
    assert!(log.contains("\"event\":\"go-build\""), "{log}");
    let bin = ws
        .root
        .join("target/gopack/vendored/bin/linux_amd64/vendored");
    let head = git(&ws.root, &["rev-parse", "--short=7", "HEAD"]);
    assert_eq!(
        run_binary(&bin),
        format!("HELLO, VENDORED! {}", head.trim())
    );
    assert_eq!(git_status(&ws.root), before, "pack changed the source tree");
    assert!(
        std::fs::read_dir(modcache.path()).unwrap().next().is_none(),
        "go downloaded modules"
    );

    // A change under vendor/ rebuilds (vendor/ is part of the sources), still offline.
    ws.write(
        "services/vendored/vendor/example.org/shout/shout.go",
        "package shout\n\nimport \"strings\"\n\nfunc Loud(s string) string { return strings.ToUpper(s) + \"!!\" }\n",
    );
    let out = xtask_ok(&ws, &["build", "vendored"], &env);
    assert!(events(&out).contains("\"event\":\"go-build\""));
    assert!(run_binary(&bin).starts_with("HELLO, VENDORED!! "));

    // An inconsistent vendor/ is a clear error naming the fix.
    ws.write(
        "services/vendored/vendor/modules.txt",
        "# example.net/greeting v1.3.0\n## explicit; go 1.21\nexample.net/greeting\n",
    );
    let out = ws
        .xtask_command(["build", "vendored"])
        .env("GOPROXY", "off")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("go mod vendor"), "{stderr}");
}

#[test]
fn go_sum_problems_are_errors_and_nothing_is_written() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "depsapp"
path = "depsapp"
platforms = ["linux/amd64"]
"#,
    );
    ws.copy("tests/fixtures/deps-app", "depsapp");
    let go_sum = std::fs::read_to_string(ws.root.join("depsapp/go.sum")).unwrap();
    std::fs::remove_file(ws.root.join("depsapp/go.sum")).unwrap();
    git_commit_all(&ws.root);
    let before = git_status(&ws.root);
    let expect_tidy = |ws: &TestWorkspace| {
        let out = ws.xtask(["build", "depsapp"]);
        assert!(!out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let folder = ws.root.join("depsapp");
        assert!(
            stderr.contains(&format!("run \"go mod tidy\" in {folder}")),
            "{stderr}"
        );
        assert!(cache_entries(&ws.cache_dir(), "bin").is_empty());
    };
    // Missing go.sum: refused before go runs.
    expect_tidy(&ws);
    assert_eq!(git_status(&ws.root), before);
    // Incomplete go.sum (only the go.mod hash): go build refuses, read-only.
    let partial: String = go_sum
        .lines()
        .filter(|l| l.contains("/go.mod "))
        .map(|l| format!("{l}\n"))
        .collect();
    ws.write("depsapp/go.sum", &partial);
    git(&ws.root, &["add", "-A"]);
    git(&ws.root, &["commit", "--quiet", "-m", "partial go.sum"]);
    // Even with GOFLAGS=-mod=mod (set by the tests' environment) nothing is written.
    assert_eq!(std::env::var("GOFLAGS").as_deref(), Ok("-mod=mod"));
    expect_tidy(&ws);
    assert_eq!(git_status(&ws.root), before);
}

const TWO_APPS: &str = r#"
[[workspace.metadata.gopack.apps]]
name = "a"
path = "services/a"
platforms = ["linux/amd64"]
version-variable = "main.version"

[[workspace.metadata.gopack.apps]]
name = "b"
path = "services/b"
platforms = ["linux/amd64"]
version-variable = "main.version"
"#;

#[test]
fn versions_dates_and_dirty_are_scoped_to_each_app() {
    let ws = TestWorkspace::new(TWO_APPS);
    ws.copy("examples/hello", "services/a");
    ws.copy("examples/hello", "services/b");
    ws.write("tools/src/lib.rs", "pub fn tool() {}\n");
    git_commit_all(&ws.root);
    let commit_a = git(&ws.root, &["rev-parse", "HEAD"]).trim().to_string();

    let first = xtask_ok(&ws, &["pack"], &[]);
    let (a1, b1) = (digest_of(&first, "a"), digest_of(&first, "b"));
    let status = git_status(&ws.root);
    assert_eq!(status, "", "pack changed the source tree");

    // A later commit touching only app B, and one touching only a Rust file.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let main_b = ws.root.join("services/b/main.go");
    let text_b = std::fs::read_to_string(&main_b).unwrap();
    std::fs::write(&main_b, text_b.replace("hello from gopack", "hi from b")).unwrap();
    git(&ws.root, &["commit", "--quiet", "-am", "b only"]);
    let commit_b = git(&ws.root, &["rev-parse", "HEAD"]).trim().to_string();
    ws.write("tools/src/lib.rs", "pub fn tool() { println!(); }\n");
    git(&ws.root, &["commit", "--quiet", "-am", "rust only"]);

    let second = xtask_ok(&ws, &["pack"], &[]);
    let log = events(&second);
    let a2 = digest_of(&second, "a");
    eprintln!("app a: {a1} before, {a2} after a commit touching only b");
    assert_eq!(a2, a1, "a commit elsewhere changed app a's image");
    assert!(
        log.contains(r#""event":"binary-cached","app":"a""#),
        "app a was rebuilt: {log}"
    );
    assert_ne!(digest_of(&second, "b"), b1);
    let la = labels(&ws, "a", &a2);
    assert_eq!(la["org.opencontainers.image.revision"], commit_a.as_str());
    assert_eq!(la["org.opencontainers.image.version"], &commit_a[..7]);
    let lb = labels(&ws, "b", &digest_of(&second, "b"));
    assert_eq!(lb["org.opencontainers.image.revision"], commit_b.as_str());
    assert_eq!(lb["org.opencontainers.image.version"], &commit_b[..7]);
    assert_ne!(
        la["org.opencontainers.image.created"],
        lb["org.opencontainers.image.created"]
    );

    // A tag in Go's nested-module convention versions app a only.
    git(&ws.root, &["tag", "services/a/v1.2.0"]);
    let third = xtask_ok(&ws, &["pack"], &[]);
    let la = labels(&ws, "a", &digest_of(&third, "a"));
    assert_eq!(la["org.opencontainers.image.version"], "v1.2.0");
    assert_eq!(digest_of(&third, "b"), digest_of(&second, "b"));
    let bin_a = ws.root.join("target/gopack/a/bin/linux_amd64/a");
    assert!(run_binary(&bin_a).starts_with("hello from gopack v1.2.0"));

    // An uncommitted edit in b makes only b dirty, and the run names the file.
    std::fs::write(&main_b, text_b.replace("hello from gopack", "edited b")).unwrap();
    let fourth = xtask_ok(&ws, &["pack"], &[]);
    assert_eq!(digest_of(&fourth, "a"), digest_of(&third, "a"));
    let lb = labels(&ws, "b", &digest_of(&fourth, "b"));
    assert_eq!(
        lb["org.opencontainers.image.version"],
        format!("{}-dirty", &commit_b[..7]).as_str()
    );
    let log = events(&fourth);
    assert!(
        log.contains("uncommitted changes in services/b/main.go"),
        "{log}"
    );
    assert!(!log.contains("a: version"), "{log}");
    assert_eq!(git_status(&ws.root), " M services/b/main.go\n");
}

#[test]
fn history_from_another_repository_or_none() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "outside"
path = "../outside-repo/app"
"#,
    );
    // The workspace has its own repository; the app's folder is in another one.
    git_commit_all(&ws.root);
    let outside = ws
        .root
        .parent()
        .unwrap()
        .join(format!("outside-repo-{}", ws.root.file_name().unwrap()));
    std::fs::create_dir_all(outside.join("app")).unwrap();
    std::fs::write(
        outside.join("app/go.mod"),
        "module example.com/outside\n\ngo 1.21\n",
    )
    .unwrap();
    std::fs::write(
        outside.join("app/main.go"),
        "package main\n\nfunc main() {}\n",
    )
    .unwrap();
    let _cleanup = RemoveOnDrop(outside.clone());
    ws.set_config(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"outside\"\npath = \"{outside}/app\"\n"
    ));
    let workspace = ws.workspace();
    let app = workspace.all_apps()[0].clone();

    // No repository at all: `dev`, epoch 0, one warning.
    let recorder = Recorder::default();
    let metadata = ImageMetadata::read(&app, &recorder).unwrap();
    assert_eq!((metadata.version.as_str(), metadata.epoch), ("dev", 0));
    let warnings: Vec<Event> = recorder
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Warning { .. }))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");

    // A repository without a commit yet: every file is untracked, and still
    // `dev` (not `dev-dirty`) with the one warning that there is no commit.
    git(&outside, &["init", "--quiet", "--initial-branch=main"]);
    let recorder = Recorder::default();
    let metadata = ImageMetadata::read(&app, &recorder).unwrap();
    assert_eq!((metadata.version.as_str(), metadata.epoch), ("dev", 0));
    let warnings = recorder.events();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        matches!(&warnings[0], Event::Warning { message } if message.contains("no commit")),
        "{warnings:?}"
    );

    // Its own repository, tagged for the module at its root.
    git_commit_all(&outside);
    git(&outside, &["tag", "app/v0.3.0"]);
    let commit = git(&outside, &["rev-parse", "HEAD"]).trim().to_string();
    let recorder = Recorder::default();
    let metadata = ImageMetadata::read(&app, &recorder).unwrap();
    assert_eq!(metadata.version, "v0.3.0");
    assert_eq!(metadata.revision.as_deref(), Some(commit.as_str()));
    assert!(metadata.epoch > 0);
    assert!(recorder.events().is_empty(), "{:?}", recorder.events());

    // The same repository as a submodule of the workspace: its history, not the workspace's.
    run_ok(
        Command::new("git")
            .args([
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "add",
                "--quiet",
            ])
            .arg(outside.as_str())
            .arg("sub")
            .current_dir(&ws.root),
    );
    git(&ws.root, &["commit", "--quiet", "-m", "submodule"]);
    ws.set_config("[[workspace.metadata.gopack.apps]]\nname = \"sub\"\npath = \"sub/app\"\n");
    let app = ws.workspace().all_apps()[0].clone();
    let metadata = ImageMetadata::read(&app, &Recorder::default()).unwrap();
    assert_eq!(metadata.version, "v0.3.0");
    assert_eq!(metadata.revision.as_deref(), Some(commit.as_str()));
}

struct RemoveOnDrop(camino::Utf8PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn go_work_modules_and_embedded_files_are_inputs() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "app"
path = "go/app"
platforms = ["linux/amd64"]
"#,
    );
    ws.write("go/go.work", "go 1.22\n\nuse (\n\t./app\n\t./lib\n)\n");
    ws.write("go/lib/go.mod", "module example.com/lib\n\ngo 1.22\n");
    ws.write(
        "go/lib/lib.go",
        "package lib\n\nfunc Name() string { return \"lib one\" }\n",
    );
    ws.write(
        "go/app/go.mod",
        "module example.com/app\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n",
    );
    ws.write(
        "go/app/main.go",
        "package main\n\nimport (\n\t_ \"embed\"\n\t\"fmt\"\n\n\t\"example.com/lib\"\n)\n\n\
         //go:embed message.txt\nvar message string\n\n\
         func main() { fmt.Println(lib.Name(), message) }\n",
    );
    ws.write("go/app/message.txt", "first");
    git_commit_all(&ws.root);
    let bin = ws.root.join("target/gopack/app/bin/linux_amd64/app");
    let build = |ws: &TestWorkspace| events(&xtask_ok(ws, &["build", "app"], &[]));

    assert!(build(&ws).contains("go-build"));
    assert_eq!(run_binary(&bin), "lib one first");
    assert!(!build(&ws).contains("go-build"), "a no-change build ran go");

    // A change in the used sibling module rebuilds.
    ws.write(
        "go/lib/lib.go",
        "package lib\n\nfunc Name() string { return \"lib two\" }\n",
    );
    assert!(build(&ws).contains("go-build"));
    assert_eq!(run_binary(&bin), "lib two first");
    // So does a change of an embedded file.
    ws.write("go/app/message.txt", "second");
    assert!(build(&ws).contains("go-build"));
    assert_eq!(run_binary(&bin), "lib two second");
    // Nothing but the edits above in the tree (no go.work.sum, no go.sum).
    assert_eq!(
        git_status(&ws.root),
        " M go/app/message.txt\n M go/lib/lib.go\n"
    );

    // go-work = false builds the module alone, as GOWORK=off: then go.mod's
    // requirement of example.com/lib needs a go.sum, which it does not have.
    ws.set_config(
        "[[workspace.metadata.gopack.apps]]\nname = \"app\"\npath = \"go/app\"\n\
         platforms = [\"linux/amd64\"]\ngo-work = false\n",
    );
    let out = ws.xtask(["build", "app"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("go mod tidy"),
        "{}",
        text(&out)
    );
    // With a go.sum the module alone is a real GOWORK=off build: go cannot find lib.
    ws.write("go/app/go.sum", "");
    let out = ws.xtask(["build", "app"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("example.com/lib"),
        "{}",
        text(&out)
    );
}

#[test]
fn bad_inputs_are_refused_before_anything_is_cached() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "cgo"
path = "cgo"
platforms = ["linux/amd64"]

[[workspace.metadata.gopack.apps]]
name = "library"
path = "library"
main = "greet"
platforms = ["linux/amd64"]
"#,
    );
    ws.write("cgo/go.mod", "module example.com/cgo\n\ngo 1.21\n");
    ws.write(
        "cgo/main.go",
        "package main\n\n// int answer(void) { return 42; }\nimport \"C\"\n\nimport \"fmt\"\n\n\
         func main() { fmt.Println(C.answer()) }\n",
    );
    ws.write("library/go.mod", "module example.com/library\n\ngo 1.21\n");
    ws.write(
        "library/greet/greet.go",
        "package greet\n\nfunc Hello() string { return \"hi\" }\n",
    );
    git_commit_all(&ws.root);
    ws.expect_error(
        &["build", "cgo"],
        &[],
        &["needs cgo", "`cgo` key", "cgo/main.go"],
    );
    ws.expect_error(
        &["pack", "library"],
        &[],
        &["is not `package main`", "`main`"],
    );
    ws.expect_error(
        &["build", "cgo"],
        &[("GOPACK_GO", "/bin/true")],
        &["not Go's", "GOPACK_GO"],
    );
    let old_go = ws.root.join("old-go");
    std::fs::write(
        &old_go,
        "#!/bin/sh\necho 'go version go1.19.13 linux/amd64'\n",
    )
    .unwrap();
    run_ok(Command::new("chmod").arg("755").arg(old_go.as_str()));
    ws.expect_error(
        &["build", "cgo"],
        &[("GOPACK_GO", old_go.as_str())],
        &["go 1.21 or newer", "go1.19.13"],
    );
    std::fs::remove_file(&old_go).unwrap();
    assert!(cache_entries(&ws.cache_dir(), "bin").is_empty());
    assert!(!ws.root.join("target/gopack/library/oci").exists());
    assert_eq!(git_status(&ws.root), "");
}
