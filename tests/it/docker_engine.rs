//! The docker engine against the real docker engine, with no image pulled.
//!
//! The builder image is made here: a root filesystem with the host's Go
//! toolchain (at the same path as on the host, with a build cache warmed for
//! the fixtures so that in-image builds link rather than compile the standard
//! library), Debian's busybox-static, the host's CA bundle and zoneinfo, the
//! fixtures' module proxy folder (GOPROXY=file:///goproxy), and stubs for
//! `apk`, `adduser` and `addgroup`: this builder has no package manager and
//! busybox-static lacks the account applets, and the final image's passwd and
//! group are written by printf anyway. It is `docker import`ed once per
//! content (tag `gopack-test-builder:<hash>`) and kept between runs.
//!
//! Tests take one lock so that builds do not compete on small machines, and
//! remove every image they made (app tags, deps tags, dangling stage images).

use crate::support::*;
use gopack_core::cache::KeyHasher;
use gopack_core::config::Overrides;
use gopack_core::engine::{DockerEngine, DockerOptions, OciEngine};
use gopack_core::report::{Event, Recorder};
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The GOROOT of the `go` the tests use, as go reports it (any install, any version).
fn goroot() -> String {
    static ROOT: OnceLock<String> = OnceLock::new();
    ROOT.get_or_init(|| {
        let go = go_bin_dir().join("go");
        run_ok(Command::new(go.as_str()).args(["env", "GOROOT"]))
            .trim()
            .to_string()
    })
    .clone()
}

/// `go env GOHOSTOS`_`GOHOSTARCH`: the folder of go's tools under pkg/tool.
fn go_tool_dir() -> String {
    let go = go_bin_dir().join("go");
    run_ok(Command::new(go.as_str()).args(["env", "GOHOSTOS", "GOHOSTARCH"]))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
}
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "sed", "printf", "mkdir", "chmod", "cp", "rm", "find", "echo", "cat", "ls", "env",
    "true", "test", "[",
];

pub(crate) fn docker() -> Command {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        require_tool("docker", "docker.io");
        let out = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "these tests need a running docker engine: start it (`dockerd &`)\n{}",
            text(&out)
        );
    });
    Command::new("docker")
}

/// The test builder image, built once per content.
pub(crate) fn builder_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(make_builder_image).clone()
}

