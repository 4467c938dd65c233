//! Shared helpers of gopack's end-to-end tests: the real `go`, a module proxy
//! folder generated from `tests/fixtures/modules`, throwaway cargo workspaces,
//! and the `xtask` binary.
#![allow(dead_code)]

use camino::{Utf8Path, Utf8PathBuf};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The folder of the Go toolchain's `go` binary, or a panic that says what to install.
pub fn go_bin_dir() -> Utf8PathBuf {
    let candidates = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(Utf8PathBuf::from)
        .chain(["/usr/lib/go-1.23/bin".into(), "/usr/local/go/bin".into()])
        .collect::<Vec<_>>();
    candidates
        .into_iter()
        .find(|dir| dir.join("go").is_file())
        .expect(
            "the tests need Go: install golang-1.23-go from Debian bookworm-backports \
             (see .ci/run) or put a Go toolchain's bin/ on PATH",
        )
}

/// Sets up the process environment once: go on PATH, offline module proxy, local toolchain.
pub fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let path = format!(
            "{}:{}",
            go_bin_dir(),
            std::env::var("PATH").unwrap_or_default()
        );
        let proxy = module_proxy();
        // Set before any test thread reads the environment (they all wait on this OnceLock).
        std::env::set_var("PATH", path);
        std::env::set_var("GOTOOLCHAIN", "local");
        std::env::set_var("GOPROXY", format!("file://{proxy}"));
        std::env::set_var("GOSUMDB", "off");
        std::env::set_var("GOFLAGS", "-mod=mod");
        std::env::remove_var("GOPACK_CACHE_DIR");
        std::env::remove_var("GOPACK_GO");
        // The tests' workspaces keep their outputs in their own target folder,
        // whatever the shell running `cargo test` points cargo at.
        std::env::remove_var("CARGO_TARGET_DIR");
        std::env::remove_var("CARGO_BUILD_TARGET_DIR");
        std::env::remove_var("SOURCE_DATE_EPOCH");
    });
}

/// A module proxy folder built from `tests/fixtures/modules/<path>@<version>/`.
pub fn module_proxy() -> Utf8PathBuf {
    static PROXY: OnceLock<Utf8PathBuf> = OnceLock::new();
    PROXY
        .get_or_init(|| {
            // In cargo's folder for test scratch files, made anew by each
            // test binary, so no run leaves a folder in the system's /tmp.
            let root = Utf8PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("module-proxy-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for old in std::fs::read_dir(env!("CARGO_TARGET_TMPDIR"))
                .into_iter()
                .flatten()
            {
                let old = old.unwrap().path();
                let stale = old
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("module-proxy-"))
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
                if stale {
                    let _ = std::fs::remove_dir_all(old);
                }
            }
            let sources = repo_root().join("tests/fixtures/modules");
            for module in walk_module_versions(&sources) {
                let relative = module.strip_prefix(&sources).unwrap().as_str().to_string();
                let (path, version) = relative.rsplit_once('@').unwrap();
                write_proxy_module(&root, &module, path, version);
            }
            root
        })
        .clone()
}

fn walk_module_versions(dir: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut found = Vec::new();
    for entry in dir.read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        if entry.file_name().contains('@') {
            found.push(entry.path().to_path_buf());
        } else {
            found.extend(walk_module_versions(entry.path()));
        }
    }
    found
}

fn write_proxy_module(root: &Utf8Path, source: &Utf8Path, path: &str, version: &str) {
    let escaped: String = path
        .chars()
        .flat_map(|c| {
            if c.is_ascii_uppercase() {
                vec!['!', c.to_ascii_lowercase()]
            } else {
                vec![c]
            }
        })
        .collect();
    let dir = root.join(&escaped).join("@v");
    std::fs::create_dir_all(&dir).unwrap();
    let mut list = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("list"))
        .unwrap();
    writeln!(list, "{version}").unwrap();
    std::fs::write(
        dir.join(format!("{version}.info")),
        format!("{{\"Version\":\"{version}\",\"Time\":\"2024-01-01T00:00:00Z\"}}"),
    )
    .unwrap();
    std::fs::copy(source.join("go.mod"), dir.join(format!("{version}.mod"))).unwrap();
    let file = std::fs::File::create(dir.join(format!("{version}.zip"))).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let mut files = Vec::new();
    collect(source, source, &mut files);
    files.sort();
    for relative in files {
        zip.start_file(
            format!("{path}@{version}/{relative}"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&std::fs::read(source.join(&relative)).unwrap())
            .unwrap();
    }
    zip.finish().unwrap();
}

