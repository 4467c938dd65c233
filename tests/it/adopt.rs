//! The adoption path, end to end: examples/monorepo is a Rust-led monorepo
//! that mounts gopack in its own xtask. Its `cargo xtask pack api --load`
//! makes an image that serves `/healthz` in docker, its own subcommand still
//! works, and its source tree is left as it was.

use crate::support::{docker_engine, repo_root, run_ok, text};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const EXAMPLE: &str = "examples/monorepo";

/// The packages of a Cargo.lock that come from a registry: name → versions.
/// Read line by line: cargo writes `[[package]]` tables of `key = "value"`.
fn registry_packages(lock: &str) -> BTreeMap<String, Vec<String>> {
    let mut packages = BTreeMap::<String, Vec<String>>::new();
    for table in lock.split("[[package]]").skip(1) {
        let value = |key: &str| {
            table.lines().find_map(|line| {
                let rest = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
                Some(rest.trim().trim_matches('"').to_string())
            })
        };
        if value("source").is_some_and(|s| s.starts_with("registry+")) {
            let name = value("name").expect("a package without a name");
            let version = value("version").expect("a package without a version");
            packages.entry(name).or_default().push(version);
        }
    }
    packages
}

/// The example's Cargo.lock pins gopack's dependencies at gopack's own
/// versions: what gopack is tested with is what the example builds, and the
/// test below reuses gopack's compiled dependencies instead of building its own.
#[test]
fn the_example_locks_gopacks_dependency_versions() {
    let gopack =
        registry_packages(&std::fs::read_to_string(repo_root().join("Cargo.lock")).unwrap());
    let example = registry_packages(
        &std::fs::read_to_string(repo_root().join(EXAMPLE).join("Cargo.lock")).unwrap(),
    );
    assert!(example.contains_key("clap"), "{example:?}");
    let differ: Vec<String> = example
        .iter()
        .filter(|(name, versions)| {
            let known = gopack.get(*name).cloned().unwrap_or_default();
            versions.iter().any(|version| !known.contains(version))
        })
        .map(|(name, versions)| format!("{name} {versions:?} (gopack: {:?})", gopack.get(name)))
        .collect();
    assert!(
        differ.is_empty(),
        "{EXAMPLE}/Cargo.lock differs from gopack's Cargo.lock: {differ:?}\n\
         refresh it: cp Cargo.lock {EXAMPLE}/ && (cd {EXAMPLE} && cargo tree >/dev/null)"
    );
}

/// The folder where cargo keeps gopack's own compiled dependencies.
fn gopack_build_dir() -> Utf8PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_BUILD_BUILD_DIR") {
        return Utf8PathBuf::from_path_buf(dir.into()).unwrap();
    }
    // <target>/debug/xtask
    let xtask = Utf8Path::new(env!("CARGO_BIN_EXE_xtask"));
    xtask.parent().unwrap().parent().unwrap().to_path_buf()
}

/// A copy of the example, two folders below gopack's root so that its path
/// dependency `../../../gopack-core` (from `xtask/`) is gopack's own, as with
/// a vendored copy. It is a git repository with one commit.
struct Monorepo {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
}

impl Monorepo {
    fn new() -> Monorepo {
        let parent = repo_root().join("target");
        std::fs::create_dir_all(&parent).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("adopt-monorepo-")
            .tempdir_in(&parent)
            .unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        crate::support::copy_dir(&repo_root().join(EXAMPLE), &root);
        let monorepo = Monorepo { _dir: dir, root };
        monorepo.git(&["init", "--quiet", "--initial-branch=main"]);
        monorepo.git(&["add", "-A"]);
        monorepo.git(&["commit", "--quiet", "-m", "a monorepo with a Go service"]);
        monorepo
    }

    fn git(&self, args: &[&str]) -> String {
        run_ok(
            Command::new("git")
                .args(args)
                .current_dir(&self.root)
                .env("GIT_AUTHOR_NAME", "gopack tests")
                .env("GIT_AUTHOR_EMAIL", "tests@gopack.invalid")
                .env("GIT_COMMITTER_NAME", "gopack tests")
                .env("GIT_COMMITTER_EMAIL", "tests@gopack.invalid"),
        )
    }

    /// `cargo xtask ARGS` in the monorepo: its own xtask, built by cargo.
    /// Its outputs go to its own `target/`; cargo's intermediate files share
    /// gopack's build folder, so gopack's compiled dependencies are reused.
    ///
    /// The variables cargo set for this test (`CARGO_PKG_NAME`, ...) are
    /// removed: build scripts such as ring's rerun when they change, and then
    /// the monorepo's build and gopack's would rebuild each other's dependencies.
    fn cargo_xtask(&self, args: &[&str]) -> Output {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let set_by_cargo = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*name);
            if set_by_cargo {
                command.env_remove(&*name);
            }
        }
        command
            .arg("xtask")
            .args(args)
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", self.root.join("target"))
            .env("CARGO_BUILD_BUILD_DIR", gopack_build_dir())
            .output()
            .unwrap()
    }
}

