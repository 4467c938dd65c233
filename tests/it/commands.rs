//! The small commands: `clean` (outputs, cache and deps images, with a dry
//! run) and `run` (pack, load, `docker run --rm`, exit code passed through).

use crate::support::*;
use camino::Utf8Path;
use std::process::Command;

fn two_apps() -> TestWorkspace {
    let ws = TestWorkspace::new(
        "[[workspace.metadata.gopack.apps]]\nname = \"one\"\npath = \"hello\"\nplatforms = [\"linux/amd64\"]\n\n\
         [[workspace.metadata.gopack.apps]]\nname = \"two\"\npath = \"hello\"\nplatforms = [\"linux/amd64\"]\n",
    );
    ws.copy("examples/hello", "hello");
    ws
}

/// Every file under `dir`, with its size.
fn files(dir: &Utf8Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in d.read_dir_utf8().unwrap() {
            let entry = entry.unwrap();
            let meta = entry.path().symlink_metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path().to_path_buf());
            } else {
                out.push((entry.path().to_string(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn clean_dry_run_lists_and_removes_nothing_and_clean_app_removes_only_its_outputs() {
    let ws = two_apps();
    // The second run, with the cache there, remembers cargo metadata's
    // answer (cache/tools/); the dry runs below then write nothing.
    for _ in 0..2 {
        let out = ws.xtask(["build"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let gopack = ws.root.join("target/gopack");
    let before = files(&gopack);
    assert!(
        before.iter().any(|(p, _)| p.contains("/one/bin/")),
        "{before:?}"
    );

    let out = ws.xtask(["clean", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    for folder in ["one", "two", "cache"] {
        let line = format!("would remove {} (", gopack.join(folder));
        assert!(listed.contains(&line), "{folder} not listed:\n{listed}");
    }
    assert!(listed.contains(" MiB"), "sizes are shown:\n{listed}");
    assert_eq!(files(&gopack), before, "--dry-run removed something");

    // With --json: one object per item on stdout, nothing removed.
    let out = ws.xtask(["clean", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert_eq!(line["kind"], "folder", "{line}");
        assert_eq!(line["removed"], false, "{line}");
        assert!(line["size"].as_u64().is_some_and(|size| size > 0), "{line}");
    }
    assert_eq!(files(&gopack), before, "--dry-run --json removed something");

    let out = ws.xtask(["clean", "one"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("removed {}", gopack.join("one"))),
        "{stdout}"
    );
    assert!(
        !stdout.contains("cache"),
        "a named app leaves the shared cache: {stdout}"
    );
    assert!(!gopack.join("one").exists());
    let left = files(&gopack);
    let expected: Vec<_> = before
        .iter()
        .filter(|(p, _)| !p.starts_with(gopack.join("one/").as_str()))
        .cloned()
        .collect();
    assert_eq!(left, expected, "clean one removed more than one's outputs");

    let out = ws.xtask(["clean"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!gopack.join("two").exists() && !gopack.join("cache").exists());
    assert!(ws.root.join("hello/main.go").is_file());
    let out = ws.xtask(["clean"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to clean"));
}

#[test]
fn clean_refuses_a_cache_dir_that_is_not_only_the_cache() {
    let ws = two_apps();
    let home = tempfile::tempdir().unwrap();
    let home = Utf8Path::from_path(home.path()).unwrap();
    std::fs::write(home.join("notes.txt"), "mine").unwrap();
    let foreign = ws.root.join("shared");
    std::fs::create_dir_all(foreign.join("bin")).unwrap();
    std::fs::write(foreign.join("report.pdf"), "mine").unwrap();
    std::fs::create_dir_all(ws.root.join("target/debug")).unwrap();
    for (cache_dir, env_home, says) in [
        (ws.root.as_str(), None, "the workspace or a folder above it"),
        ("/", None, "root folder"),
        (home.as_str(), Some(home.as_str()), "home folder"),
        (foreign.as_str(), None, "`report.pdf`"),
        ("target", None, "not only the cache"),
    ] {
        let mut cmd = ws.xtask_command(["clean", "--dry-run"]);
        cmd.env("GOPACK_CACHE_DIR", cache_dir);
        if let Some(h) = env_home {
            cmd.env("HOME", h);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cache_dir}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{cache_dir}: {stderr}");
        assert!(stderr.contains("cache-dir"), "{cache_dir}: {stderr}");
    }
    assert!(home.join("notes.txt").is_file() && foreign.join("report.pdf").is_file());
}

fn docker_images(reference: &str) -> Vec<String> {
    let out = run_ok(Command::new("docker").args([
        "image",
        "ls",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
        reference,
    ]));
    out.lines().map(str::to_string).collect()
}

#[test]
fn run_prints_the_output_and_passes_the_exit_code_through() {
    require_tool("docker", "docker.io");
    let name = format!("gopack-test-run-{}", std::process::id());
    let ws = TestWorkspace::new(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"app\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\n"
    ));
    ws.copy("tests/fixtures/exit-code", "app");
    let out = ws.xtask(["run", &name, "--", "a b", "--flag"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(stdout, "args: a b --flag\nuid=10001\n", "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{name}:1.0.0")), "{stderr}");
    assert!(
        !stderr.contains("Loaded image:"),
        "docker load's lines are summarised: {stderr}"
    );
    let first = docker_images(&format!("{name}:1.0.0"));
    assert_eq!(first.len(), 1, "{first:?}");
    let old_id = first[0].split(' ').nth(1).unwrap().to_string();

    // A changed app: the tags move, and the old image, left with none, is named.
    let main = ws.root.join("app/main.go");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, source.replace("os.Exit(3)", "os.Exit(4)")).unwrap();
    let out = ws.xtask(["run", &name]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let short = &old_id.trim_start_matches("sha256:")[..12];
    assert!(
        stderr.contains("dangling") && stderr.contains(&format!("docker rmi {short}")),
        "{stderr}"
    );

    let _ = Command::new("docker").args(["rmi", &old_id]).output();
    for image in docker_images(&name) {
        let reference = image.split(' ').next().unwrap().to_string();
        let _ = Command::new("docker").args(["rmi", &reference]).output();
    }
}

#[test]
fn clean_removes_the_apps_deps_images_and_no_others() {
    require_tool("docker", "docker.io");
    let name = format!("gopack-test-clean-{}", std::process::id());
    let ws = TestWorkspace::new(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"hello\"\n"
    ));
    ws.copy("examples/hello", "hello");
    // Deps images as the docker engine tags them, and a neighbour that is not this app's.
    let empty = ws.root.join("empty.tar");
    run_ok(Command::new("tar").args(["-cf", empty.as_str(), "-T", "/dev/null"]));
    let ours = [
        format!("gopack-deps/{name}:k1"),
        format!("gopack-deps/{name}:k2"),
    ];
    let neighbour = format!("gopack-deps/{name}-other:k1");
    for tag in ours.iter().chain([&neighbour]) {
        run_ok(Command::new("docker").args(["import", empty.as_str(), tag]));
    }

    let out = ws.xtask(["clean", &name, "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for tag in &ours {
        assert!(
            stdout.contains(&format!("would remove docker image {tag} (")),
            "{stdout}"
        );
    }
    assert!(!stdout.contains(&neighbour), "{stdout}");
    assert_eq!(docker_images(&format!("gopack-deps/{name}")).len(), 2);

    let out = ws.xtask(["clean", &name]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(docker_images(&format!("gopack-deps/{name}")).is_empty());
    assert_eq!(
        docker_images(&neighbour).len(),
        1,
        "another repository was removed"
    );
    let _ = Command::new("docker").args(["rmi", &neighbour]).output();
}