fn make_builder_image() -> String {
    init();
    let proxy = module_proxy();
    let mut hasher = KeyHasher::new("gopack-test-builder/v1");
    let goroot = goroot();
    hasher.field(
        "goversion",
        &std::fs::read(format!("{goroot}/VERSION")).unwrap(),
    );
    hasher.field("busybox", &std::fs::read(BUSYBOX).unwrap());
    hasher.field(
        "ca",
        &std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap(),
    );
    hasher.field(
        "tz",
        &std::fs::read("/usr/share/zoneinfo/tzdata.zi").unwrap_or_default(),
    );
    for file in walk(&proxy) {
        hasher.field(file.as_str(), &std::fs::read(proxy.join(&file)).unwrap());
    }
    let tag = format!("gopack-test-builder:{}", &hasher.finish()[..16]);
    let inspect = docker().args(["image", "inspect", &tag]).output().unwrap();
    if inspect.status.success() {
        return tag;
    }

    let dir = tempfile::tempdir().unwrap();
    let root = camino::Utf8Path::from_path(dir.path())
        .unwrap()
        .join("rootfs");
    let image_goroot = format!("{root}{goroot}");
    std::fs::create_dir_all(&image_goroot).unwrap();
    // The toolchain's whole GOROOT that `go build` reads (links dereferenced), no tests.
    let tools = format!("pkg/tool/{}", go_tool_dir());
    run_ok(Command::new("sh").arg("-c").arg(format!(
        "tar -C {goroot} -chf - --exclude=testdata --exclude='*_test.go' \
         VERSION go.env bin pkg/include {tools}/compile {tools}/link \
         {tools}/asm {tools}/cgo {tools}/buildid \
         {tools}/pack src | tar -C {image_goroot} -xf -"
    )));
    for folder in [
        "bin",
        "sbin",
        "etc/ssl/certs",
        "etc/apk",
        "usr/share",
        "tmp",
        "root",
        "go",
    ] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let stub =
        "#!/bin/sh\n# gopack's test builder: no package manager, no account tools.\nexit 0\n";
    for name in ["apk", "adduser", "addgroup"] {
        let path = root.join("sbin").join(name);
        std::fs::write(&path, stub).unwrap();
        run_ok(Command::new("chmod").arg("0755").arg(path.as_str()));
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(
        root.join("etc/apk/repositories"),
        "https://dl-cdn.alpinelinux.org/alpine/v3.20/main\n",
    )
    .unwrap();
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        root.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .unwrap();
    run_ok(
        Command::new("cp")
            .args(["-a", "/usr/share/zoneinfo"])
            .arg(root.join("usr/share").as_str()),
    );
    copy_dir(&proxy, &root.join("goproxy"));
    run_ok(
        Command::new("chmod")
            .args(["1777"])
            .arg(root.join("tmp").as_str()),
    );

    // Warm the build cache with the fixtures' packages, as the image will build them.
    let gocache = root.join("root/.cache/go-build");
    let modcache = tempfile::tempdir().unwrap();
    for fixture in ["examples/hello", "tests/fixtures/deps-app"] {
        run_ok(
            Command::new(format!("{}/bin/go", goroot))
                .args(["build", "-trimpath", "-o", "/dev/null", "."])
                .current_dir(repo_root().join(fixture))
                .env("GOCACHE", gocache.as_str())
                .env("GOMODCACHE", modcache.path())
                .env("CGO_ENABLED", "0")
                .env("GOOS", "linux")
                .env("GOARCH", "amd64"),
        );
    }
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(modcache.path())
        .status();

    let archive = root.with_file_name("rootfs.tar");
    run_ok(Command::new("tar").args([
        "--numeric-owner",
        "--owner=0",
        "--group=0",
        "-C",
        root.as_str(),
        "-cf",
        archive.as_str(),
        ".",
    ]));
    let changes = [
        format!("ENV PATH={goroot}/bin:/go/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "ENV HOME=/root".into(),
        "ENV GOPATH=/go".into(),
        "ENV GOCACHE=/root/.cache/go-build".into(),
        "ENV GOTOOLCHAIN=local".into(),
        "ENV GOPROXY=file:///goproxy".into(),
        "ENV GOSUMDB=off".into(),
        "ENV GOFLAGS=-mod=mod".into(),
    ];
    let mut import = docker();
    import.arg("import");
    for change in &changes {
        import.args(["--change", change]);
    }
    run_ok(import.args([archive.as_str(), tag.as_str()]));
    tag
}

/// The test builder plus what the idioms' builder installs for cgo (`apk add gcc
/// musl-dev`): the host's gcc driver, cc1, collect2 and binutils with the shared
/// libraries they need (found with `ldd`), musl's headers, crt files and libc.a,
/// and a `gcc` that links against musl, as alpine's does. Built once per content.
fn cgo_builder_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(make_cgo_builder_image).clone()
}

fn make_cgo_builder_image() -> String {
    for (tool, package) in [
        ("gcc", "gcc"),
        ("musl-gcc", "musl-tools"),
        ("ldd", "libc-bin"),
    ] {
        require_tool(tool, package);
    }
    let base = builder_image();
    // The host's gcc, whatever its version and target: its driver, its
    // library folder, its assembler and linker.
    let gcc = |arg: &str| run_ok(Command::new("gcc").arg(arg)).trim().to_string();
    let triple = gcc("-dumpmachine");
    let arch = triple.split('-').next().unwrap().to_string();
    let gcc_lib = camino::Utf8PathBuf::from(gcc("-print-libgcc-file-name"))
        .parent()
        .unwrap()
        .to_string();
    let driver = std::fs::canonicalize(tool_path("gcc", "gcc"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let musl = format!("{arch}-linux-musl");
    let mut files: Vec<(String, String)> = vec![
        (driver, "/usr/bin/gcc-real".into()),
        (format!("/usr/bin/{triple}-as"), "/usr/bin/as".into()),
        (format!("/usr/bin/{triple}-ld.bfd"), "/usr/bin/ld".into()),
    ];
    for name in [
        "cc1",
        "collect2",
        "liblto_plugin.so",
        "lto-wrapper",
        "libgcc.a",
        "libgcc_eh.a",
    ] {
        files.push((format!("{gcc_lib}/{name}"), format!("{gcc_lib}/{name}")));
    }
    let mut trees = vec![
        format!("{gcc_lib}/include"),
        format!("/usr/include/{musl}"),
        format!("/usr/lib/{musl}"),
    ];
    for entry in std::fs::read_dir(&gcc_lib).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("crt") && name.ends_with(".o") {
            files.push((format!("{gcc_lib}/{name}"), format!("{gcc_lib}/{name}")));
        }
    }
    // The shared libraries of the programs, and the loader.
    let programs: Vec<String> = files
        .iter()
        .filter(|(from, _)| !from.ends_with(".a") && !from.ends_with(".o"))
        .map(|(from, _)| from.clone())
        .collect();
    let mut libraries = BTreeSet::new();
    for program in &programs {
        let out = Command::new("ldd").arg(program).output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line.trim(),
            };
            let path = path.split(" (").next().unwrap().trim();
            if path.starts_with('/') {
                libraries.insert(path.to_string());
            }
        }
    }
    files.extend(libraries.iter().map(|l| (l.clone(), l.clone())));

    let mut hasher = KeyHasher::new("gopack-test-cgo-builder/v1");
    hasher.text("base", &base);
    for (from, to) in &files {
        hasher.text("to", to);
        hasher.field("bytes", &std::fs::read(from).unwrap());
    }
    for tree in &trees {
        hasher.text("tree", tree);
    }
    let tag = format!("gopack-test-cgo-builder:{}", &hasher.finish()[..16]);
    if docker()
        .args(["image", "inspect", &tag])
        .output()
        .unwrap()
        .status
        .success()
    {
        return tag;
    }
    let dir = tempfile::tempdir().unwrap();
    let context = camino::Utf8Path::from_path(dir.path()).unwrap();
    let root = context.join("rootfs");
    for (from, to) in &files {
        let target = root.join(to.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from, &target).unwrap();
    }
    trees.sort();
    for tree in &trees {
        let target = root.join(tree.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        run_ok(Command::new("cp").args(["-rL", tree, target.as_str()]));
    }
    // Alpine's gcc targets musl; this one does through musl-gcc's specs.
    let gcc = root.join("usr/bin/gcc");
    std::fs::write(
        &gcc,
        format!("#!/bin/sh\nexec /usr/bin/gcc-real \"$@\" -specs /usr/lib/{musl}/musl-gcc.specs\n"),
    )
    .unwrap();
    run_ok(Command::new("chmod").arg("0755").arg(gcc.as_str()));
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nCOPY rootfs/ /\n"),
    )
    .unwrap();
    run_ok(docker().args(["build", "--quiet", "--tag", &tag, context.as_str()]));
    tag
}

