//! What is inside an image and where it came from: SBOMs checked by independent
//! validators against `go version -m`, provenance, OCI 1.1 attachment in the
//! layout and on a registry, extra files, tag templates.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";

fn app(name: &str, path: &str, extra: &str) -> String {
    format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"{path}\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.2.3\"\n{extra}\n"
    )
}

/// `name@digest` from pack's output, per app.
fn digests(stdout: &str) -> Vec<(String, String)> {
    packed_digests(stdout)
}

fn pack_ok(ws: &TestWorkspace, args: &[&str]) -> Vec<(String, String)> {
    let out = ws.xtask([&["pack"], args].concat());
    assert!(out.status.success(), "{}", text(&out));
    digests(&String::from_utf8_lossy(&out.stdout))
}

/// The artifacts of the layout's index.json: (artifactType, manifest).
fn artifacts(layout: &Utf8Path) -> Vec<(String, Value)> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| {
            let kind = d["artifactType"].as_str()?;
            Some((
                kind.to_string(),
                layout_json(layout, d["digest"].as_str().unwrap()),
            ))
        })
        .collect()
}

/// The document of the artifact of `kind` about `subject`.
fn document(layout: &Utf8Path, kind: &str, subject: &str) -> Vec<u8> {
    let found: Vec<_> = artifacts(layout)
        .into_iter()
        .filter(|(k, m)| k == kind && m["subject"]["digest"] == subject)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} about {subject}");
    let manifest = &found[0].1;
    assert_eq!(manifest["artifactType"], kind);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], kind);
    layout_blob(layout, manifest["layers"][0]["digest"].as_str().unwrap())
}

/// `go version -m`'s modules: (path, version) of `mod` and `dep` lines, replacements applied.
fn go_version_m(binary: &Utf8Path) -> BTreeSet<(String, String)> {
    let out = run_ok(Command::new("go").args(["version", "-m", binary.as_str()]));
    let mut modules: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        let fields: Vec<&str> = line.trim().split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", path, version, ..] => {
                modules.push((path.to_string(), version.to_string()))
            }
            ["=>", _, version, ..] => modules.last_mut().unwrap().1 = version.to_string(),
            _ => {}
        }
    }
    modules.into_iter().collect()
}

