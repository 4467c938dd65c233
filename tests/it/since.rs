//! `--since REF`: which apps a change selects, and why, against real git
//! histories of a small monorepo (modules with a shared local `replace`
//! target, a go.work with two modules, `files` from a shared folder).

use crate::support::{git, git_commit_all, text, TestWorkspace};
use std::collections::BTreeMap;

const CONFIG: &str = r#"files-root = "."
[[workspace.metadata.gopack.apps]]
name = "api"
path = "services/api"
labels = { team = "a" }
[[workspace.metadata.gopack.apps]]
name = "web"
path = "services/web"
files = [{ src = "../../assets/banner.txt", dst = "/srv/banner.txt" }]
[[workspace.metadata.gopack.apps]]
name = "worker"
path = "services/worker"
[[workspace.metadata.gopack.apps]]
name = "gw1"
path = "work/a"
[[workspace.metadata.gopack.apps]]
name = "gw2"
path = "work/b"
"#;

fn main_go(word: &str) -> String {
    format!("package main\n\nfunc main() {{ println(\"{word}\") }}\n")
}

/// The monorepo, committed once.
fn monorepo() -> TestWorkspace {
    let ws = TestWorkspace::new(CONFIG);
    for app in ["api", "web"] {
        ws.write(
            &format!("services/{app}/go.mod"),
            &format!(
                "module example.com/{app}\n\ngo 1.22\n\nrequire example.com/shared v0.0.0\n\nreplace example.com/shared => ../../libs/shared\n"
            ),
        );
        ws.write(&format!("services/{app}/main.go"), &main_go(app));
    }
    ws.write("services/api/moved.go", "package main\n");
    ws.write(
        "services/worker/go.mod",
        "module example.com/worker\n\ngo 1.22\n",
    );
    ws.write("services/worker/main.go", &main_go("worker"));
    ws.write(
        "libs/shared/go.mod",
        "module example.com/shared\n\ngo 1.22\n",
    );
    ws.write(
        "libs/shared/shared.go",
        "package shared\n\nconst Name = \"x\"\n",
    );
    ws.write("assets/banner.txt", "hello\n");
    ws.write("work/go.work", "go 1.22\n\nuse (\n\t./a\n\t./b\n)\n");
    for m in ["a", "b"] {
        ws.write(
            &format!("work/{m}/go.mod"),
            &format!("module example.com/{m}\n\ngo 1.22\n"),
        );
        ws.write(&format!("work/{m}/main.go"), &main_go(m));
    }
    ws.write("README.md", "a monorepo\n");
    git_commit_all(&ws.root);
    ws
}

fn commit(ws: &TestWorkspace, message: &str) {
    git(&ws.root, &["add", "-A"]);
    git(&ws.root, &["commit", "--quiet", "-m", message]);
}

/// `pack --since REF --dry-run --json`: app → reasons.
fn selected(ws: &TestWorkspace, reference: &str) -> BTreeMap<String, Vec<String>> {
    let out = ws.xtask(["pack", "--since", reference, "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let plan: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON plan per line: {e}: {line}"));
            let reasons = plan["reasons"]
                .as_array()
                .unwrap_or_else(|| panic!("no reasons: {line}"))
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect::<Vec<_>>();
            assert!(!reasons.is_empty(), "{line}");
            (plan["app"].as_str().unwrap().to_string(), reasons)
        })
        .collect()
}

fn names(selection: &BTreeMap<String, Vec<String>>) -> Vec<&str> {
    selection.keys().map(String::as_str).collect()
}

#[test]
fn a_change_in_an_app_folder_selects_only_that_app() {
    let ws = monorepo();
    ws.write("services/worker/main.go", &main_go("worker 2"));
    let got = selected(&ws, "HEAD");
    assert_eq!(names(&got), ["worker"], "{got:?}");
    assert!(
        got["worker"][0].contains("services/worker/main.go modified"),
        "{got:?}"
    );
    // Committed, it is still a change since the commit before.
    commit(&ws, "worker 2");
    assert_eq!(names(&selected(&ws, "HEAD~1")), ["worker"]);
    assert!(selected(&ws, "HEAD").is_empty());
}

#[test]
fn a_shared_local_replace_target_selects_every_app_that_replaces_it() {
    let ws = monorepo();
    ws.write(
        "libs/shared/shared.go",
        "package shared\n\nconst Name = \"y\"\n",
    );
    commit(&ws, "shared");
    let got = selected(&ws, "HEAD~1");
    assert_eq!(names(&got), ["api", "web"], "{got:?}");
    assert!(
        got["api"]
            .iter()
            .any(|r| r.contains("local replace target")),
        "{got:?}"
    );
}

#[test]
fn a_go_work_change_selects_the_apps_built_inside_it() {
    let ws = monorepo();
    ws.write(
        "work/go.work",
        "go 1.22\n\nuse (\n\t./a\n\t./b\n)\n\n// toolchain notes\n",
    );
    let got = selected(&ws, "HEAD");
    assert_eq!(names(&got), ["gw1", "gw2"], "{got:?}");
    assert!(got["gw1"][0].contains("the go.work"), "{got:?}");
    // A module the go.work uses reaches the other app too.
    git(&ws.root, &["checkout", "--quiet", "--", "work/go.work"]);
    ws.write("work/b/main.go", &main_go("b 2"));
    assert_eq!(names(&selected(&ws, "HEAD")), ["gw1", "gw2"]);
}