fn collect(root: &Utf8Path, dir: &Utf8Path, files: &mut Vec<String>) {
    for entry in dir.read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            collect(root, entry.path(), files);
        } else {
            files.push(entry.path().strip_prefix(root).unwrap().to_string());
        }
    }
}

/// A throwaway cargo workspace with a gopack configuration.
pub struct TestWorkspace {
    _dir: tempfile::TempDir,
    /// The workspace root.
    pub root: Utf8PathBuf,
}

impl TestWorkspace {
    /// A workspace whose `[workspace.metadata.gopack]` table is `gopack_toml`.
    pub fn new(gopack_toml: &str) -> TestWorkspace {
        init();
        let dir = tempfile::Builder::new()
            .prefix("gopack-ws-")
            .tempdir()
            .unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let ws = TestWorkspace { _dir: dir, root };
        ws.set_config(gopack_toml);
        ws
    }

    /// Replaces the gopack configuration.
    pub fn set_config(&self, gopack_toml: &str) {
        std::fs::write(
            self.root.join("Cargo.toml"),
            format!("[workspace]\nresolver = \"2\"\nmembers = []\n\n[workspace.metadata.gopack]\n{gopack_toml}\n"),
        )
        .unwrap();
    }

    /// Copies a folder of the repository (e.g. `examples/hello`) to `to` in the workspace.
    pub fn copy(&self, from: &str, to: &str) -> Utf8PathBuf {
        let source = repo_root().join(from);
        let target = self.root.join(to);
        copy_dir(&source, &target);
        target
    }

    /// Writes a file in the workspace.
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Reads the workspace through the library.
    pub fn workspace(&self) -> gopack_core::config::Workspace {
        gopack_core::config::Workspace::load(Some(&self.root.join("Cargo.toml"))).unwrap()
    }

    /// A `cargo xtask` command (the built binary) run in the workspace.
    pub fn xtask_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(args).current_dir(&self.root);
        cmd
    }

    /// Runs `cargo xtask ARGS` in the workspace and returns its output.
    pub fn xtask<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.xtask_command(args).output().unwrap()
    }

    /// Runs `cargo xtask ARGS` with `env` and asserts that it fails and that
    /// stderr holds every one of `needles`.
    pub fn expect_error(&self, args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
        let mut cmd = self.xtask_command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{args:?}: `{needle}` missing from:\n{stderr}"
            );
        }
    }

    /// The workspace's cache folder.
    pub fn cache_dir(&self) -> Utf8PathBuf {
        self.root.join("target/gopack/cache")
    }
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Utf8Path, to: &Utf8Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in from.read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Text of a process's stdout and stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The ELF machine name and whether the file is static (no interpreter, no DT_NEEDED).
pub fn elf_facts(path: &Path) -> (u16, bool) {
    let bytes = std::fs::read(path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let is_static = elf.interpreter.is_none() && elf.libraries.is_empty();
    (elf.header.e_machine, is_static)
}

/// Names of the entries in a cache kind folder that are real entries (no temp files).
pub fn cache_entries(cache: &Utf8Path, kind: &str) -> Vec<String> {
    let Ok(entries) = cache.join(kind).read_dir_utf8() else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string())
        .filter(|n| !n.starts_with(".tmp-"))
        .collect();
    names.sort();
    names
}

/// Validates an OCI JSON document against the image-spec schema `schema`
/// (e.g. `image-manifest-schema.json`) from tests/fixtures/oci-image-spec-schemas.
pub fn validate_oci_json(schema: &str, document: &[u8]) {
    struct LocalSchemas;
    impl jsonschema::Retrieve for LocalSchemas {
        fn retrieve(
            &self,
            uri: &jsonschema::Uri<String>,
        ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
            let name = uri
                .path()
                .as_str()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let path = repo_root()
                .join("tests/fixtures/oci-image-spec-schemas")
                .join(name);
            Ok(serde_json::from_slice(&std::fs::read(path)?)?)
        }
    }
    let path = repo_root()
        .join("tests/fixtures/oci-image-spec-schemas")
        .join(schema);
    let schema_value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let validator = jsonschema::options()
        .with_retriever(LocalSchemas)
        .build(&schema_value)
        .unwrap_or_else(|e| panic!("{schema}: {e}"));
    let instance: serde_json::Value = serde_json::from_slice(document).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{schema} rejects {instance}: {errors:?}");
}