fn walk(root: &camino::Utf8Path) -> Vec<camino::Utf8PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in dir.read_dir_utf8().unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path().to_path_buf());
            } else {
                files.push(entry.path().strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// Holds the docker lock for a test and removes the test's images when dropped.
pub(crate) struct DockerTest {
    pub(crate) app: String,
    dangling_before: BTreeSet<String>,
    _lock: MutexGuard<'static, ()>,
}

impl DockerTest {
    pub(crate) fn new(label: &str) -> DockerTest {
        static LOCK: Mutex<()> = Mutex::new(());
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        builder_image();
        DockerTest {
            app: format!("gopack-dk-{label}-{}", std::process::id()),
            dangling_before: dangling(),
            _lock: lock,
        }
    }

    /// A workspace with one app (this test's name) at `dir`, built with the test builder.
    pub(crate) fn workspace(&self, fixture: &str, extra: &str) -> TestWorkspace {
        let ws = TestWorkspace::new(&format!(
            r#"
[[workspace.metadata.gopack.apps]]
name = "{}"
path = "app"
platforms = ["linux/amd64"]
binary-path = "/go/bin/app"
version-variable = "main.version"
builder-image = "{}"
{extra}
"#,
            self.app,
            builder_image()
        ));
        ws.copy(fixture, "app");
        ws
    }
}

impl Drop for DockerTest {
    fn drop(&mut self) {
        let listed = docker()
            .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
            .unwrap();
        let ours: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter(|r| {
                r.starts_with(&format!("{}:", self.app))
                    || r.starts_with(&format!("gopack-deps/{}:", self.app))
            })
            .map(str::to_string)
            .collect();
        if !ours.is_empty() {
            let _ = docker()
                .args(["image", "rm", "--force"])
                .args(&ours)
                .output();
        }
        let new: Vec<String> = dangling()
            .difference(&self.dangling_before)
            .cloned()
            .collect();
        if !new.is_empty() {
            let _ = docker().args(["image", "rm"]).args(&new).output();
        }
    }
}

fn dangling() -> BTreeSet<String> {
    let out = docker()
        .args([
            "image",
            "ls",
            "--quiet",
            "--no-trunc",
            "--filter",
            "dangling=true",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

pub(crate) fn image_id(reference: &str) -> Option<String> {
    let out = docker()
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// An image the docker engine made, with the report of its verify.
struct VerifiedPack {
    packed: gopack_core::engine::DockerPacked,
    report: gopack_core::verify::Report,
}

impl std::ops::Deref for VerifiedPack {
    type Target = gopack_core::engine::DockerPacked;
    fn deref(&self) -> &Self::Target {
        &self.packed
    }
}

/// Packs with the docker engine through the library, verifies the untagged
/// image as `pack` does, then tags it; returns the result and the events.
fn docker_pack(ws: &TestWorkspace) -> (VerifiedPack, Vec<Event>) {
    let workspace = ws.workspace();
    let recorder = Recorder::default();
    let engine = DockerEngine::new(&workspace, DockerOptions::default(), &recorder).unwrap();
    assert!(
        !engine.uses_buildx(),
        "this test covers the classic builder; the cache-mount rendering is a snapshot test"
    );
    let app = workspace
        .select(&[], &Overrides::default())
        .unwrap()
        .remove(0);
    let packed = engine.pack(&app).unwrap_or_else(|e| panic!("{e}"));
    let expect = gopack_core::verify::Expectations {
        platforms: vec![packed.platform.clone()],
        ..gopack_core::verify::Expectations::for_app(&app)
    };
    let report = gopack_core::verify::verify(
        &gopack_core::verify::ImageSource::Docker(packed.image_id.clone()),
        &expect,
    )
    .unwrap();
    engine.tag(&packed).unwrap();
    (VerifiedPack { packed, report }, recorder.events())
}

fn ran_go_mod_download(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(e, Event::Output { tool, line } if tool == "docker" && line.contains("go mod download"))
    })
}

#[test]
fn pack_runs_as_the_unprivileged_user_and_passes_verify() {
    let t = DockerTest::new("hello");
    let ws = t.workspace("examples/hello", "");
    let out = ws.xtask(["pack", &t.app, "--engine", "docker"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("{} dev  sha256:", t.app)),
        "{}",
        text(&out)
    );
    assert!(
        stdout.ends_with(&format!("next      docker run --rm {}:dev\n", t.app)),
        "{}",
        text(&out)
    );
    // With --json: one result line, the image id instead of a digest (docs/ci.md).
    let out = ws.xtask(["pack", &t.app, "--engine", "docker", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["engine"], "docker", "{result}");
    assert!(result["digest"].is_null(), "{result}");
    assert_eq!(
        image_id(&format!("{}:dev", t.app)),
        result["image_id"].as_str().map(String::from)
    );
    assert_eq!(
        result["loaded"],
        serde_json::json!([format!("{}:dev", t.app), format!("{}:latest", t.app)])
    );
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        serde_json::from_str::<serde_json::Value>(line).expect(line);
    }
    let run = docker()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            &format!("{}:latest", t.app),
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(said.contains("hello from gopack dev"), "{said}");
    assert!(said.contains("uid=10001 gid=10001"), "{said}");
    let user = docker()
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.Entrypoint}}",
        ])
        .arg(format!("{}:dev", t.app))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&user.stdout).trim(),
        r#"10001:10001 ["/go/bin/app"]"#
    );
    // pack ran verify; check the report through the library too.
    let (packed, _) = docker_pack(&ws);
    assert!(packed.report.passed(), "{}", packed.report.table());

    // `run` with the app's engine (docker): built (from the layer cache), run, exit code 0.
    ws.set_config(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{}\"\npath = \"app\"\n\
         platforms = [\"linux/amd64\"]\nbinary-path = \"/go/bin/app\"\n\
         version-variable = \"main.version\"\nbuilder-image = \"{}\"\nengine = \"docker\"\n",
        t.app,
        builder_image()
    ));
    let out = ws.xtask(["run", &t.app]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("hello from gopack dev\nuid=10001 gid=10001\n"),
        "{said}"
    );
}