fn write_temp(dir: &Utf8Path, name: &str, bytes: &[u8]) -> Utf8PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn sboms_validate_and_list_what_go_version_m_lists() {
    require_tool("pyspdxtools", "spdx-tools (pip install spdx-tools)");
    let ws = TestWorkspace::new(&format!(
        "{}{}",
        app("hello", "hello", ""),
        app("depsapp", "deps", "")
    ));
    ws.copy("examples/hello", "hello");
    ws.copy("tests/fixtures/deps-app", "deps");
    let packed = pack_ok(&ws, &[]);
    assert_eq!(packed.len(), 2, "{packed:?}");
    let scratch = tempfile::tempdir().unwrap();
    let scratch = Utf8Path::from_path(scratch.path()).unwrap();

    for (app, digest) in &packed {
        let layout = ws.root.join(format!("target/gopack/{app}/oci"));
        let spdx = document(&layout, SPDX, digest);
        let file = write_temp(scratch, &format!("{app}.spdx.json"), &spdx);
        let validated = Command::new("pyspdxtools")
            .args(["-i", file.as_str()])
            .output()
            .unwrap();
        assert!(
            validated.status.success(),
            "pyspdxtools: {}",
            text(&validated)
        );

        // Exactly the modules of the binary, by path and (for dependencies) version.
        let doc: Value = serde_json::from_slice(&spdx).unwrap();
        let binary = ws
            .root
            .join(format!("target/gopack/{app}/bin/linux_amd64/{app}"));
        let expected = go_version_m(&binary);
        let listed: BTreeSet<(String, String)> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                p["externalRefs"][0]["referenceLocator"]
                    .as_str()
                    .is_some_and(|l| {
                        l.starts_with("pkg:golang/") && !l.starts_with("pkg:golang/stdlib")
                    })
            })
            .map(|p| {
                let name = p["name"].as_str().unwrap().to_string();
                let main = p["primaryPackagePurpose"] == "APPLICATION";
                let version = if main {
                    "(devel)"
                } else {
                    p["versionInfo"].as_str().unwrap()
                };
                (name, version.to_string())
            })
            .collect();
        assert_eq!(listed, expected, "{app}");
        assert_eq!(doc["creationInfo"]["created"], doc_created(&layout, digest));
        let stdlib = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "stdlib")
            .unwrap();
        assert!(stdlib["versionInfo"].as_str().unwrap().starts_with("go1."));
        // The base files say where they came from.
        let text = String::from_utf8_lossy(&spdx);
        assert!(
            text.contains("/etc/ssl/certs/ca-certificates.crt"),
            "{text}"
        );
        assert!(text.contains("/usr/share/zoneinfo"), "{text}");
        if app == "depsapp" {
            assert!(
                text.contains("pkg:golang/example.com/greet@v1.0.0"),
                "{text}"
            );
            // The h1: sum from go.sum, as the SHA-256 it carries.
            assert!(text.contains("go.sum h1:HWbM6J+W8k/2L1FM7XvVE1VGgv0dZ0x21qGkuzSGyyY="));
        }
    }

    // Provenance: an in-toto statement about the platform manifest.
    let (_, deps_digest) = packed.iter().find(|(a, _)| a == "depsapp").unwrap();
    let deps_layout = ws.root.join("target/gopack/depsapp/oci");
    let statement: Value =
        serde_json::from_slice(&document(&deps_layout, IN_TOTO, deps_digest)).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        deps_digest.trim_start_matches("sha256:")
    );
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(
        definition["externalParameters"]["config"]["name"],
        "depsapp"
    );
    assert!(definition["internalParameters"]["goVersion"]
        .as_str()
        .unwrap()
        .starts_with("go1."));
    use sha2::Digest;
    let go_sum = hex(&sha2::Sha256::digest(
        std::fs::read(ws.root.join("deps/go.sum")).unwrap(),
    ));
    let deps = definition["resolvedDependencies"].as_array().unwrap();
    assert!(
        deps.iter()
            .any(|d| d["name"] == "go.sum" && d["digest"]["sha256"] == go_sum.as_str()),
        "{deps:?}"
    );

    // Deterministic: SBOMs made again (not from the cache) are the same bytes.
    let index_before = std::fs::read(deps_layout.join("index.json")).unwrap();
    std::fs::remove_dir_all(ws.cache_dir().join("sbom")).unwrap();
    assert_eq!(pack_ok(&ws, &[]), packed);
    assert_eq!(
        std::fs::read(deps_layout.join("index.json")).unwrap(),
        index_before
    );

    // verify reports them; the image's digest does not depend on them.
    let out = ws.xtask(["verify", "depsapp", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    for id in ["sbom.present", "provenance.present"] {
        let check = check_of(&report, id);
        assert_eq!(check["status"], "pass", "{check}");
    }
    ws.set_config(&format!(
        "{}{}",
        app("hello", "hello", ""),
        app("depsapp", "deps", "sbom = false\nprovenance = false")
    ));
    assert_eq!(pack_ok(&ws, &["depsapp"]), vec![packed[1].clone()]);
    assert!(artifacts(&deps_layout).is_empty());
    ws.set_config(&format!(
        "{}{}",
        app("hello", "hello", ""),
        app(
            "depsapp",
            "deps",
            "sbom = false\nverify = { require = [\"sbom\"] }"
        )
    ));
    let out = ws.xtask(["pack", "depsapp"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sbom.present"),
        "{}",
        text(&out)
    );

    // CycloneDX, checked by cyclonedx-python-lib's JSON schema validator.
    ws.set_config(&format!(
        "{}{}",
        app("hello", "hello", ""),
        app("depsapp", "deps", "sbom = \"cyclonedx\"")
    ));
    assert_eq!(pack_ok(&ws, &["depsapp"]), vec![packed[1].clone()]);
    let bom = document(&deps_layout, CYCLONEDX, deps_digest);
    let file = write_temp(scratch, "depsapp.cdx.json", &bom);
    let validated = Command::new("python3")
        .args([
            "-c",
            "import sys\n\
             from cyclonedx.schema import SchemaVersion\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
             print(errors or 'valid')\n\
             sys.exit(1 if errors else 0)",
            file.as_str(),
        ])
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "cyclonedx-python-lib (pip install cyclonedx-python-lib): {}",
        text(&validated)
    );
    let bom: Value = serde_json::from_slice(&bom).unwrap();
    let purls: BTreeSet<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert!(
        purls.contains("pkg:golang/example.com/greet@v1.0.0"),
        "{purls:?}"
    );
    assert!(
        purls.contains("pkg:golang/example.com/depsapp"),
        "{purls:?}"
    );
}

fn doc_created(layout: &Utf8Path, manifest: &str) -> Value {
    let manifest = layout_json(layout, manifest);
    layout_json(layout, manifest["config"]["digest"].as_str().unwrap())["created"].clone()
}

fn check_of(report: &str, id: &str) -> Value {
    let report: Value = serde_json::from_str(report).unwrap();
    let reports = report.as_array().cloned().unwrap_or_else(|| vec![report]);
    reports
        .iter()
        .flat_map(|r| r["platforms"].as_array().cloned().unwrap_or_default())
        .flat_map(|p| p["checks"].as_array().cloned().unwrap_or_default())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {reports:?}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn push_attaches_sbom_and_provenance_found_through_the_fallback_tag() {
    require_tool("skopeo", "skopeo");
    let registry = Registry::start();
    let ws = TestWorkspace::new(&format!(
        "registry = \"{}/gopack\"\n{}",
        registry.address,
        app("hello", "hello", "")
    ));
    ws.copy("examples/hello", "hello");
    let (_, digest) = pack_ok(&ws, &["--push"]).remove(0);
    let inspect = |reference: &str| -> String {
        run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/gopack/hello{reference}", registry.address),
        ]))
    };
    // This registry has no referrers API: the fallback tag lists both artifacts.
    let referrers = |tag: &str| -> Vec<Value> {
        let index: Value = serde_json::from_str(&inspect(tag)).unwrap();
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        index["manifests"].as_array().unwrap().clone()
    };
    let tag = format!(":{}", digest.replace(':', "-"));
    let listed = referrers(&tag);
    let kinds: BTreeSet<&str> = listed
        .iter()
        .filter_map(|d| d["artifactType"].as_str())
        .collect();
    assert_eq!(kinds, BTreeSet::from([SPDX, IN_TOTO]), "{listed:?}");
    for descriptor in &listed {
        let manifest: Value = serde_json::from_str(&inspect(&format!(
            "@{}",
            descriptor["digest"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(manifest["subject"]["digest"], digest.as_str());
    }
    // The image itself is unchanged: skopeo copies it and sees the same digest.
    let copy = tempfile::tempdir().unwrap();
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/gopack/hello:1.2.3", registry.address),
        &format!("oci:{}:copy", copy.path().display()),
    ]));
    let copied: Value = serde_json::from_str(&run_ok(
        Command::new("skopeo").args(["inspect", &format!("oci:{}:copy", copy.path().display())]),
    ))
    .unwrap();
    assert_eq!(copied["Digest"], digest.as_str());
    // A second push keeps one entry per artifact.
    pack_ok(&ws, &["--push"]);
    assert_eq!(referrers(&tag).len(), 2);
}

