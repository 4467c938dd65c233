//! Apps that need cgo, with the real gcc, a cross gcc, zlib1g-dev and the docker
//! engine: `cgo = "static"` and `cgo = "dynamic"` images run as the app user and
//! pass verify; the dynamic image holds exactly what `ldd` lists; a missing
//! library fails verify by name; arm64 builds with the configured cross compiler.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use gopack_core::verify::{verify, Expectations, ImageSource, Status};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

const LIBRARIES_LABEL: &str = "io.gopack.cgo.libraries";

fn require_c_tools() {
    require_tool("gcc", "gcc");
    require_tool("ldd", "libc-bin");
    assert!(
        Utf8Path::new("/usr/include/zlib.h").is_file(),
        "these tests need zlib's headers and libraries: apt-get install zlib1g-dev"
    );
}

/// The image of one platform in an app's OCI layout: (manifest, config).
fn image_of(layout: &Utf8Path, platform: &str) -> (Value, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let top = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut document = layout_json(layout, &top);
    if document["manifests"].is_array() {
        let digest = document["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                format!(
                    "{}/{}",
                    m["platform"]["os"].as_str().unwrap_or(""),
                    m["platform"]["architecture"].as_str().unwrap_or("")
                ) == platform
            })
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        document = layout_json(layout, &digest);
    }
    let config = layout_json(layout, document["config"]["digest"].as_str().unwrap());
    (document, config)
}

/// Entries of a gzip layer: path -> (is a regular file, symlink target).
fn layer_entries(layer: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string(),
                e.header().entry_type(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
            )
        })
        .collect()
}

fn image_size(manifest: &Value) -> u64 {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum()
}