/// cgo = "static" with the idioms' builder (gcc and musl-dev installed): the
/// binary is static, runs as the app user, and the image passes verify.
#[test]
fn static_cgo_app_builds_with_gcc_and_musl_in_the_builder() {
    let t = DockerTest::new("cgo");
    let ws = TestWorkspace::new(&format!(
        r#"
[[workspace.metadata.gopack.apps]]
name = "{}"
path = "app"
platforms = ["linux/amd64"]
builder-image = "{}"
cgo = "static"
"#,
        t.app,
        cgo_builder_image()
    ));
    ws.copy("tests/fixtures/verify/cgo", "app");
    let out = ws.xtask(["dockerfile", &t.app]);
    assert!(out.status.success(), "{}", text(&out));
    let dockerfile = String::from_utf8_lossy(&out.stdout);
    assert!(
        dockerfile.contains("apk add --no-cache git ca-certificates tzdata gcc musl-dev")
            && dockerfile.contains("CGO_ENABLED=1")
            && dockerfile.contains("-extldflags=-static")
            && dockerfile.contains("-tags=netgo,osusergo"),
        "{dockerfile}"
    );
    let (packed, _) = docker_pack(&ws);
    assert!(packed.report.passed(), "{}", packed.report.table());
    for (id, status) in [
        ("elf.static", gopack_core::verify::Status::Pass),
        ("elf.loadable", gopack_core::verify::Status::Pass),
        ("go.cgo", gopack_core::verify::Status::Pass),
    ] {
        let check = packed.report.checks_named(id).next().unwrap();
        assert_eq!(check.status, status, "{}", packed.report.table());
    }
    let run = docker()
        .args(["run", "--rm", "--network", "none", &packed.references[0]])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "cgo says 42");

    // cgo = "dynamic" is the oci engine's: the docker engine says so.
    let dynamic = ws.root.join("Cargo.toml");
    let toml = std::fs::read_to_string(&dynamic).unwrap();
    std::fs::write(
        &dynamic,
        toml.replace("cgo = \"static\"", "cgo = \"dynamic\""),
    )
    .unwrap();
    let out = ws.xtask(["dockerfile", &t.app]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("engine = \"oci\""),
        "{}",
        text(&out)
    );
}

