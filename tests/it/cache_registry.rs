//! The cache registry: two runners with separate local caches share built
//! binaries and layers through a real `docker-registry` on 127.0.0.1; a
//! registry that is down, answers 500 or holds a damaged blob is a warning and
//! a local build with the same digest; read mode pushes nothing.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Command, Output};

const APPS: &str = r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
platforms = ["linux/amd64"]
version-variable = "main.version"

[[workspace.metadata.gopack.apps]]
name = "depsapp"
path = "depsapp"
platforms = ["linux/amd64"]
"#;

/// One CI runner: a checkout and its own local cache.
struct Runner {
    root: Utf8PathBuf,
    cache: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Runner {
    fn new(root: &Utf8Path) -> Runner {
        Runner {
            root: root.to_path_buf(),
            cache: tempfile::Builder::new()
                .prefix("gopack-runner-cache-")
                .tempdir()
                .unwrap(),
            env: Vec::new(),
        }
    }

    fn cache_dir(&self) -> &Utf8Path {
        Utf8Path::from_path(self.cache.path()).unwrap()
    }

    /// `cargo xtask pack ARGS --json` with this runner's cache; checks success.
    fn pack(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run("pack", args, env)
    }

    /// `cargo xtask COMMAND ARGS --json` with this runner's cache; checks success.
    fn run(&self, command: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self.command(command, args, env).output().unwrap();
        assert!(out.status.success(), "{command} {args:?}\n{}", text(&out));
        Run::new(out)
    }

    fn command(&self, command: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg(command)
            .args(args)
            .arg("--json")
            .current_dir(&self.root)
            .env("GOPACK_CACHE_DIR", self.cache_dir())
            .env_remove("GOPACK_CACHE_REGISTRY")
            .env_remove("GOPACK_CACHE_REGISTRY_MODE");
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd
    }
}

/// A finished run: its output and its events.
struct Run {
    out: Output,
    events: Vec<Value>,
}

impl Run {
    fn new(out: Output) -> Run {
        let events = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v.get("event").is_some())
            .collect();
        Run { out, events }
    }

    fn of(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }

    fn count(&self, kind: &str) -> usize {
        self.of(kind).len()
    }

    /// The image digest of `app`, from its `image-ready` event.
    fn digest(&self, app: &str) -> String {
        self.of("image-ready")
            .iter()
            .find(|e| e["app"] == app)
            .and_then(|e| e["digest"].as_str())
            .unwrap_or_else(|| panic!("no image-ready event for {app}\n{}", self.log()))
            .to_string()
    }

    fn warnings(&self) -> Vec<String> {
        self.of("warning")
            .iter()
            .map(|w| w["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn log(&self) -> String {
        text(&self.out)
    }
}

/// A workspace with hello and the fixture with modules, committed.
fn workspace(extra: &str) -> TestWorkspace {
    let ws = TestWorkspace::new(&format!("{extra}\n{APPS}"));
    ws.copy("examples/hello", "hello");
    ws.copy("tests/fixtures/deps-app", "depsapp");
    git_commit_all(&ws.root);
    ws
}

/// A clone of the workspace's repository: another runner's checkout of the same commit.
fn clone(ws: &TestWorkspace) -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("gopack-runner-b-")
        .tempdir()
        .unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().join("repo")).unwrap();
    run_ok(Command::new("git").args(["clone", "--quiet", ws.root.as_str(), root.as_str()]));
    (dir, root)
}

fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// Every blob of a layout hashes to its name.
fn assert_layout_blobs_intact(layout: &Utf8Path) {
    let mut checked = 0;
    for entry in layout.join("blobs/sha256").read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        use sha2::Digest;
        let hex: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, entry.file_name(), "{}", entry.path());
        checked += 1;
    }
    assert!(checked >= 4, "{layout}: {checked} blobs");
}

