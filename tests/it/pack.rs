//! `cargo xtask pack`: reproducible images that independent clients accept.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::Value;
use std::process::Command;

fn app_toml(name: &str, platforms: &str, extra: &str) -> String {
    format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"hello\"\n\
         platforms = {platforms}\nversion-variable = \"main.version\"\n{extra}\n"
    )
}

/// Runs `pack` in `dir` and returns the printed digest.
fn pack(dir: &Utf8Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("pack").args(args).current_dir(dir);
    let stdout = run_ok(&mut cmd);
    packed_digests(&stdout)
        .pop()
        .unwrap_or_else(|| panic!("pack prints the digest: {stdout}"))
        .1
}

#[test]
fn same_digest_from_two_clones_and_from_a_cold_cache() {
    let ws = TestWorkspace::new(&app_toml("hello", "[\"linux/amd64\", \"linux/arm64\"]", ""));
    ws.copy("examples/hello", "hello");
    git_commit_all(&ws.root);
    let clones = tempfile::tempdir().unwrap();
    let clone = |name: &str| -> Utf8PathBuf {
        let dir = Utf8PathBuf::from_path_buf(clones.path().join(name)).unwrap();
        run_ok(Command::new("git").args(["clone", "--quiet", ws.root.as_str(), dir.as_str()]));
        dir
    };
    let (a, b) = (clone("first"), clone("second/nested"));
    let digest_a = pack(&a, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let digest_b = pack(&b, &[]);
    assert_eq!(digest_a, digest_b, "two clones packed to different digests");
    assert!(
        std::fs::read(a.join("target/gopack/hello/hello.tar")).unwrap()
            == std::fs::read(b.join("target/gopack/hello/hello.tar")).unwrap(),
        "the archives differ"
    );

    // Packing wrote nothing into either checkout.
    assert_eq!(git_status(&a), "");
    assert_eq!(git_status(&b), "");

    // An emptied cache gives the same digest again.
    std::fs::remove_dir_all(a.join("target/gopack")).unwrap();
    assert_eq!(pack(&a, &[]), digest_a);

    // The labels carry the commit.
    let head = run_ok(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&a),
    );
    let layout = a.join("target/gopack/hello/oci");
    let index = layout_json(&layout, &digest_a);
    let manifest = layout_json(&layout, index["manifests"][0]["digest"].as_str().unwrap());
    let config = layout_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], head.trim());
    assert_eq!(labels["org.opencontainers.image.title"], "hello");
    assert_eq!(labels["org.opencontainers.image.version"], head.trim()[..7]);
}

#[test]
fn unchanged_repack_reuses_every_layer() {
    let ws = TestWorkspace::new(&app_toml("hello", "[\"linux/amd64\"]", ""));
    ws.copy("examples/hello", "hello");
    let first = ws.xtask(["pack", "--json"]);
    assert!(first.status.success(), "{}", text(&first));
    let second = ws.xtask(["pack", "--json"]);
    assert!(second.status.success(), "{}", text(&second));
    let events = String::from_utf8_lossy(&second.stderr);
    assert!(!events.contains("\"event\":\"go-build\""), "{events}");
    assert!(
        !events.contains("\"cached\":false"),
        "a layer was compressed again: {events}"
    );
    assert_eq!(events.matches("\"event\":\"layer\"").count(), 2, "{events}");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&second.stdout)
    );
}