/// Removes what the test made in the docker engine, also when it fails.
#[derive(Default)]
struct DockerCleanup {
    container: Option<String>,
    image: Option<String>,
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        if let Some(container) = &self.container {
            let _ = Command::new("docker")
                .args(["rm", "--force", container])
                .output();
        }
        // The image's id is its config digest, which carries this run's
        // commit: every tag it has was given by this test.
        if let Some(image) = &self.image {
            let _ = Command::new("docker")
                .args(["rmi", "--force", image])
                .output();
        }
    }
}

/// The config digest (the docker image id) of the host platform's image in an
/// OCI layout: index.json names the image, or an index of one per platform.
fn image_id(layout: &Utf8Path) -> String {
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut document =
        crate::support::layout_json(layout, top["manifests"][0]["digest"].as_str().unwrap());
    if let Some(manifests) = document["manifests"].as_array() {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let manifest = manifests
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap_or_else(|| panic!("no {arch} image in {document}"));
        document = crate::support::layout_json(layout, manifest["digest"].as_str().unwrap());
    }
    document["config"]["digest"].as_str().unwrap().to_string()
}

/// The digest of the image (or index) that an OCI layout's index.json names.
fn index_digest(layout: &Utf8Path) -> String {
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    top["manifests"][0]["digest"].as_str().unwrap().to_string()
}

/// `GET /healthz` on 127.0.0.1:`port`, retried while the server starts.
fn healthz(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        })();
        match answer {
            Ok(answer) if answer.starts_with("HTTP/") => return answer,
            _ if Instant::now() > deadline => panic!("no answer on 127.0.0.1:{port}: {answer:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn the_example_monorepo_packs_its_service_and_it_answers_in_docker() {
    crate::support::init();
    docker_engine();
    let monorepo = Monorepo::new();
    let mut cleanup = DockerCleanup::default();

    let out = monorepo.cargo_xtask(&["pack", "api", "--load"]);
    assert!(out.status.success(), "{}", text(&out));
    let layout = monorepo.root.join("target/gopack/api/oci");
    let id = image_id(&layout);
    cleanup.image = Some(id.clone());

    // gopack's own xtask, from an empty cache, makes the same image: the
    // monorepo's build of gopack-core (its own features, its own profile
    // table) changes no byte.
    let own_target = monorepo.root.join("target/gopack-own");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["pack", "api"])
        .current_dir(&monorepo.root)
        .env("CARGO_TARGET_DIR", &own_target)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        index_digest(&own_target.join("gopack/api/oci")),
        index_digest(&layout),
        "gopack's xtask and the monorepo's made different images"
    );

    let tags = run_ok(Command::new("docker").args([
        "image",
        "inspect",
        "--format",
        "{{json .RepoTags}}",
        &id,
    ]));
    assert!(tags.contains("\"api:latest\""), "{tags}");
    let exposed = run_ok(Command::new("docker").args([
        "image",
        "inspect",
        "--format",
        "{{json .Config.ExposedPorts}}",
        &id,
    ]));
    assert!(exposed.contains("8080/tcp"), "{exposed}");

    let container = run_ok(Command::new("docker").args([
        "run",
        "--detach",
        "--publish",
        "127.0.0.1::8080",
        &id,
    ]));
    cleanup.container = Some(container.trim().to_string());
    let published = run_ok(Command::new("docker").args(["port", container.trim(), "8080/tcp"]));
    let port: u16 = published
        .lines()
        .find_map(|line| line.strip_prefix("127.0.0.1:"))
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port on 127.0.0.1 in `docker port`: {published}"));
    let answer = healthz(port);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");

    // The monorepo's own subcommand lives next to gopack's.
    let out = monorepo.cargo_xtask(&["lint"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the Go services are formatted"),
        "{}",
        text(&out)
    );
    let out = monorepo.cargo_xtask(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    for command in ["lint", "pack", "build", "verify"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "{command}:\n{help}"
        );
    }

    // The embedded xtask keeps gopack's CI contract for a command line clap
    // refuses: with --json, stderr is one `usage` error event and the exit
    // status is 2 (not clap's text).
    // (The binary cargo built above: `cargo xtask` would add cargo's own lines.)
    let out = Command::new(monorepo.root.join("target/debug/xtask"))
        .args(["pack", "api", "--json", "--bogus"])
        .current_dir(&monorepo.root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr is not one JSON line: {stderr}");
    let event: serde_json::Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    assert_eq!(event["event"], "error", "{event}");
    assert_eq!(event["code"], "usage", "{event}");
    assert!(
        event["message"].as_str().unwrap().contains("--bogus"),
        "{event}"
    );

    // Nothing was written outside target/ (which the monorepo ignores).
    let status = monorepo.git(&[
        "status",
        "--porcelain",
        "--ignored",
        "--untracked-files=all",
    ]);
    let written: Vec<&str> = status
        .lines()
        .filter(|l| !l.starts_with("!! target/"))
        .collect();
    assert!(
        written.is_empty(),
        "files written into the monorepo: {written:?}"
    );
}