#[test]
fn deps_image_is_reused_until_go_sum_changes() {
    let t = DockerTest::new("deps");
    let ws = t.workspace("tests/fixtures/deps-app", "");
    let (first, events) = docker_pack(&ws);
    assert!(!first.deps_cached);
    assert!(ran_go_mod_download(&events), "{events:?}");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::DepsDownload { .. })));
    let deps_id = image_id(&first.deps_tag).expect("the deps tag exists");
    let run = docker()
        .args(["run", "--rm", "--network", "none", &first.references[0]])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "hello, depsapp, from example.com/greet",
        "{}",
        text(&run)
    );

    // A source change: same deps tag and image, no download, a new app image.
    let main = ws.root.join("app/main.go");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, source.replace("\"depsapp\"", "\"changed\"")).unwrap();
    let (second, events) = docker_pack(&ws);
    assert!(second.deps_cached);
    assert_eq!(second.deps_tag, first.deps_tag);
    assert_eq!(image_id(&second.deps_tag).as_ref(), Some(&deps_id));
    assert!(!ran_go_mod_download(&events), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::DepsCached { .. })));
    assert_ne!(second.image_id, first.image_id);
    let run = docker()
        .args(["run", "--rm", "--network", "none", &second.references[0]])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&run.stdout).contains("hello, changed"));

    // A go.sum change (a blank line is still valid): a new deps image, downloaded again.
    let go_sum = ws.root.join("app/go.sum");
    let mut sums = std::fs::read_to_string(&go_sum).unwrap();
    sums.push('\n');
    std::fs::write(&go_sum, sums).unwrap();
    let (third, events) = docker_pack(&ws);
    assert!(!third.deps_cached);
    assert_ne!(third.deps_tag, first.deps_tag);
    assert!(ran_go_mod_download(&events), "{events:?}");
    assert_ne!(image_id(&third.deps_tag), Some(deps_id));
}

/// `(path, type and mode, owner, link target)` of every entry of an image's layers.
fn listing_of_layers(layers: &[camino::Utf8PathBuf]) -> BTreeSet<String> {
    let mut entries = BTreeSet::new();
    for layer in layers {
        let out = run_ok(Command::new("tar").args(["--numeric-owner", "-tvf", layer.as_str()]));
        for line in out.lines() {
            // drwxr-xr-x 0/0  0 2024-01-01 00:00 etc/   (symlinks: "name -> target")
            let fields: Vec<&str> = line.splitn(6, char::is_whitespace).collect();
            let words: Vec<&str> = line.split_whitespace().collect();
            let name_and_link = words[5..].join(" ");
            let name = name_and_link
                .trim_start_matches("./")
                .trim_end_matches('/')
                .replace("/ -> ", " -> ");
            if name.is_empty() || name == "." {
                continue;
            }
            entries.insert(format!("{} {} {}", fields[0], words[1], name));
        }
    }
    entries
}