/// Fails with an install hint when `tool` is not on PATH.
pub fn require_tool(tool: &str, package: &str) {
    init();
    assert!(
        which_on_path(tool),
        "this test needs `{tool}`: install it (Debian: apt-get install {package}); .ci/run does"
    );
}

fn which_on_path(tool: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|dir| Path::new(dir).join(tool).is_file())
}

/// Runs a command to success and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes the workspace a git repository with one commit.
pub fn git_commit_all(dir: &Utf8Path) {
    let git = |args: &[&str]| {
        run_ok(
            Command::new("git")
                .args(args)
                .current_dir(dir)
                .env("GIT_AUTHOR_NAME", "gopack tests")
                .env("GIT_AUTHOR_EMAIL", "tests@gopack.invalid")
                .env("GIT_COMMITTER_NAME", "gopack tests")
                .env("GIT_COMMITTER_EMAIL", "tests@gopack.invalid"),
        )
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(dir.join(".gitignore"), "target/\n").unwrap();
    git(&["add", "-A"]);
    git(&["commit", "--quiet", "-m", "fixture"]);
}

/// Reads a blob of an OCI layout as JSON.
pub fn layout_json(layout: &Utf8Path, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&layout_blob(layout, digest)).unwrap()
}

/// Reads a blob of an OCI layout.
pub fn layout_blob(layout: &Utf8Path, digest: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// The file at `path` inside a gzip-compressed layer blob.
pub fn file_in_layer(layer: &[u8], path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == path {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return Some(bytes);
        }
    }
    None
}

/// The path of `tool` on PATH, or a panic that says which Debian package to install.
pub fn tool_path(tool: &str, package: &str) -> Utf8PathBuf {
    require_tool(tool, package);
    which_tool(tool).unwrap()
}

/// The `docker` client, with a running engine, or a panic that says what to do.
pub fn docker_engine() -> Utf8PathBuf {
    let docker = tool_path("docker", "docker.io");
    let out = Command::new(&docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "this test needs a running docker engine: start it (`dockerd &` or \
         `systemctl start docker`)\n{}",
        text(&out)
    );
    docker
}

fn which_tool(name: &str) -> Option<Utf8PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| Utf8Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// A docker image a test built; removed from the engine when dropped.
pub struct DockerImage {
    /// The image's name (tag `latest`).
    pub name: String,
}

impl DockerImage {
    /// `docker build`s `context` as `gopack-test-<name>-<pid>`. Without the build
    /// cache: tests run in parallel, and removing one test's image must not take
    /// away intermediate images another test's build is reusing.
    pub fn build(name: &str, context: &Utf8Path) -> DockerImage {
        let docker = docker_engine();
        let image = DockerImage {
            name: format!("gopack-test-{name}-{}", std::process::id()),
        };
        run_ok(
            Command::new(docker)
                .args(["build", "--quiet", "--no-cache", "--tag", &image.name])
                .arg(context.as_str()),
        );
        image
    }
}

impl Drop for DockerImage {
    fn drop(&mut self) {
        if let Some(docker) = which_tool("docker") {
            let _ = Command::new(docker)
                .args(["rmi", "--force", &self.name])
                .output();
        }
    }
}