fn kinds(events: &[&Value]) -> Vec<String> {
    let mut kinds: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["app"].as_str().unwrap(),
                e["kind"].as_str().unwrap()
            )
        })
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn a_second_runner_builds_nothing_and_a_change_travels_back() {
    let registry = Registry::start();
    let ws = workspace("");
    let remote = [("GOPACK_CACHE_REGISTRY", registry.address.as_str())];

    // Runner A, cold local cache: everything is built and pushed.
    let a = Runner::new(&ws.root);
    let first = a.pack(&[], &remote);
    assert_eq!(first.count("go-build"), 2, "{}", first.log());
    assert!(first.count("cache-remote-miss") >= 4, "{}", first.log());
    // Two binaries, one shared base layer, two app layers.
    assert_eq!(
        kinds(&first.of("cache-remote-push")),
        [
            "depsapp:binary",
            "depsapp:layer",
            "hello:binary",
            "hello:layer",
            "hello:layer"
        ],
        "{}",
        first.log()
    );
    let summary = &first.of("cache-remote-summary")[0];
    assert_eq!(
        (summary["hits"].as_u64(), summary["pushed"].as_u64()),
        (Some(0), Some(5))
    );

    // Runner B: the same commit, an empty local cache, an empty GOCACHE, no
    // module cache and no module proxy: nothing is built or downloaded.
    let (_b_dir, b_root) = clone(&ws);
    let b = Runner::new(&b_root);
    let gocache = temp_dir("gopack-gocache-");
    let modcache = temp_dir("gopack-modcache-");
    let second = b.pack(
        &[],
        &[
            remote[0],
            ("GOCACHE", gocache.path().to_str().unwrap()),
            ("GOMODCACHE", modcache.path().to_str().unwrap()),
            ("GOPROXY", "off"),
        ],
    );
    assert_eq!(second.count("go-build"), 0, "{}", second.log());
    assert_eq!(second.count("deps-download"), 0, "{}", second.log());
    assert_eq!(second.count("cache-remote-push"), 0, "{}", second.log());
    assert_eq!(second.count("cache-remote-hit"), 5, "{}", second.log());
    assert!(second.warnings().is_empty(), "{}", second.log());
    for hit in second.of("cache-remote-hit") {
        assert!(hit["size"].as_u64().unwrap() > 0, "{hit}");
    }
    let summary = &second.of("cache-remote-summary")[0];
    assert_eq!(summary["hits"].as_u64(), Some(5), "{summary}");
    for app in ["hello", "depsapp"] {
        assert_eq!(second.digest(app), first.digest(app), "{app}");
        assert_layout_blobs_intact(&b_root.join(format!("target/gopack/{app}/oci")));
    }
    // `build` asks the registry too.
    let c = Runner::new(&b_root);
    let built = c.run("build", &["depsapp"], &[remote[0], ("GOPROXY", "off")]);
    assert_eq!(built.count("go-build"), 0, "{}", built.log());
    assert_eq!(kinds(&built.of("cache-remote-hit")), ["depsapp:binary"]);
    // The binary from the registry runs.
    let bin = b_root.join("target/gopack/hello/bin/linux_amd64/hello");
    let ran = Command::new(&bin)
        .env("HELLO_ZONE", "UTC")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("hello from gopack"),
        "{}",
        text(&ran)
    );

    // A one-file change on runner B builds only that app and pushes it.
    let edit = |root: &Utf8Path| {
        let main = root.join("hello/main.go");
        let source = std::fs::read_to_string(&main).unwrap();
        std::fs::write(
            &main,
            source.replace("hello from gopack", "hello again from gopack"),
        )
        .unwrap();
    };
    edit(&b_root);
    let third = b.pack(&[], &remote);
    let built: Vec<&str> = third
        .of("go-build")
        .iter()
        .map(|e| e["app"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["hello"], "{}", third.log());
    assert_eq!(
        kinds(&third.of("cache-remote-push")),
        ["hello:binary", "hello:layer"],
        "{}",
        third.log()
    );
    assert_eq!(third.digest("depsapp"), first.digest("depsapp"));
    assert_ne!(third.digest("hello"), first.digest("hello"));

    // Runner A makes the same change and gets it from the registry.
    edit(&ws.root);
    let fourth = a.pack(&["hello"], &remote);
    assert_eq!(fourth.count("go-build"), 0, "{}", fourth.log());
    assert_eq!(
        kinds(&fourth.of("cache-remote-hit")),
        ["hello:binary", "hello:layer"],
        "{}",
        fourth.log()
    );
    assert_eq!(fourth.digest("hello"), third.digest("hello"));
}

/// A server on 127.0.0.1 that answers every request with `status`, closing
/// each connection, for `answers` requests (then it stops listening).
fn fake_registry(status: &'static str, answers: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        for _ in 0..answers {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut buffer = [0u8; 8192];
            let _ = stream.read(&mut buffer);
            let body = "{\"errors\":[{\"code\":\"UNKNOWN\"}]}";
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (address, server)
}

/// Packs hello alone with the cache registry at `address`; checks it is a
/// correct local build with one warning about the registry.
fn pack_despite(ws: &TestWorkspace, address: &str, clean: &str) -> Run {
    let runner = Runner::new(&ws.root);
    let run = runner.pack(
        &["hello", "--registry-timeout", "1"],
        &[("GOPACK_CACHE_REGISTRY", address)],
    );
    assert_eq!(run.digest("hello"), clean, "{}", run.log());
    assert_eq!(run.count("go-build"), 1, "{}", run.log());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{}", run.log());
    assert!(warnings[0].contains("cache registry"), "{warnings:?}");
    run
}