#[test]
fn both_engines_make_the_same_tree_and_binary() {
    let t = DockerTest::new("same");
    let ws = t.workspace("examples/hello", "");
    let workspace = ws.workspace();
    let app = workspace
        .select(&[], &Overrides::default())
        .unwrap()
        .remove(0);
    let recorder = Recorder::default();
    let engine = OciEngine::new(&workspace, &recorder).unwrap();
    let oci = engine.pack(&app).unwrap();
    let outputs = gopack_core::publish::Outputs::of(&workspace, &app);
    outputs.write(engine.cache(), &oci, &recorder).unwrap();
    let (packed, _) = docker_pack(&ws);

    let scratch = tempfile::tempdir().unwrap();
    let scratch = camino::Utf8Path::from_path(scratch.path())
        .unwrap()
        .to_path_buf();
    // The oci engine's layers, from its layout.
    let oci_layers: Vec<camino::Utf8PathBuf> = oci.image.platforms[0]
        .layers
        .iter()
        .map(|blob| {
            let hex = blob.digest.trim_start_matches("sha256:");
            outputs.layout.join("blobs/sha256").join(hex)
        })
        .collect();
    // The docker engine's, from `docker save`.
    let saved = scratch.join("saved");
    std::fs::create_dir_all(&saved).unwrap();
    run_ok(
        docker()
            .args(["save", "--output"])
            .arg(saved.join("image.tar").as_str())
            .arg(&packed.references[0]),
    );
    run_ok(Command::new("tar").args([
        "-C",
        saved.as_str(),
        "-xf",
        saved.join("image.tar").as_str(),
    ]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(saved.join("manifest.json")).unwrap()).unwrap();
    let docker_layers: Vec<camino::Utf8PathBuf> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| saved.join(l.as_str().unwrap()))
        .collect();
    assert_eq!(docker_layers.len(), 2, "base and binary: {manifest}");

    let from_oci = listing_of_layers(&oci_layers);
    let from_docker = listing_of_layers(&docker_layers);
    let only_oci: Vec<_> = from_oci.difference(&from_docker).collect();
    let only_docker: Vec<_> = from_docker.difference(&from_oci).collect();
    assert!(
        only_oci.is_empty() && only_docker.is_empty(),
        "the engines' trees differ\nonly oci: {only_oci:#?}\nonly docker: {only_docker:#?}"
    );
    assert!(
        from_docker
            .iter()
            .any(|e| e.starts_with("drwxrwxrwt 0/0 tmp")),
        "{from_docker:?}"
    );
    assert!(
        from_docker.contains("-rwxr-xr-x 0/0 go/bin/app"),
        "{from_docker:?}"
    );

    let extracted = scratch.join("bin");
    std::fs::create_dir_all(&extracted).unwrap();
    run_ok(Command::new("tar").args([
        "-C",
        extracted.as_str(),
        "-xf",
        docker_layers[1].as_str(),
        "go/bin/app",
    ]));
    let from_docker = std::fs::read(extracted.join("go/bin/app")).unwrap();
    let from_host = std::fs::read(
        workspace
            .out_dir()
            .join(format!("{0}/bin/linux_amd64/{0}", t.app)),
    )
    .unwrap();
    assert!(
        from_docker == from_host,
        "the binaries differ ({} and {} bytes)",
        from_docker.len(),
        from_host.len()
    );
}

/// The rendered Dockerfiles, compared with committed files. `GOPACK_BLESS=1` rewrites them.
#[test]
fn dockerfile_snapshots_and_check() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
platforms = ["linux/amd64", "linux/arm64"]
version-variable = "main.version"