#[test]
fn extra_files_and_tag_templates() {
    require_tool("umoci", "umoci");
    let files = "files = [{ src = \"config/default.yaml\", dst = \"/etc/api/config.yaml\", mode = \"0444\" }, \
                 { src = \"static/\", dst = \"/srv/static/\" }]\n\
                 image-tags = [\"{{version}}\", \"{{major}}.{{minor}}\", \"latest\"]\n\
                 sbom = false\nprovenance = false";
    let ws = TestWorkspace::new(&app("hello", "hello", files).replace("1.2.3", "v1.4.2"));
    ws.copy("examples/hello", "hello");
    ws.write("hello/config/default.yaml", "listen: 8080\n");
    ws.write("hello/static/index.html", "<h1>hi</h1>\n");
    ws.write("hello/static/css/site.css", "h1{}\n");
    let digest = pack_ok(&ws, &[]).remove(0).1;
    let layout = ws.root.join("target/gopack/hello/oci");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(tags, ["v1.4.2", "1.4", "latest"]);

    let unpacked = tempfile::tempdir().unwrap();
    let bundle = unpacked.path().join("bundle");
    let mut umoci = Command::new("umoci");
    umoci.arg("unpack");
    let root = running_as_root();
    if !root {
        umoci.arg("--rootless");
    }
    run_ok(
        umoci
            .args(["--image", &format!("{layout}:latest")])
            .arg(&bundle),
    );
    let rootfs = Utf8PathBuf::from_path_buf(bundle.join("rootfs")).unwrap();
    use std::os::unix::fs::MetadataExt;
    for (path, mode, content) in [
        ("etc/api/config.yaml", 0o444, Some("listen: 8080\n")),
        ("srv/static/index.html", 0o644, Some("<h1>hi</h1>\n")),
        ("srv/static/css/site.css", 0o644, Some("h1{}\n")),
        ("srv/static/css", 0o755, None),
    ] {
        let meta = std::fs::symlink_metadata(rootfs.join(path)).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode, "{path}");
        if root {
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "{path}");
        }
        if let Some(content) = content {
            assert_eq!(std::fs::read_to_string(rootfs.join(path)).unwrap(), content);
        }
    }

    // A changed file changes the app layer.
    ws.write("hello/static/index.html", "<h1>changed</h1>\n");
    let changed = pack_ok(&ws, &[]).remove(0).1;
    assert_ne!(changed, digest);

    // A version that is not semver skips the semver tags, with a note.
    let out = ws.xtask(["pack", "--app-version", "main-3f2a1b0"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("skipped"),
        "{}",
        text(&out)
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(tags, ["main-3f2a1b0", "latest"]);

    // Refused before anything is built, each with the key and the reason.
    for (entry, expect) in [
        (
            "{ src = \"config/default.yaml\", dst = \"/etc/passwd\" }",
            "shadow /etc/passwd",
        ),
        (
            "{ src = \"config/default.yaml\", dst = \"/usr/share/zoneinfo/UTC\" }",
            "shadow /usr/share/zoneinfo",
        ),
        (
            "{ src = \"config/default.yaml\", dst = \"/go/bin/hello\" }",
            "shadow the binary",
        ),
        (
            "{ src = \"config/default.yaml\", dst = \"/tmp/x\" }",
            "shadow /tmp",
        ),
        (
            "{ src = \"config/default.yaml\", dst = \"/srv/../etc/x\" }",
            "without `..`",
        ),
        (
            "{ src = \"missing.yaml\", dst = \"/srv/x\" }",
            "files[0].src",
        ),
        (
            "{ src = \"config/default.yaml\", dst = \"/srv/x\", mode = \"0666\" }",
            "write",
        ),
    ] {
        ws.set_config(&app("hello", "hello", &format!("files = [{entry}]")));
        let out = ws.xtask(["pack"]);
        assert!(!out.status.success(), "{entry}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("apps[0].files[0]") && stderr.contains(expect),
            "{entry}: {stderr}"
        );
    }
    ws.set_config(&app(
        "hello",
        "hello",
        "image-tags = [\"{{version}}\", \"v/{{major}}\"]",
    ));
    let out = ws.xtask(["pack"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("image-tags[1]"),
        "{}",
        text(&out)
    );
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}