#[test]
fn a_failing_cache_registry_is_a_warning_and_a_local_build() {
    let ws = workspace("");
    let clean = Runner::new(&ws.root).pack(&["hello"], &[]).digest("hello");

    // Answering 500 to everything.
    let (address, server) = fake_registry("500 Internal Server Error", 2);
    let run = pack_despite(&ws, &address, &clean);
    assert!(run.warnings()[0].contains("500"), "{}", run.log());
    server.join().unwrap();

    // Up for the first request, then gone.
    let (address, server) = fake_registry("200 OK", 1);
    let run = pack_despite(&ws, &address, &clean);
    assert_eq!(run.count("cache-remote-push"), 0, "{}", run.log());
    server.join().unwrap();

    // A real registry, stopped while the run uses it (after its first answer).
    let registry = Registry::start();
    let runner = Runner::new(&ws.root);
    let mut child = runner
        .command(
            "pack",
            &["hello"],
            &[("GOPACK_CACHE_REGISTRY", registry.address.as_str())],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut registry = Some(registry);
    let mut lines = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        if line.contains("\"cache-remote-miss\"") {
            drop(registry.take());
        }
        lines.push(line);
    }
    let out = child.wait_with_output().unwrap();
    let run = Run::new(Output {
        stderr: lines.join("\n").into_bytes(),
        ..out
    });
    assert!(run.out.status.success(), "{}", run.log());
    assert!(
        registry.is_none(),
        "the run asked the registry: {}",
        run.log()
    );
    assert_eq!(run.digest("hello"), clean, "{}", run.log());
    assert_eq!(run.warnings().len(), 1, "{}", run.log());
    assert_eq!(run.count("cache-remote-push"), 0, "{}", run.log());

    // Accepts connections and never answers (slow): one timeout, not one per entry.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let run = pack_despite(&ws, &silent.local_addr().unwrap().to_string(), &clean);
    assert!(
        run.warnings()[0].contains("did not answer within 1 s"),
        "{}",
        run.log()
    );
    drop(silent);

    // Nothing listening at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pack_despite(&ws, &format!("127.0.0.1:{port}"), &clean);
}

#[test]
fn a_damaged_blob_in_the_registry_is_reported_rebuilt_and_pushed_again() {
    let registry = Registry::start();
    let ws = workspace("");
    let remote = [("GOPACK_CACHE_REGISTRY", registry.address.as_str())];
    let first = Runner::new(&ws.root);
    let clean = first.pack(&["hello"], &remote).digest("hello");

    // Damage the binary's blob where the registry stores it (same size).
    let sums = cache_entries(first.cache_dir(), "bin-sums");
    assert_eq!(sums.len(), 1, "{sums:?}");
    let record =
        std::fs::read_to_string(first.cache_dir().join("bin-sums").join(&sums[0])).unwrap();
    // The record is sealed: a seal line, then `sha256:<hex> <size>`.
    let hex = record
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("sha256:");
    let blob = registry
        .data_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    let second = Runner::new(&ws.root);
    let run = second.pack(&["hello"], &remote);
    assert_eq!(run.digest("hello"), clean, "{}", run.log());
    assert_eq!(run.count("go-build"), 1, "{}", run.log());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{}", run.log());
    assert!(
        warnings[0].contains("ignored") && warnings[0].contains("hashes to"),
        "{warnings:?}"
    );
    // The rebuilt binary is pushed again (read-write mode); its layer came from the registry.
    assert_eq!(
        kinds(&run.of("cache-remote-push")),
        ["hello:binary"],
        "{}",
        run.log()
    );
    assert_eq!(run.count("cache-remote-hit"), 2, "{}", run.log());
    // Nothing damaged reached the local cache.
    let local = second.cache_dir().join("bin").join(&sums[0]);
    let (digest, _) = gopack_core::integrity::file_digest(&local).unwrap();
    assert_eq!(digest.trim_start_matches("sha256:"), hex);
}

/// The registry's `/v2/_catalog` answer.
fn catalog(address: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /v2/_catalog HTTP/1.0\r\nHost: {address}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn read_mode_takes_entries_and_pushes_nothing() {
    let registry = Registry::start();
    // The config's keys this time, not the flags.
    let ws = workspace(&format!(
        "cache-registry = \"{}/ci\"\ncache-registry-mode = \"read\"",
        registry.address
    ));
    let run = Runner::new(&ws.root).pack(&["hello"], &[]);
    assert_eq!(run.count("cache-remote-push"), 0, "{}", run.log());
    assert!(run.count("cache-remote-miss") >= 2, "{}", run.log());
    let listed = catalog(&registry.address);
    assert!(listed.contains("\"repositories\":[]"), "{listed}");

    // The flag turns read-write back on for one run.
    let run = Runner::new(&ws.root).pack(&["hello", "--cache-registry-mode", "read-write"], &[]);
    assert_eq!(run.count("cache-remote-push"), 3, "{}", run.log());
    let listed = catalog(&registry.address);
    assert!(listed.contains("ci/gopack-cache"), "{listed}");
}

#[test]
fn a_bad_cache_registry_is_an_error_naming_the_key_or_flag() {
    let ws = TestWorkspace::new(&format!("cache-registry = \"Not A Registry\"\n{APPS}"));
    let out = ws.xtask(["pack", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workspace.metadata.gopack.cache-registry") && err.contains("ghcr.io"),
        "{err}"
    );

    let ws = TestWorkspace::new(APPS);
    ws.copy("examples/hello", "hello");
    ws.copy("tests/fixtures/deps-app", "depsapp");
    let out = ws
        .xtask_command(["build", "hello"])
        .env("GOPACK_CACHE_REGISTRY", "ghcr.io/Acme")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cache-registry"), "{err}");
}