#[test]
fn independent_clients_accept_the_output() {
    require_tool("skopeo", "skopeo");
    require_tool("umoci", "umoci");
    let ws = TestWorkspace::new(&app_toml(
        "hello",
        "[\"linux/amd64\"]",
        "timezone = \"Europe/Berlin\"\nlocale = \"de_DE.UTF-8\"\nexpose = [\"8080/tcp\"]\nargs = [\"--serve\"]",
    ));
    ws.copy("examples/hello", "hello");
    let digest = pack(
        &ws.root,
        &["--uid", "4242", "--gid", "4343", "--user-name", "svc"],
    );
    let layout = ws.root.join("target/gopack/hello/oci");
    let archive = ws.root.join("target/gopack/hello/hello.tar");

    // skopeo reads both the layout and the archive, and sees the same image.
    for reference in [
        format!("oci:{layout}:latest"),
        format!("oci-archive:{archive}:latest"),
    ] {
        let raw = run_ok(Command::new("skopeo").args(["inspect", "--raw", &reference]));
        validate_oci_json("image-manifest-schema.json", raw.as_bytes());
        let info: Value = serde_json::from_str(&run_ok(
            Command::new("skopeo").args(["inspect", &reference]),
        ))
        .unwrap();
        assert_eq!(info["Digest"], digest.as_str(), "{reference}");
        assert_eq!(info["Architecture"], "amd64");
        assert_eq!(info["Layers"].as_array().unwrap().len(), 2);
    }

    // Every document validates against the image-spec schemas.
    validate_oci_json(
        "image-layout-schema.json",
        &std::fs::read(layout.join("oci-layout")).unwrap(),
    );
    let index_bytes = std::fs::read(layout.join("index.json")).unwrap();
    validate_oci_json("image-index-schema.json", &index_bytes);
    let manifest_bytes = layout_blob(&layout, &digest);
    validate_oci_json("image-manifest-schema.json", &manifest_bytes);
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let config_bytes = layout_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    validate_oci_json("config-schema.json", &config_bytes);
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();
    let run = &config["config"];
    assert_eq!(run["User"], "4242:4343");
    assert_eq!(run["Entrypoint"], serde_json::json!(["/go/bin/hello"]));
    assert_eq!(run["Cmd"], serde_json::json!(["--serve"]));
    assert!(run["ExposedPorts"]["8080/tcp"].is_object(), "{run}");
    let env: Vec<&str> = run["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "LANG=de_DE.UTF-8",
            "LANGUAGE=de_DE:de",
            "LC_ALL=de_DE.UTF-8",
            "TZ=Europe/Berlin"
        ]
    );

    // umoci unpacks it; the tree is what the idioms promise.
    let unpacked = tempfile::tempdir().unwrap();
    let bundle = unpacked.path().join("bundle");
    let mut umoci = Command::new("umoci");
    umoci.arg("unpack");
    if !running_as_root() {
        umoci.arg("--rootless");
    }
    run_ok(
        umoci
            .args(["--image", &format!("{layout}:latest")])
            .arg(&bundle),
    );
    let rootfs = Utf8PathBuf::from_path_buf(bundle.join("rootfs")).unwrap();
    use std::os::unix::fs::MetadataExt;
    let mode = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("go/bin/hello"), 0o755);
    assert_eq!(mode("etc/passwd"), 0o644);
    if running_as_root() {
        for path in [
            "etc/passwd",
            "go/bin/hello",
            "tmp",
            "usr/share/zoneinfo/UTC",
        ] {
            let meta = std::fs::symlink_metadata(rootfs.join(path)).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "{path}");
        }
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l == "svc:x:4242:4343::/nonexistent:/sbin/nologin"),
        "{passwd}"
    );
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.lines().any(|l| l == "svc:x:4343:"), "{group}");
    let bundle_pem =
        std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle_pem.matches("BEGIN CERTIFICATE").count() > 10);
    let berlin = std::fs::read(rootfs.join("usr/share/zoneinfo/Europe/Berlin")).unwrap();
    assert_eq!(&berlin[..4], b"TZif");
    assert_eq!(std::fs::read(rootfs.join("etc/localtime")).unwrap(), berlin);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/timezone")).unwrap(),
        "Europe/Berlin\n"
    );
    for absent in [
        "bin",
        "bin/sh",
        "usr/share/zoneinfo/right",
        "usr/share/zoneinfo/localtime",
    ] {
        assert!(!rootfs.join(absent).exists(), "{absent} is in the image");
    }
    let mut top: Vec<String> = rootfs
        .read_dir_utf8()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string())
        .collect();
    top.sort();
    assert_eq!(top, ["etc", "go", "tmp", "usr"]);
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn two_platform_index_has_matching_binaries() {
    let ws = TestWorkspace::new(&app_toml("hello", "[\"linux/amd64\", \"linux/arm64\"]", ""));
    ws.copy("examples/hello", "hello");
    let digest = pack(&ws.root, &[]);
    let layout = ws.root.join("target/gopack/hello/oci");
    let index_bytes = layout_blob(&layout, &digest);
    validate_oci_json("image-index-schema.json", &index_bytes);
    let index: Value = serde_json::from_slice(&index_bytes).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    let mut base_layers = Vec::new();
    for (descriptor, (arch, machine)) in manifests.iter().zip([
        ("amd64", goblin::elf::header::EM_X86_64),
        ("arm64", goblin::elf::header::EM_AARCH64),
    ]) {
        assert_eq!(descriptor["platform"]["architecture"], arch);
        assert_eq!(descriptor["platform"]["os"], "linux");
        let manifest = layout_json(&layout, descriptor["digest"].as_str().unwrap());
        let config = layout_json(&layout, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], arch);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        base_layers.push(layers[0]["digest"].clone());
        let app_layer = layout_blob(&layout, layers[1]["digest"].as_str().unwrap());
        let binary =
            file_in_layer(&app_layer, "go/bin/hello").expect("the binary is in the app layer");
        let elf = goblin::elf::Elf::parse(&binary).unwrap();
        assert_eq!(elf.header.e_machine, machine, "{arch}");
        assert!(
            elf.interpreter.is_none() && elf.libraries.is_empty(),
            "{arch} binary is dynamic"
        );
    }
    assert_eq!(
        base_layers[0], base_layers[1],
        "the base layer is shared by both platforms"
    );
}