[[workspace.metadata.gopack.apps]]
name = "full"
path = "deps"
platforms = ["linux/arm64"]
builder-image = "registry.example.com/go:1.23-alpine"
apk-mirror = "https://mirrors.example.com"
cgo = true
apk-packages = ["sqlite-dev"]
tzdata = "embed"
timezone = "Europe/Berlin"
user = { name = "svc", uid = 2000, gid = 3000 }
args = ["serve", "--port", "8080"]
expose = ["8080/tcp"]
image-env = { MODE = "prod $x" }
labels = { "com.example.team" = "core" }
"#,
    );
    ws.copy("examples/hello", "hello");
    ws.copy("tests/fixtures/deps-app", "deps");
    let snapshots = repo_root().join("tests/fixtures/docker");
    for (name, args) in [
        ("hello.Dockerfile", vec!["dockerfile", "hello"]),
        (
            "hello.cache-mounts.Dockerfile",
            vec!["dockerfile", "hello", "--cache-mounts"],
        ),
        (
            "hello.classic.Dockerfile",
            vec!["dockerfile", "hello", "--classic", "--app-version", "1.2.0"],
        ),
        ("full.Dockerfile", vec!["dockerfile", "full"]),
    ] {
        let out = ws.xtask(&args);
        assert!(out.status.success(), "{}", text(&out));
        let rendered = String::from_utf8(out.stdout).unwrap();
        let path = snapshots.join(name);
        if std::env::var_os("GOPACK_BLESS").is_some() {
            std::fs::create_dir_all(&snapshots).unwrap();
            std::fs::write(&path, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run with GOPACK_BLESS=1 to write it)"));
        assert!(
            rendered == expected,
            "{name} changed; if that is intended, run with GOPACK_BLESS=1\n{}",
            gopack_core::engine::dockerfile::diff(&expected, &rendered)
        );
    }

    // One file for every platform, in the common form: the builder on the build
    // platform, the target from BuildKit's arguments; the header names the context.
    let hello = std::fs::read_to_string(snapshots.join("hello.Dockerfile")).unwrap();
    for expected in [
        "FROM --platform=$BUILDPLATFORM golang:1.21-alpine AS deps",
        "ARG TARGETOS TARGETARCH\n",
        "GOOS=\"${TARGETOS}\" GOARCH=\"${TARGETARCH}\"",
        "# Context:    hello (the module folder",
        "docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=<version> -t hello:<version> hello",
    ] {
        assert!(hello.contains(expected), "{expected}\n{hello}");
    }
    assert!(!hello.contains("ARG BUILDPLATFORM"), "{hello}");
    let classic = std::fs::read_to_string(snapshots.join("hello.classic.Dockerfile")).unwrap();
    let first_from = classic.find("\nFROM ").unwrap();
    assert!(
        classic[..first_from].contains("\nARG BUILDPLATFORM\n"),
        "the classic builder expands only ARGs declared before the first FROM:\n{classic}"
    );
    assert!(classic.contains("ARG VERSION=1.2.0"), "{classic}");
    assert!(
        classic.contains("--build-arg BUILDPLATFORM=linux/amd64 --build-arg TARGETOS=linux --build-arg TARGETARCH=amd64 -t hello:1.2.0 hello"),
        "{classic}"
    );
    // A 32-bit arm platform: GOARM from TARGETVARIANT, which the classic form passes.
    let out = ws.xtask([
        "dockerfile",
        "hello",
        "--classic",
        "--platform",
        "linux/arm/v7",
        "--platform",
        "linux/amd64",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let arm = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "ARG TARGETOS TARGETARCH TARGETVARIANT\n",
        "GOARM=\"${TARGETVARIANT#v}\"",
        "--build-arg TARGETARCH=arm --build-arg TARGETVARIANT=v7",
    ] {
        assert!(arm.contains(expected), "{expected}\n{arm}");
    }
    // cgo builds on the target platform: no cross-compiling builder.
    let full = std::fs::read_to_string(snapshots.join("full.Dockerfile")).unwrap();
    assert!(
        full.contains("\nFROM registry.example.com/go:1.23-alpine AS deps"),
        "{full}"
    );

    // The .dockerignore is written on request only, and never over a file gopack did not write.
    std::fs::create_dir_all(ws.root.join("hello/.git")).unwrap();
    std::fs::create_dir_all(ws.root.join("hello/tools/sub")).unwrap();
    std::fs::write(ws.root.join("hello/tools/sub/go.mod"), "module x\n").unwrap();
    let ignore = ws.root.join("hello/.dockerignore");
    assert!(!ignore.exists());
    let out = ws.xtask(["dockerfile", "hello", "--dockerignore", ignore.as_str()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        hello,
        "the Dockerfile is still printed"
    );
    let written = std::fs::read_to_string(&ignore).unwrap();
    assert!(written.starts_with("# generated by gopack:"), "{written}");
    for line in [".git", "tools/sub"] {
        assert!(written.lines().any(|l| l == line), "{line}:\n{written}");
    }
    assert!(!written.lines().any(|l| l == "tools"), "{written}");
    std::fs::write(&ignore, "mine\n").unwrap();
    let out = ws.xtask(["dockerfile", "hello", "--dockerignore", ignore.as_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not written by gopack"));
    assert_eq!(std::fs::read_to_string(&ignore).unwrap(), "mine\n");
    std::fs::remove_dir_all(ws.root.join("hello/.git")).unwrap();
    std::fs::remove_dir_all(ws.root.join("hello/tools")).unwrap();
    std::fs::remove_file(&ignore).unwrap();

    // --check passes on an up-to-date file and fails with the difference on a stale one.
    let committed = ws.root.join("Dockerfile");
    std::fs::copy(snapshots.join("hello.Dockerfile"), &committed).unwrap();
    let out = ws.xtask(["dockerfile", "hello", "--check", committed.as_str()]);
    assert!(out.status.success(), "{}", text(&out));
    let stale = std::fs::read_to_string(&committed)
        .unwrap()
        .replace("ARG USER_ID=10001", "ARG USER_ID=1000");
    std::fs::write(&committed, stale).unwrap();
    let out = ws.xtask(["dockerfile", "hello", "--check", committed.as_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("out of date"), "{stderr}");
    assert!(
        stderr.contains("- ") && stderr.contains("ARG USER_ID=1000"),
        "{stderr}"
    );
    assert!(
        stderr.contains("+ ") && stderr.contains("ARG USER_ID=10001"),
        "{stderr}"
    );
    assert!(stderr.contains("help: regenerate it"), "{stderr}");

    // Bad docker settings are config errors naming the key.
    for (extra, key) in [
        ("apk-mirror = \"ftp://x\"", "apk-mirror"),
        ("apk-packages = [\"a b\"]", "apk-packages[0]"),
        ("builder-image = \"golang 1.23\"", "builder-image"),
        ("engine = \"podman\"", "engine"),
    ] {
        ws.set_config(&format!(
            "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n{extra}\n"
        ));
        let out = ws.xtask(["dockerfile", "hello"]);
        assert!(!out.status.success(), "{extra}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("apps[0].{key}")),
            "{extra}: {stderr}"
        );
    }
}

#[test]
fn missing_builder_image_is_a_clear_error() {
    let t = DockerTest::new("nobuilder");
    let ws = t.workspace("examples/hello", "");
    ws.set_config(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{}\"\npath = \"app\"\nbuilder-image = \"gopack-test-missing/go:0.0\"\n",
        t.app
    ));
    let out = ws.xtask(["pack", "--engine", "docker"]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gopack-test-missing/go:0.0"), "{stderr}");
    assert!(stderr.contains("builder-image"), "{stderr}");

    let out = ws.xtask(["pack", "--engine", "docker", "--build-arg", "USER_ID=0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--uid"),
        "{}",
        text(&out)
    );
}

#[test]
fn vendored_app_builds_without_downloading() {
    let t = DockerTest::new("vendored");
    let ws = t.workspace("examples/hello", "main = \"cmd/hello\"");
    std::fs::remove_dir_all(ws.root.join("app")).unwrap();
    write_vendored_app(&ws.root.join("app"));
    git_commit_all(&ws.root);
    let before = git_status(&ws.root);
    let dockerfile = ws.xtask(["dockerfile", &t.app]);
    assert!(dockerfile.status.success(), "{}", text(&dockerfile));
    let dockerfile = String::from_utf8_lossy(&dockerfile.stdout);
    assert!(!dockerfile.contains("go mod download"), "{dockerfile}");
    assert!(dockerfile.contains("-mod=vendor"), "{dockerfile}");
    assert!(dockerfile.contains(" ./cmd/hello"), "{dockerfile}");

    let (packed, events) = docker_pack(&ws);
    assert!(!ran_go_mod_download(&events), "{events:?}");
    assert!(packed.report.passed(), "{}", packed.report.table());
    let run = docker()
        .args(["run", "--rm", "--network", "none", &packed.references[0]])
        .output()
        .unwrap();
    let head = git(&ws.root, &["rev-parse", "--short=7", "HEAD"]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        format!("HELLO, VENDORED! {}", head.trim()),
        "{}",
        text(&run)
    );
    assert_eq!(
        git_status(&ws.root),
        before,
        "the docker engine changed the source tree"
    );
}

#[test]
fn a_second_runner_pulls_the_deps_image_from_the_cache_registry() {
    use gopack_core::config::CacheRegistryMode;
    use gopack_core::remote_cache::RemoteCache;
    let t = DockerTest::new("remote");
    let registry = Registry::start();
    let ws = t.workspace("tests/fixtures/deps-app", "");
    let workspace = ws.workspace();
    let app = workspace
        .select(&[], &Overrides::default())
        .unwrap()
        .remove(0);
    let cache = gopack_core::cache::Cache::open(workspace.cache_dir()).unwrap();
    let pack = |events: &Recorder| {
        let remote = RemoteCache::new(
            &registry.address,
            "--cache-registry",
            CacheRegistryMode::ReadWrite,
            Default::default(),
            &cache,
            events,
        )
        .unwrap();
        let engine = DockerEngine::new(&workspace, DockerOptions::default(), events)
            .unwrap()
            .with_remote(Some(&remote));
        let packed = engine.pack(&app).unwrap_or_else(|e| panic!("{e}"));
        engine.tag(&packed).unwrap();
        remote.summary();
        packed
    };

    // Runner A: downloads the modules in the deps stage and pushes the deps image.
    let a = Recorder::default();
    let first = pack(&a);
    let events = a.events();
    assert!(ran_go_mod_download(&events), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::CacheRemoteMiss { kind, .. } if kind == "deps-image")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::CacheRemotePush { kind, .. } if kind == "deps-image")),
        "{events:?}"
    );

    // Runner B: the same engine without the deps image pulls it instead of
    // running `go mod download`.
    run_ok(docker().args(["rmi", &first.deps_tag]));
    assert_eq!(image_id(&first.deps_tag), None);
    let b = Recorder::default();
    let second = pack(&b);
    let events = b.events();
    assert!(second.deps_cached);
    assert!(!ran_go_mod_download(&events), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::CacheRemoteHit { kind, .. } if kind == "deps-image")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::CacheRemoteSummary { hits: 1, .. })),
        "{events:?}"
    );
    assert!(image_id(&second.deps_tag).is_some());
    // No alias under the registry's name is left in the engine.
    let listed = docker()
        .args(["image", "ls", "--format", "{{.Repository}}"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&registry.address),
        "{}",
        text(&listed)
    );
    let run = docker()
        .args(["run", "--rm", "--network", "none", &second.references[0]])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "hello, depsapp, from example.com/greet",
        "{}",
        text(&run)
    );
}