/// A real OCI distribution registry (`docker-registry`) on a free loopback port,
/// stopped when dropped.
pub struct Registry {
    child: std::process::Child,
    _storage: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Registry {
    /// Starts a registry and waits until `/v2/` answers.
    pub fn start() -> Registry {
        require_tool("docker-registry", "docker-registry");
        let storage = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: {address}}}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            _storage: storage,
            address,
        };
        for _ in 0..100 {
            if registry.answers() {
                return registry;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("docker-registry did not start on {}", registry.address);
    }

    /// The folder where the registry stores blobs and manifests.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._storage.path().join("data")
    }

    fn answers(&self) -> bool {
        use std::io::Read;
        let Ok(mut stream) = std::net::TcpStream::connect(&self.address) else {
            return false;
        };
        let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.address);
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a vendored Go app at `dir`: `cmd/hello` imports two third-party modules
/// that exist only in vendor/ (no module proxy has them), as `go mod vendor` leaves them;
/// one of them is `replace`d with a local folder (`third_party/shout`).
pub fn write_vendored_app(dir: &Utf8Path) {
    let files = [
        (
            "go.mod",
            "module example.com/vendored\n\ngo 1.21\n\nrequire (\n\texample.net/greeting v1.3.0\n\texample.org/shout v0.2.0\n)\n\n\
             replace example.org/shout v0.2.0 => ./third_party/shout\n",
        ),
        (
            "third_party/shout/go.mod",
            "module example.org/shout\n\ngo 1.21\n",
        ),
        (
            "third_party/shout/shout.go",
            "// Package shout is a vendored third-party module.\npackage shout\n\n\
             import \"strings\"\n\n// Loud upper-cases s.\nfunc Loud(s string) string { return strings.ToUpper(s) + \"!\" }\n",
        ),
        (
            "go.sum",
            "example.net/greeting v1.3.0 h1:7aU5VqVG3SMr3HjBg6dPWbPBVO3vPmMCjYm4bAbQ8Hc=\n\
             example.net/greeting v1.3.0/go.mod h1:1pN4TSHnVTqQ2l6V0rSGQn5aTjBVUzHgTtqHC3wErwY=\n",
        ),
        (
            "vendor/modules.txt",
            "# example.net/greeting v1.3.0\n## explicit; go 1.21\nexample.net/greeting\n\
             # example.org/shout v0.2.0 => ./third_party/shout\n## explicit; go 1.21\nexample.org/shout\n",
        ),
        (
            "vendor/example.net/greeting/greeting.go",
            "// Package greeting is a vendored third-party module.\npackage greeting\n\n\
             // For greets name.\nfunc For(name string) string { return \"hello, \" + name }\n",
        ),
        (
            "vendor/example.org/shout/shout.go",
            "// Package shout is a vendored third-party module.\npackage shout\n\n\
             import \"strings\"\n\n// Loud upper-cases s.\nfunc Loud(s string) string { return strings.ToUpper(s) + \"!\" }\n",
        ),
        (
            "cmd/hello/main.go",
            "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.net/greeting\"\n\t\"example.org/shout\"\n)\n\n\
             var version = \"dev\"\n\n\
             func main() { fmt.Println(shout.Loud(greeting.For(\"vendored\")), version) }\n",
        ),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Runs git in `dir` with a fixed identity; returns its stdout.
pub fn git(dir: &Utf8Path, args: &[&str]) -> String {
    run_ok(
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "gopack tests")
            .env("GIT_AUTHOR_EMAIL", "tests@gopack.invalid")
            .env("GIT_COMMITTER_NAME", "gopack tests")
            .env("GIT_COMMITTER_EMAIL", "tests@gopack.invalid"),
    )
}

/// `git status --porcelain --ignored=no` of the repository at `dir`: what a run must leave as it was.
pub fn git_status(dir: &Utf8Path) -> String {
    git(dir, &["status", "--porcelain", "--untracked-files=all"])
}

/// `(app, digest)` for each app `pack` printed on stdout: its `--json` result
/// lines, or the first line of each app's text (`name version  sha256:...`).
pub fn packed_digests(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            if let Ok(result) = serde_json::from_str::<serde_json::Value>(line) {
                let name = result["name"].as_str()?.to_string();
                let digest = result["digest"]
                    .as_str()
                    .or(result["image_id"].as_str())?
                    .to_string();
                return Some((name, digest));
            }
            if line.starts_with(char::is_whitespace) {
                return None;
            }
            let mut words = line.split_whitespace();
            let name = words.next()?.to_string();
            let digest = words.last().filter(|d| d.starts_with("sha256:"))?;
            Some((name, digest.to_string()))
        })
        .collect()
}

/// A workspace with examples/hello as the app `hello` (linux/amd64, version 1.0.0).
pub fn hello_workspace() -> TestWorkspace {
    let ws = TestWorkspace::new(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\n",
    );
    ws.copy("examples/hello", "hello");
    ws
}

/// `pack --json`, which must exit 0: the printed digest and the events (stderr).
pub fn pack_json(ws: &TestWorkspace) -> (String, String) {
    let out = ws.xtask(["pack", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let digest = packed_digests(&stdout)
        .pop()
        .unwrap_or_else(|| panic!("pack prints the digest: {stdout}"))
        .1;
    (digest, String::from_utf8_lossy(&out.stderr).into_owned())
}