/// `ldd`'s answer for a binary: the paths it resolves, the loader included.
fn ldd(binary: &Utf8Path) -> BTreeSet<String> {
    let out = run_ok(Command::new("ldd").arg(binary.as_str()));
    out.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split(" (").next().unwrap().trim();
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

fn docker_run(image: &str) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", image])
        .output()
        .unwrap();
    assert!(out.status.success(), "{image}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn remove_images(name: &str) {
    let images = run_ok(Command::new("docker").args([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        name,
    ]));
    for image in images.lines() {
        let _ = Command::new("docker")
            .args(["rmi", "--force", image])
            .output();
    }
}

#[test]
fn static_and_dynamic_cgo_images_run_verify_and_hold_what_ldd_lists() {
    require_c_tools();
    docker_engine();
    let pid = std::process::id();
    let (static_app, dynamic_app) = (
        format!("gopack-test-cgo-static-{pid}"),
        format!("gopack-test-cgo-dynamic-{pid}"),
    );
    let ws = TestWorkspace::new(&format!(
        r#"
[[workspace.metadata.gopack.apps]]
name = "{static_app}"
path = "zlib"
platforms = ["linux/amd64"]
cgo = "static"
# Debian's zlib1g-dev is built for glibc: link it with gcc (musl-gcc has no zlib).
cc = {{ "linux/amd64" = "gcc" }}

[[workspace.metadata.gopack.apps]]
name = "{dynamic_app}"
path = "zlib"
platforms = ["linux/amd64"]
cgo = "dynamic"
"#
    ));
    ws.copy("tests/fixtures/cgo-zlib", "zlib");
    let out = ws.xtask(["pack", "--load", "--verbose", &static_app, &dynamic_app]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    // --verbose prints the dynamic binary's libraries.
    assert!(
        shown.contains("Libraries") && shown.contains("libz.so.1 => "),
        "{shown}"
    );

    for app in [&static_app, &dynamic_app] {
        let output = docker_run(&format!("{app}:latest"));
        assert!(
            output.contains("zlib 1.") && output.contains("uid 10001"),
            "{app}: {output}"
        );
    }

    let out_dir = ws.root.join("target/gopack");
    let static_layout = out_dir.join(&static_app).join("oci");
    let dynamic_layout = out_dir.join(&dynamic_app).join("oci");
    let (static_manifest, static_config) = image_of(&static_layout, "linux/amd64");
    let (dynamic_manifest, dynamic_config) = image_of(&dynamic_layout, "linux/amd64");
    eprintln!(
        "image sizes (layers as stored): static {} bytes, dynamic {} bytes",
        image_size(&static_manifest),
        image_size(&dynamic_manifest)
    );
    assert!(static_config["config"]["Labels"][LIBRARIES_LABEL].is_null());

    // The dynamic image: exactly ldd's libraries (the loader included), at ldd's paths.
    let binary = out_dir
        .join(&dynamic_app)
        .join("bin/linux_amd64")
        .join(&dynamic_app);
    let from_ldd = ldd(&binary);
    let label = dynamic_config["config"]["Labels"][LIBRARIES_LABEL]
        .as_str()
        .unwrap();
    let from_gopack: BTreeSet<String> = label.split(',').map(String::from).collect();
    eprintln!("ldd:    {from_ldd:?}\ngopack: {from_gopack:?}");
    assert_eq!(from_gopack, from_ldd);
    assert!(
        from_ldd.iter().any(|p| p.ends_with("/libz.so.1")),
        "{from_ldd:?}"
    );

    // The app layer holds the binary and those libraries' files, nothing else.
    let app_layer = layout_blob(
        &dynamic_layout,
        dynamic_manifest["layers"][1]["digest"].as_str().unwrap(),
    );
    let entries = layer_entries(&app_layer);
    let files: BTreeSet<String> = entries
        .iter()
        .filter(|(_, kind, _)| kind.is_file())
        .map(|(path, _, _)| format!("/{path}"))
        .collect();
    let mut expected: BTreeSet<String> = from_ldd
        .iter()
        .map(|p| {
            Utf8PathBuf::from_path_buf(std::fs::canonicalize(p).unwrap())
                .unwrap()
                .to_string()
        })
        .collect();
    expected.insert(format!("/go/bin/{dynamic_app}"));
    assert_eq!(files, expected);
    // Symlinks stay symlinks (libz.so.1 -> libz.so.1.2.x).
    assert!(
        entries
            .iter()
            .any(|(path, kind, target)| path.ends_with("/libz.so.1")
                && *kind == tar::EntryType::Symlink
                && target
                    .as_deref()
                    .is_some_and(|t| t.starts_with("libz.so.1."))),
        "{entries:?}"
    );

    // verify of the loaded images: static passes elf.static; dynamic passes elf.loadable.
    let ws_config = ws.workspace();
    let apps = ws_config
        .select(
            &[static_app.clone(), dynamic_app.clone()],
            &Default::default(),
        )
        .unwrap();
    for app in &apps {
        let expect = Expectations::for_app(app);
        let report = verify(
            &ImageSource::Docker(format!("{}:latest", app.name())),
            &expect,
        )
        .unwrap();
        assert!(report.passed(), "{}", report.table());
        let status = |id: &str| report.checks_named(id).next().unwrap().status;
        assert_eq!(status("elf.loadable"), Status::Pass, "{}", report.table());
        assert_eq!(status("go.cgo"), Status::Pass, "{}", report.table());
        if app.name() == static_app {
            assert_eq!(status("elf.static"), Status::Pass, "{}", report.table());
        }
    }

    // One needed library removed: verify fails naming it.
    let container =
        run_ok(Command::new("docker").args(["create", &format!("{dynamic_app}:latest")]));
    let container = container.trim();
    let rootfs = ws.root.join("rootfs.tar");
    run_ok(Command::new("docker").args(["export", "--output", rootfs.as_str(), container]));
    let _ = Command::new("docker").args(["rm", container]).output();
    let libz = entries
        .iter()
        .find(|(path, kind, _)| kind.is_file() && path.contains("/libz.so.1."))
        .unwrap()
        .0
        .clone();
    run_ok(Command::new("tar").args(["--delete", "-f", rootfs.as_str(), &libz]));
    let broken = format!("{dynamic_app}-broken:latest");
    run_ok(Command::new("docker").args([
        "import",
        "--change",
        "USER 10001:10001",
        "--change",
        &format!("ENTRYPOINT [\"/go/bin/{dynamic_app}\"]"),
        rootfs.as_str(),
        &broken,
    ]));
    let report = verify(
        &ImageSource::Docker(broken.clone()),
        &Expectations::default(),
    )
    .unwrap();
    let check = report.checks_named("elf.loadable").next().unwrap();
    assert_eq!(check.status, Status::Fail, "{}", report.table());
    assert!(check.message.contains("libz.so.1"), "{check:?}");
    assert!(
        check
            .remedy
            .as_deref()
            .unwrap()
            .contains("cgo = \"dynamic\""),
        "{check:?}"
    );
    let out = Command::new("docker")
        .args(["run", "--rm", &broken])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));

    remove_images(&static_app);
    remove_images(&dynamic_app);
    remove_images(&format!("{dynamic_app}-broken"));
}