#[test]
fn loaded_image_runs_as_the_app_user_with_certs_and_zoneinfo() {
    require_tool("docker", "docker.io");
    let name = format!("gopack-test-hello-{}", std::process::id());
    let ws = TestWorkspace::new(&app_toml(&name, "[\"linux/amd64\", \"linux/arm64\"]", ""));
    ws.copy("examples/hello", "hello");
    let run = |expect_ok: bool| -> String {
        let out = ws.xtask(["pack", "--load"]);
        assert!(out.status.success(), "{}", text(&out));
        let out = Command::new("docker")
            .args(["run", "--rm", &format!("{name}:latest")])
            .output()
            .unwrap();
        assert_eq!(out.status.success(), expect_ok, "{}", text(&out));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let output = run(true);
    assert!(output.contains("uid=10001 gid=10001"), "{output}");
    assert!(output.contains("time in America/New_York"), "{output}");
    let roots: usize = output
        .lines()
        .find_map(|l| l.strip_prefix("ca roots: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(roots > 0, "{output}");

    // certs = false is a choice: verify warns (the binary uses crypto/x509), and the
    // container shows what the choice costs.
    ws.set_config(&app_toml(&name, "[\"linux/amd64\"]", "certs = false"));
    let output = run(false);
    assert!(
        output.contains("ca roots:") && output.contains("no such file"),
        "{output}"
    );

    ws.set_config(&app_toml(&name, "[\"linux/amd64\"]", "tzdata = false"));
    let output = run(false);
    assert!(
        output.contains("zoneinfo: cannot load America/New_York"),
        "{output}"
    );

    // Embedded zoneinfo needs no files.
    ws.set_config(&app_toml(&name, "[\"linux/amd64\"]", "tzdata = \"embed\""));
    let output = run(true);
    assert!(output.contains("time in America/New_York"), "{output}");

    let images = run_ok(Command::new("docker").args([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        &name,
    ]));
    for image in images.lines() {
        let _ = Command::new("docker")
            .args(["rmi", "--force", image])
            .output();
    }
}

#[test]
fn apps_with_the_same_settings_share_the_base_layer_without_docker() {
    let ws = TestWorkspace::new(&format!(
        "{}{}",
        app_toml("api", "[\"linux/amd64\"]", ""),
        app_toml("worker", "[\"linux/amd64\"]", "")
    ));
    ws.copy("examples/hello", "hello");
    // No docker client on PATH and no engine: packing needs only go.
    let path = format!("{}:/usr/bin:/bin", go_bin_dir());
    let out = ws
        .xtask_command(["pack"])
        .env("PATH", path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let layers = |app: &str| -> Vec<Value> {
        let layout = ws.root.join(format!("target/gopack/{app}/oci"));
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let manifest = layout_json(&layout, index["manifests"][0]["digest"].as_str().unwrap());
        manifest["layers"].as_array().unwrap().clone()
    };
    let (api, worker) = (layers("api"), layers("worker"));
    assert_eq!(
        api[0]["digest"], worker[0]["digest"],
        "the base layers differ"
    );
    assert_ne!(
        api[1]["digest"], worker[1]["digest"],
        "the app layers should differ (binary paths differ)"
    );
}

#[test]
fn push_sends_every_platform_to_a_registry_without_a_daemon() {
    require_tool("skopeo", "skopeo");
    let registry = Registry::start();
    let ws = TestWorkspace::new(&format!(
        "registry = \"{}/gopack\"\n{}",
        registry.address,
        app_toml(
            "hello",
            "[\"linux/amd64\", \"linux/arm64\"]",
            "version = \"1.2.3\""
        )
    ));
    ws.copy("examples/hello", "hello");
    let path = format!("{}:/usr/bin:/bin", go_bin_dir());
    let mut cmd = ws.xtask_command(["pack", "--push"]);
    cmd.env("PATH", path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let out = run_ok(&mut cmd);
    let digest = packed_digests(&out)
        .pop()
        .expect("pack prints the digest")
        .1;

    for tag in ["1.2.3", "latest"] {
        let reference = format!("docker://{}/gopack/hello:{tag}", registry.address);
        let raw = run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &reference,
        ]));
        use sha2::Digest;
        assert_eq!(
            format!("sha256:{}", hex(&sha2::Sha256::digest(raw.as_bytes()))),
            digest,
            "{tag}"
        );
        let index: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{raw}");
    }
    // Each platform's image is complete in the registry: skopeo copies it out.
    let copy = tempfile::tempdir().unwrap();
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        "--override-arch",
        "arm64",
        &format!("docker://{}/gopack/hello:1.2.3", registry.address),
        &format!("oci:{}:copy", copy.path().display()),
    ]));

    // A second push finds every blob there and changes nothing.
    let again = run_ok(&mut cmd);
    assert_eq!(again, out);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn pack_verifies_its_image_and_stops_on_a_broken_promise() {
    let ws = TestWorkspace::new(&app_toml(
        "hello",
        "[\"linux/amd64\"]",
        "verify = { max-size = 1024 }",
    ));
    ws.copy("examples/hello", "hello");
    let out = ws.xtask(["pack"]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("image.size") && stderr.contains("fails verify"),
        "{stderr}"
    );
    assert!(stderr.contains("--no-verify"), "{stderr}");

    let out = ws.xtask(["pack", "--no-verify"]);
    assert!(out.status.success(), "{}", text(&out));

    ws.set_config(&app_toml(
        "hello",
        "[\"linux/amd64\"]",
        "verify = { max-size = \"20MiB\", max-layers = 2 }",
    ));
    let out = ws.xtask(["pack"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn impossible_load_or_push_is_refused_before_anything_is_built() {
    require_tool("docker", "docker.io");
    let ws = TestWorkspace::new(&app_toml("hello", "[\"linux/arm64\"]", ""));
    ws.copy("examples/hello", "hello");
    let out = ws.xtask(["pack", "--load"]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the docker engine runs linux/amd64")
            && stderr.contains("--platform linux/amd64"),
        "{stderr}"
    );
    let out = ws.xtask(["pack", "--push"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no registry to push to"),
        "{}",
        text(&out)
    );
    assert!(
        !ws.root.join("target/gopack/hello").exists(),
        "a refused run built or wrote an image"
    );
}

#[test]
fn apps_pack_side_by_side_and_one_failure_hides_no_other_result() {
    let app = |name: &str, path: &str, extra: &str| {
        format!(
            "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"{path}\"\n\
             platforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\n{extra}\n"
        )
    };
    let ws = TestWorkspace::new(&format!(
        "{}{}{}{}",
        app("first", "hello", ""),
        app("broken", "broken", ""),
        app("small", "hello", "verify = { max-size = 1024 }"),
        app("last", "hello", "")
    ));
    ws.copy("examples/hello", "hello");
    ws.copy("examples/hello", "broken");
    ws.write(
        "broken/main.go",
        "package main\n\nfunc main() { undefined() }\n",
    );
    let out = ws.xtask(["pack", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<&str> = lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["first", "broken", "small", "last"], "{stdout}");
    assert!(
        lines[0]["digest"].is_string() && lines[3]["digest"].is_string(),
        "{stdout}"
    );
    assert_eq!(lines[2]["failed"], "checks-failed", "{stdout}");
    let broken = lines[1]["failed"].as_str().unwrap();
    assert!(!broken.is_empty() && broken != "checks-failed", "{stdout}");
    for shipped in ["first", "last"] {
        assert!(ws
            .root
            .join(format!("target/gopack/{shipped}/{shipped}.tar"))
            .is_file());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken"),
        "the error names the app: {stderr}"
    );

    // Checks failing alone give their own exit status.
    ws.write(
        "broken/main.go",
        &std::fs::read_to_string(ws.root.join("hello/main.go")).unwrap(),
    );
    let out = ws.xtask(["pack", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
