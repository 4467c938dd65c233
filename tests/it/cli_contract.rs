//! The CLI's contract with CI and with host xtasks: with `--json`, stderr is
//! only JSON events (errors too) and stdout one JSON result per app, as
//! docs/ci.md documents; without it, a person reads what was made and the
//! next command; a host CLI mounts gopack's commands without collisions.

use crate::support::*;
use clap::{CommandFactory, Parser};
use serde_json::Value;
use std::process::Output;

const APPS: &str = r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
platforms = ["linux/amd64", "linux/arm64"]
version-variable = "main.version"

[[workspace.metadata.gopack.apps]]
name = "tiny"
path = "hello"
platforms = ["linux/amd64"]
verify = { max-size = 1024 }
"#;

/// Every stderr line as JSON; a line that is not JSON fails the test.
fn stderr_events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| {
                panic!("stderr line is not JSON ({e}): {line:?}\n{}", text(out))
            })
        })
        .inspect(|event| assert!(event["event"].is_string(), "{event}"))
        .collect()
}

/// Every stdout line as JSON.
fn stdout_results(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| {
                panic!("stdout line is not JSON ({e}): {line:?}\n{}", text(out))
            })
        })
        .collect()
}

/// The one error event of a failed run, checked for `code`, `message` and `help`.
fn error_event(out: &Output, code: &str) -> Value {
    let errors: Vec<Value> = stderr_events(out)
        .into_iter()
        .filter(|e| e["event"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{}", text(out));
    let error = errors[0].clone();
    assert_eq!(error["code"], code, "{}", text(out));
    for key in ["message", "help"] {
        let value = error[key].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "{key} of {error}");
    }
    error
}

fn is_digest(value: &Value) -> bool {
    value.as_str().is_some_and(|d| {
        d.strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// The keys of an object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

#[test]
fn json_results_and_events_follow_the_documented_schema() {
    let ws = TestWorkspace::new(APPS);
    ws.copy("examples/hello", "hello");
    git_commit_all(&ws.root);
    // An uncommitted change: the version is `-dirty`, and the result says why.
    let main = ws.root.join("hello/main.go");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{source}\n// changed\n")).unwrap();

    let out = ws.xtask(["build", "hello", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let events = stderr_events(&out);
    // hello's go.mod requires no module: nothing is downloaded, and no
    // event (or `Downloading` line) says otherwise.
    assert!(
        !events.iter().any(|e| e["event"] == "deps-download"),
        "{}",
        text(&out)
    );
    // go's "no module dependencies to download" is noise, and not shown.
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "output" && e["line"].as_str().unwrap().contains("no module")),
        "{}",
        text(&out)
    );
    let builds = stdout_results(&out);
    assert_eq!(builds.len(), 1, "{}", text(&out));
    let build = &builds[0];
    assert_eq!(keys(build), ["binaries", "name", "version"]);
    assert_eq!(build["name"], "hello");
    let version = build["version"].as_str().unwrap().to_string();
    assert!(version.ends_with("-dirty"), "{build}");
    let binaries = build["binaries"].as_array().unwrap();
    assert_eq!(binaries.len(), 2, "{build}");
    for binary in binaries {
        assert_eq!(keys(binary), ["path", "platform", "sha256", "size"]);
        assert!(is_digest(&binary["sha256"]), "{binary}");
        let path = binary["path"].as_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(binary["size"].as_u64(), Some(bytes.len() as u64));
        use sha2::Digest;
        let hex: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(binary["sha256"], format!("sha256:{hex}"));
    }

    let registry = Registry::start();
    let out = ws.xtask([
        "pack",
        "hello",
        "--json",
        "--push",
        "--registry",
        &format!("{}/ci", registry.address),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let events = stderr_events(&out);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("main.go")),
        "the -dirty warning names the file: {}",
        text(&out)
    );
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "layer")
            .all(|e| is_digest(&e["digest"])),
        "layer events carry full digests: {}",
        text(&out)
    );
    let packs = stdout_results(&out);
    assert_eq!(packs.len(), 1, "{}", text(&out));
    let pack = &packs[0];
    assert_eq!(
        keys(pack),
        [
            "archive",
            "digest",
            "dirty",
            "engine",
            "image_id",
            "layout",
            "loaded",
            "name",
            "platforms",
            "pushed",
            "tags",
            "verify",
            "version"
        ]
    );
    assert_eq!(pack["verify"], "passed");
    assert_eq!(pack["name"], "hello");
    assert_eq!(pack["engine"], "oci");
    assert_eq!(pack["version"], version.as_str());
    assert!(pack["image_id"].is_null());
    assert!(is_digest(&pack["digest"]), "{pack}");
    let tags = strings(&pack["tags"]);
    assert!(tags.contains(&"latest".to_string()), "{pack}");
    assert_eq!(strings(&pack["dirty"]), ["hello/main.go"]);
    assert!(strings(&pack["loaded"]).is_empty());
    assert_eq!(
        strings(&pack["pushed"]),
        [format!(
            "{}/ci/hello@{}",
            registry.address,
            pack["digest"].as_str().unwrap()
        )]
    );
    let platforms = pack["platforms"].as_array().unwrap();
    let names: Vec<&str> = platforms
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"]);
    assert!(platforms.iter().all(|p| is_digest(&p["digest"])), "{pack}");
    let layout = camino::Utf8PathBuf::from(pack["layout"].as_str().unwrap());
    let archive = pack["archive"].as_str().unwrap();
    assert!(std::path::Path::new(archive).is_file(), "{pack}");
    // The digests are the layout's: the index and its platform manifests.
    let index = layout_json(&layout, pack["digest"].as_str().unwrap());
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    for platform in platforms {
        assert!(listed.contains(&platform["digest"].as_str().unwrap()));
    }

    let out = ws.xtask(["verify", "hello", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    stderr_events(&out);
    let reports = stdout_results(&out);
    assert_eq!(reports.len(), 1, "{}", text(&out));
    assert_eq!(reports[0]["passed"], true);
    assert_eq!(reports[0]["app"], "hello");
    assert!(reports[0]["platforms"].as_array().unwrap().len() == 2);

    // Without --json a person reads the version, the full digest (not a
    // pullable-looking reference), which files made it dirty, and what to do next.
    let out = ws.xtask(["pack", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap();
    assert_eq!(
        first,
        format!("hello {version}  {}", pack["digest"].as_str().unwrap()),
        "{stdout}"
    );
    assert!(!stdout.contains("hello@"), "{stdout}");
    assert!(stdout.contains("hello/main.go"), "{stdout}");
    assert!(stdout.contains(&tags.join(", ")), "{stdout}");
    assert_eq!(
        stdout.lines().last().unwrap().trim(),
        format!("next      docker load -i {archive}"),
        "{stdout}"
    );
}

#[test]
fn with_json_every_error_is_a_json_event() {
    let ws = TestWorkspace::new(APPS);
    ws.copy("examples/hello", "hello");

    // A failed verify: pack stops before publishing, with the report in the event.
    let out = ws.xtask(["pack", "tiny", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let error = error_event(&out, "checks-failed");
    assert!(
        error["message"].as_str().unwrap().contains("image.size"),
        "{error}"
    );
    assert_eq!(error["report"]["passed"], false, "{error}");
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let out = ws.xtask(["verify", "tiny", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    error_event(&out, "checks-failed");
    assert_eq!(stdout_results(&out)[0]["passed"], false);

    // An unknown app, with the nearest name.
    let out = ws.xtask(["pack", "helo", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let error = error_event(&out, "unknown-app");
    assert!(
        error["help"].as_str().unwrap().contains("`hello`"),
        "{error}"
    );

    // A missing tool.
    let out = ws
        .xtask_command(["build", "hello", "--json"])
        .env("GOPACK_GO", "/nonexistent/go")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let error = error_event(&out, "tool-missing");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("GOPACK_GO=/nonexistent/go"),
        "{error}"
    );

    // A command line clap refuses.
    let out = ws.xtask(["pack", "--json", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    error_event(&out, "usage");

    // A config error.
    ws.set_config(&format!("{APPS}\nno-such-key = 1\n"));
    let out = ws.xtask(["build", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let error = error_event(&out, "config");
    assert!(
        error["message"].as_str().unwrap().contains("no-such-key"),
        "{error}"
    );
}

/// A host xtask with its own `--quiet`, `--json` and subcommands, mounting gopack's.
#[derive(Parser, Debug)]
#[command(name = "host", version = gopack_core::VERSION)]
struct Host {
    /// The host's own quiet flag.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// The host's own JSON flag.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: HostCommand,
}

#[derive(clap::Subcommand, Debug)]
enum HostCommand {
    #[command(flatten)]
    Gopack(gopack_core::cli::Command),
    /// The host's own subcommand.
    Lint {
        #[arg(long)]
        fix: bool,
    },
}

#[test]
fn a_host_cli_mounts_gopack_without_collisions() {
    Host::command().debug_assert();
    let host = Host::try_parse_from(["host", "--quiet", "pack", "hello", "--json"]).unwrap();
    assert!(host.quiet);
    let HostCommand::Gopack(command) = &host.command else {
        panic!("{host:?}");
    };
    assert!(matches!(command, gopack_core::cli::Command::Pack(_)));
    let host = Host::try_parse_from(["host", "lint", "--fix", "--json"]).unwrap();
    assert!(host.json);
    assert!(matches!(host.command, HostCommand::Lint { fix: true }));

    // The host keeps its own output: events go to its reporter.
    let ws = TestWorkspace::new(APPS);
    ws.copy("examples/hello", "hello");
    let manifest = ws.root.join("Cargo.toml");
    let host = Host::try_parse_from([
        "host",
        "build",
        "tiny",
        "--manifest-path",
        manifest.as_str(),
    ])
    .unwrap();
    let HostCommand::Gopack(command) = host.command else {
        panic!()
    };
    let recorder = gopack_core::report::Recorder::default();
    let code = command.run_with(&recorder).unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(
        recorder.events().iter().any(|e| matches!(
            e,
            gopack_core::report::Event::BinaryReady { app, .. } if app == "tiny"
        )),
        "{:?}",
        recorder.events()
    );

    // `cargo xtask --version` says gopack's version.
    let out = ws.xtask(["--version"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("cargo xtask {}", gopack_core::VERSION)
    );
}

/// Removes the test's images from the shared docker engine, also when the test fails.
struct Images {
    docker: camino::Utf8PathBuf,
    references: Vec<String>,
}

impl Drop for Images {
    fn drop(&mut self) {
        for reference in &self.references {
            let _ = std::process::Command::new(&self.docker)
                .args(["rmi", "--force", reference])
                .output();
        }
    }
}

#[test]
fn a_loaded_image_ends_with_the_docker_run_command() {
    let name = format!("cli-contract-{}", std::process::id());
    let _images = Images {
        docker: docker_engine(),
        references: vec![format!("{name}:1.4.0"), format!("{name}:latest")],
    };
    let ws = TestWorkspace::new(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"hello\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.4.0\"\n"
    ));
    ws.copy("examples/hello", "hello");
    let out = ws.xtask(["pack", "--load", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    stderr_events(&out);
    let result = &stdout_results(&out)[0];
    assert_eq!(
        strings(&result["loaded"]),
        [format!("{name}:1.4.0"), format!("{name}:latest")]
    );
    let out = ws.xtask(["pack", "--load"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last().unwrap().trim(),
        format!("next      docker run --rm {name}:1.4.0"),
        "{stdout}"
    );
}

/// Every key docs/ci.md lists is there, empty or not: a plan's `warnings`,
/// `layout`, `archive`; a check's `details` and `remedy`. A plan says
/// `verify` with words as results do.
#[test]
fn documented_keys_are_always_present() {
    let ws = TestWorkspace::new(APPS);
    ws.copy("examples/hello", "hello");
    git_commit_all(&ws.root);
    let out = ws.xtask(["pack", "hello", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    // One line per app (docs/ci.md).
    let plan = &stdout_results(&out)[0];
    assert_eq!(plan["verify"], "planned", "{plan}");
    assert_eq!(plan["warnings"], serde_json::json!([]), "{plan}");
    assert!(
        plan["layout"].is_string() && plan["archive"].is_string(),
        "{plan}"
    );
    let out = ws.xtask(["pack", "hello", "--dry-run", "--json", "--no-verify"]);
    assert_eq!(stdout_results(&out)[0]["verify"], "skipped");

    let out = ws.xtask(["pack", "tiny", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let error = error_event(&out, "checks-failed");
    let report = &error["report"];
    let mut checks: Vec<&Value> = report["checks"].as_array().unwrap().iter().collect();
    for platform in report["platforms"].as_array().unwrap() {
        checks.extend(platform["checks"].as_array().unwrap());
    }
    assert!(checks.len() > 10, "{report}");
    for check in &checks {
        assert!(check["details"].is_array(), "no details: {check}");
        assert!(
            check["remedy"].is_string() || check["remedy"].is_null(),
            "{check}"
        );
        assert!(check.get("remedy").is_some(), "no remedy key: {check}");
    }
    // The size budget's remedy does not suggest what gopack already does.
    let size = checks.iter().find(|c| c["id"] == "image.size").unwrap();
    assert_eq!(size["status"], "fail", "{size}");
    assert!(
        !size["remedy"].as_str().unwrap().contains("-ldflags"),
        "{size}"
    );
}

/// `dockerfile --check` on a stale file: exit 1 with its own code and the diff.
#[test]
fn a_stale_dockerfile_is_out_of_date_not_checks_failed() {
    let ws = TestWorkspace::new(APPS);
    ws.copy("examples/hello", "hello");
    ws.write("Dockerfile.hello", "FROM scratch\n");
    let out = ws.xtask([
        "dockerfile",
        "hello",
        "--check",
        "Dockerfile.hello",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let error = error_event(&out, "out-of-date");
    assert!(error.get("report").is_none(), "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("- committed, + generated"),
        "{error}"
    );
}

/// `doctor --json`: one JSON line per tool on stdout, nothing else.
#[test]
fn doctor_json_lists_each_tool() {
    let ws = TestWorkspace::new(APPS);
    let out = ws.xtask(["doctor", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));
    let tools = stdout_results(&out);
    for tool in &tools {
        assert_eq!(keys(tool), ["detail", "ok", "required", "tool"], "{tool}");
    }
    let go = tools.iter().find(|t| t["tool"] == "go").expect("go listed");
    assert_eq!(go["ok"], true, "{go}");
    assert_eq!(go["required"], true, "{go}");
    assert!(go["detail"].as_str().unwrap().starts_with("go1."), "{go}");
    let out = ws
        .xtask_command(["doctor", "--json"])
        .env("GOPACK_GO", "/nonexistent/go")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let go = stdout_results(&out)
        .into_iter()
        .find(|t| t["tool"] == "go")
        .unwrap();
    assert_eq!(go["ok"], false, "{go}");
}

/// A `go` that takes 12 s to build: a log gets a `still building` line, and
/// `--json` a `progress` event, while it runs.
#[test]
fn a_long_go_build_says_it_is_alive() {
    let ws = TestWorkspace::new(APPS);
    ws.copy("examples/hello", "hello");
    let go = go_bin_dir().join("go");
    let slow = ws.root.join("slow-go");
    std::fs::write(
        &slow,
        format!("#!/bin/sh\nif [ \"$1\" = build ]; then sleep 12; fi\nexec {go} \"$@\"\n"),
    )
    .unwrap();
    run_ok(
        std::process::Command::new("chmod")
            .arg("755")
            .arg(slow.as_str()),
    );

    let out = ws
        .xtask_command(["build", "tiny", "--json"])
        .env("GOPACK_GO", slow.as_str())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let progress: Vec<Value> = stderr_events(&out)
        .into_iter()
        .filter(|e| e["event"] == "progress")
        .collect();
    assert!(!progress.is_empty(), "{}", text(&out));
    assert_eq!(progress[0]["app"], "tiny");
    assert_eq!(progress[0]["platform"], "linux/amd64");
    assert_eq!(progress[0]["step"], "go-build");
    assert!(
        progress[0]["seconds"].as_u64().unwrap() >= 10,
        "{}",
        progress[0]
    );

    ws.write("hello/extra.go", "package main\n\nconst extra = 1\n");
    let out = ws
        .xtask_command(["build", "tiny"])
        .env("GOPACK_GO", slow.as_str())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tiny linux/amd64: still building (1"),
        "{stderr}"
    );
}

/// `run --json`: the container's output as `output` events on stderr, one
/// result on stdout, and gopack's own exit status (3 when the app failed).
#[test]
fn run_json_keeps_the_container_apart() {
    let name = format!("cli-run-{}", std::process::id());
    let _images = Images {
        docker: docker_engine(),
        references: vec![format!("{name}:1.0.0"), format!("{name}:latest")],
    };
    let ws = TestWorkspace::new(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"hello\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\n"
    ));
    ws.copy("examples/hello", "hello");
    let out = ws.xtask(["run", &name, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let results = stdout_results(&out);
    assert_eq!(results.len(), 1, "{}", text(&out));
    assert_eq!(keys(&results[0]), ["exit_code", "image", "name"]);
    assert_eq!(results[0]["exit_code"], 0);
    assert_eq!(results[0]["image"], format!("{name}:1.0.0"));
    let events = stderr_events(&out);
    assert!(
        events.iter().any(|e| e["event"] == "output"
            && e["tool"] == "container"
            && e["line"].as_str().unwrap().contains("hello from gopack")),
        "{}",
        text(&out)
    );

    // The app fails (an unknown zone): exit status 3, its code in the result.
    let mut config = std::fs::read_to_string(ws.root.join("Cargo.toml")).unwrap();
    config.push_str("image-env = { HELLO_ZONE = \"No/Such_Zone\" }\n");
    std::fs::write(ws.root.join("Cargo.toml"), config).unwrap();
    let out = ws.xtask(["run", &name, "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let result = &stdout_results(&out)[0];
    let code = result["exit_code"].as_i64().unwrap();
    assert_ne!(code, 0, "{result}");
    assert!(stderr_events(&out)
        .iter()
        .any(|e| e["tool"] == "container" && e["line"].as_str().unwrap().contains("zoneinfo")));
}