#[test]
fn cross_and_default_c_compilers_and_the_c_flags_in_the_key() {
    require_c_tools();
    require_tool("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu");
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "cgo-arm64"
path = "cgo"
platforms = ["linux/arm64"]
cgo = "dynamic"
cc = { "linux/arm64" = "aarch64-linux-gnu-gcc" }

[[workspace.metadata.gopack.apps]]
name = "cgo-riscv"
path = "cgo"
platforms = ["linux/riscv64"]
cgo = "static"

[[workspace.metadata.gopack.apps]]
name = "cgo-musl"
path = "cgo"
platforms = ["linux/amd64"]
cgo = "static"
"#,
    );
    ws.copy("tests/fixtures/verify/cgo", "cgo");
    let out = ws.xtask(["pack", "cgo-arm64"]);
    assert!(out.status.success(), "{}", text(&out));
    let layout = ws.root.join("target/gopack/cgo-arm64/oci");
    let (_, config) = image_of(&layout, "linux/arm64");
    let label = config["config"]["Labels"][LIBRARIES_LABEL]
        .as_str()
        .unwrap();
    assert!(
        label.contains("/lib/ld-linux-aarch64.so.1") && label.contains("libc.so.6"),
        "{label}"
    );
    // pack verified it; verify again from the layout, as a user would.
    let apps = ws
        .workspace()
        .select(&["cgo-arm64".into()], &Default::default())
        .unwrap();
    let report = verify(&ImageSource::Path(layout), &Expectations::for_app(&apps[0])).unwrap();
    assert!(report.passed(), "{}", report.table());
    let check = report.checks_named("elf.loadable").next().unwrap();
    assert_eq!(check.status, Status::Pass, "{}", report.table());
    assert!(
        check
            .details
            .iter()
            .any(|d| d.starts_with("libc.so.6 => /lib/")),
        "{check:?}"
    );
    assert!(
        report
            .checks_named("elf.machine")
            .next()
            .unwrap()
            .message
            .contains("AArch64"),
        "{}",
        report.table()
    );

    // The C flags are inputs of the binary's key: unchanged, cached; changed, rebuilt.
    let build = |cflags: &str| -> String {
        let out = ws
            .xtask_command(["build", "cgo-arm64", "--json"])
            .env("CGO_CFLAGS", cflags)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let first = build("-O2 -g");
    let again = build("-O2 -g");
    assert!(
        again.contains("\"event\":\"binary-cached\""),
        "{first}\n{again}"
    );
    let changed = build("-O1 -g");
    assert!(changed.contains("\"event\":\"go-build\""), "{changed}");

    // The default compiler of a static build is musl-gcc when musl-tools is installed.
    require_tool("musl-gcc", "musl-tools");
    let out = ws.xtask(["build", "cgo-musl"]);
    assert!(out.status.success(), "{}", text(&out));
    let binary = ws
        .root
        .join("target/gopack/cgo-musl/bin/linux_amd64/cgo-musl");
    let (_, is_static) = elf_facts(binary.as_std_path());
    assert!(is_static, "cgo = \"static\" gives a static binary");
    let said = run_ok(&mut Command::new(binary.as_str()));
    assert_eq!(said.trim(), "cgo says 42");
    let bytes = std::fs::read(&binary).unwrap();
    // A static glibc carries its tunables parser; musl has none.
    assert!(
        !bytes.windows(14).any(|w| w == b"GLIBC_TUNABLES"),
        "linked against musl, not glibc"
    );

    // A platform with no C compiler: an error naming the setting and the packages.
    let out = ws.xtask(["build", "cgo-riscv"]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(".cc")
            && stderr.contains("gcc-riscv64-linux-gnu")
            && stderr.contains("ziglang"),
        "{stderr}"
    );
}