#[test]
fn one_apps_table_changed_selects_only_that_app_and_text_alone_selects_none() {
    let ws = monorepo();
    // Comments and a default written out change no parsed table.
    let same = CONFIG.replace(
        "name = \"worker\"",
        "# the queue worker\nname = \"worker\"\ncerts = true",
    );
    ws.set_config(&same);
    assert!(selected(&ws, "HEAD").is_empty());
    ws.set_config(&same.replace("team = \"a\"", "team = \"b\""));
    let got = selected(&ws, "HEAD");
    assert_eq!(names(&got), ["api"], "{got:?}");
    assert_eq!(got["api"], ["its table changed: labels"]);
}

#[test]
fn a_workspace_wide_key_selects_the_apps_that_use_it() {
    let ws = monorepo();
    // Where the cache lives changes no image.
    ws.set_config(&format!("cache-dir = \"elsewhere\"\n{CONFIG}"));
    assert!(selected(&ws, "HEAD").is_empty());
    ws.set_config(&format!("registry = \"ghcr.io/acme\"\n{CONFIG}"));
    let got = selected(&ws, "HEAD");
    assert_eq!(names(&got), ["api", "gw1", "gw2", "web", "worker"]);
    assert!(got["gw1"][0].contains("registry"), "{got:?}");
}

#[test]
fn a_files_source_selects_the_app_that_ships_it() {
    let ws = monorepo();
    ws.write("assets/banner.txt", "hello again\n");
    let got = selected(&ws, "HEAD");
    assert_eq!(names(&got), ["web"], "{got:?}");
    assert!(got["web"][0].contains("`files` source"), "{got:?}");
    // A file nobody builds from selects nothing.
    git(&ws.root, &["checkout", "--quiet", "--", "assets"]);
    ws.write("README.md", "still a monorepo\n");
    assert!(selected(&ws, "HEAD").is_empty());
}

#[test]
fn an_untracked_file_in_an_app_folder_selects_it() {
    let ws = monorepo();
    ws.write("services/worker/extra.go", "package main\n");
    let got = selected(&ws, "HEAD");
    assert_eq!(names(&got), ["worker"], "{got:?}");
    assert!(
        got["worker"][0].contains("services/worker/extra.go untracked"),
        "{got:?}"
    );
}

#[test]
fn a_rename_across_apps_selects_both() {
    let ws = monorepo();
    git(
        &ws.root,
        &["mv", "services/api/moved.go", "services/worker/moved.go"],
    );
    commit(&ws, "move");
    let got = selected(&ws, "HEAD~1");
    assert_eq!(names(&got), ["api", "worker"], "{got:?}");
    assert!(got["api"][0].contains("deleted"), "{got:?}");
    assert!(got["worker"][0].contains("added"), "{got:?}");
}

#[test]
fn nothing_changed_prints_nothing_and_succeeds_for_every_command() {
    let ws = monorepo();
    for args in [
        &["pack", "--since", "HEAD", "--dry-run", "--json"][..],
        &["pack", "--since", "HEAD", "--json"],
        &["build", "--since", "HEAD"],
        &["verify", "--since", "HEAD"],
    ] {
        let out = ws.xtask(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_revision_missing_from_a_shallow_clone_is_an_error_that_says_how_to_fetch_it() {
    let ws = monorepo();
    ws.write("README.md", "second\n");
    commit(&ws, "second");
    let clone = ws.root.join("target/shallow");
    git(
        &ws.root,
        &[
            "clone",
            "--quiet",
            "--depth",
            "1",
            &format!("file://{}", ws.root),
            clone.as_str(),
        ],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["pack", "--since", "HEAD~1", "--dry-run"])
        .current_dir(&clone)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(err.contains("shallow clone"), "{err}");
    assert!(err.contains("git fetch --deepen"), "{err}");
    assert!(err.contains("fetch-depth: 0"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn in_a_workspace_of_200_apps_one_changed_app_is_the_one_selected() {
    let mut config = String::new();
    let ws = TestWorkspace::new("");
    for n in 0..200 {
        let name = format!("app{n:03}");
        config.push_str(&format!(
            "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"services/{name}\"\n"
        ));
        ws.write(
            &format!("services/{name}/go.mod"),
            &format!("module example.com/{name}\n\ngo 1.22\n"),
        );
        ws.write(&format!("services/{name}/main.go"), &main_go(&name));
    }
    ws.set_config(&config);
    git_commit_all(&ws.root);
    ws.write("services/app137/main.go", &main_go("changed"));
    // Timed in `cargo xtask bench`, not here.
    let got = selected(&ws, "HEAD");
    assert_eq!(names(&got), ["app137"], "{got:?}");
}
