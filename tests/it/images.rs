//! What the oci engine's images say about themselves at the edges: a base
//! layer shared by apps committed at different times, a replaced module in
//! the SBOM as it was built (checked by pyspdxtools and cyclonedx-python-lib),
//! a dynamic cgo image verified without its config and its libraries in the
//! SBOM, `image-name` in the archive's tags and on a registry, config values
//! refused when the config is read, and `verify --list`.

use crate::support::*;
use camino::Utf8Path;
use serde_json::Value;
use std::process::Command;

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

fn app(name: &str, path: &str, extra: &str) -> String {
    format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"{path}\"\n\
         platforms = [\"linux/amd64\"]\n{extra}\n"
    )
}

/// The one platform manifest of an app's layout.
fn manifest(layout: &Utf8Path) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let top = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["artifactType"].is_null())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    layout_json(layout, &top)
}

/// The document attached as `kind` to the image of `layout`.
fn attached(layout: &Utf8Path, kind: &str) -> Vec<u8> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let artifact = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["artifactType"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {index}"));
    let manifest = layout_json(layout, artifact["digest"].as_str().unwrap());
    layout_blob(layout, manifest["layers"][0]["digest"].as_str().unwrap())
}

fn git(dir: &Utf8Path, args: &[&str], date: &str) {
    run_ok(
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "gopack tests")
            .env("GIT_AUTHOR_EMAIL", "tests@gopack.invalid")
            .env("GIT_COMMITTER_NAME", "gopack tests")
            .env("GIT_COMMITTER_EMAIL", "tests@gopack.invalid")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date),
    );
}

#[test]
fn apps_committed_at_different_times_share_the_base_layer() {
    let ws = TestWorkspace::new(&format!(
        "{}{}",
        app("one", "one", ""),
        app("two", "two", "")
    ));
    ws.copy("examples/hello", "one");
    ws.copy("examples/hello", "two");
    git(
        &ws.root,
        &["init", "--quiet", "--initial-branch=main"],
        "2020-01-01T00:00:00Z",
    );
    ws.write(".gitignore", "target/\n");
    git(
        &ws.root,
        &["add", "one", ".gitignore", "Cargo.toml"],
        "2020-01-01T00:00:00Z",
    );
    git(
        &ws.root,
        &["commit", "--quiet", "-m", "one"],
        "2020-01-01T00:00:00Z",
    );
    git(&ws.root, &["add", "two"], "2023-06-01T12:00:00Z");
    git(
        &ws.root,
        &["commit", "--quiet", "-m", "two"],
        "2023-06-01T12:00:00Z",
    );

    let out = ws.xtask(["pack"]);
    assert!(out.status.success(), "{}", text(&out));
    let layers = |name: &str| {
        let layout = ws.root.join(format!("target/gopack/{name}/oci"));
        let manifest = manifest(&layout);
        let config = layout_json(&layout, manifest["config"]["digest"].as_str().unwrap());
        (
            manifest["layers"].clone(),
            config["created"].clone(),
            layout,
        )
    };
    let (one, one_created, one_layout) = layers("one");
    let (two, two_created, _) = layers("two");
    assert_eq!(one_created, "2020-01-01T00:00:00Z");
    assert_eq!(two_created, "2023-06-01T12:00:00Z");
    assert_eq!(
        one[0]["digest"], two[0]["digest"],
        "the base layer depends on no app's commit time"
    );
    // The base layer's entries are at time 0; the app layer's at the app's commit.
    let base = layout_blob(&one_layout, one[0]["digest"].as_str().unwrap());
    let listing = tar_listing(&base);
    assert!(listing.iter().all(|(_, mtime)| *mtime == 0), "{listing:?}");
    let app_layer = layout_blob(&one_layout, one[1]["digest"].as_str().unwrap());
    assert!(
        tar_listing(&app_layer)
            .iter()
            .all(|(_, mtime)| *mtime == 1_577_836_800),
        "the app layer keeps the app's commit time"
    );
}

/// (path, mtime) of every entry of a gzip'd tar layer.
fn tar_listing(layer: &[u8]) -> Vec<(String, u64)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().mtime().unwrap(),
            )
        })
        .collect()
}

/// deps-app with `replace example.com/greet => example.com/greetfork v1.0.1-fork.1`.
fn replaced_workspace(extra: &str) -> TestWorkspace {
    let ws = TestWorkspace::new(&app(
        "forked",
        "deps",
        &format!("version = \"1.0.0\"\n{extra}"),
    ));
    let dir = ws.copy("tests/fixtures/deps-app", "deps");
    let go_mod = std::fs::read_to_string(dir.join("go.mod")).unwrap();
    std::fs::write(
        dir.join("go.mod"),
        format!("{go_mod}\nreplace example.com/greet => example.com/greetfork v1.0.1-fork.1\n"),
    )
    .unwrap();
    run_ok(Command::new("go").args(["mod", "tidy"]).current_dir(&dir));
    ws
}

#[test]
fn a_replaced_module_is_listed_as_built_with_the_original_as_a_relationship() {
    require_tool("pyspdxtools", "spdx-tools (pip install spdx-tools)");
    let ws = replaced_workspace("");
    let out = ws.xtask(["pack"]);
    assert!(out.status.success(), "{}", text(&out));
    let layout = ws.root.join("target/gopack/forked/oci");
    let binary = ws.root.join("target/gopack/forked/bin/linux_amd64/forked");
    let modules = run_ok(Command::new("go").args(["version", "-m", binary.as_str()]));
    assert!(
        modules.contains("=>\texample.com/greetfork\tv1.0.1-fork.1"),
        "{modules}"
    );

    let spdx = attached(&layout, SPDX);
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("forked.spdx.json");
    std::fs::write(&file, &spdx).unwrap();
    let validated = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "pyspdxtools: {}",
        text(&validated)
    );
    eprintln!("pyspdxtools -i forked.spdx.json: {}", text(&validated));

    let doc: Value = serde_json::from_slice(&spdx).unwrap();
    let packages = doc["packages"].as_array().unwrap();
    let by_purl = |purl: &str| {
        packages
            .iter()
            .find(|p| p["externalRefs"][0]["referenceLocator"] == purl)
            .unwrap_or_else(|| panic!("no package {purl} in {doc:#}"))
    };
    let built = by_purl("pkg:golang/example.com/greetfork@v1.0.1-fork.1");
    assert_eq!(built["name"], "example.com/greetfork");
    assert_eq!(built["versionInfo"], "v1.0.1-fork.1");
    assert!(
        built["checksums"][0]["checksumValue"].is_string(),
        "{built}"
    );
    let original = by_purl("pkg:golang/example.com/greet@v1.0.0");
    assert!(
        original["comment"]
            .as_str()
            .unwrap()
            .contains("not in the binary"),
        "{original}"
    );
    assert!(
        !spdx
            .windows(b"greet@v1.0.1-fork.1".len())
            .any(|w| w == b"greet@v1.0.1-fork.1"),
        "no purl names the original path with the fork's version"
    );
    let relationships = doc["relationships"].as_array().unwrap();
    assert!(
        relationships
            .iter()
            .any(|r| r["spdxElementId"] == built["SPDXID"]
                && r["relationshipType"] == "VARIANT_OF"
                && r["relatedSpdxElement"] == original["SPDXID"]),
        "{relationships:?}"
    );
    assert!(
        relationships
            .iter()
            .any(|r| r["relationshipType"] == "DEPENDS_ON"
                && r["relatedSpdxElement"] == built["SPDXID"]),
        "the app depends on what was built"
    );
    assert!(
        !relationships
            .iter()
            .any(|r| r["relationshipType"] == "DEPENDS_ON"
                && r["relatedSpdxElement"] == original["SPDXID"]),
        "and not on the module it replaced"
    );

    // CycloneDX: the fork as the component, the original as its pedigree's ancestor.
    let ws = replaced_workspace("sbom = \"cyclonedx\"");
    let out = ws.xtask(["pack"]);
    assert!(out.status.success(), "{}", text(&out));
    let bom = attached(&ws.root.join("target/gopack/forked/oci"), CYCLONEDX);
    let file = scratch.path().join("forked.cdx.json");
    std::fs::write(&file, &bom).unwrap();
    let validated = Command::new("python3")
        .args([
            "-c",
            "import sys\n\
             from cyclonedx.schema import SchemaVersion\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
             print(errors or 'valid')\n\
             sys.exit(1 if errors else 0)",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "cyclonedx-python-lib (pip install cyclonedx-python-lib): {}",
        text(&validated)
    );
    let bom: Value = serde_json::from_slice(&bom).unwrap();
    let fork = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purl"] == "pkg:golang/example.com/greetfork@v1.0.1-fork.1")
        .unwrap_or_else(|| panic!("{bom:#}"));
    assert_eq!(
        fork["pedigree"]["ancestors"][0]["purl"],
        "pkg:golang/example.com/greet@v1.0.0"
    );
}

#[test]
fn a_dynamic_cgo_image_verifies_without_its_config_and_lists_its_libraries() {
    require_tool("gcc", "gcc");
    assert!(
        Utf8Path::new("/usr/include/zlib.h").is_file(),
        "this test needs zlib's headers and libraries: apt-get install zlib1g-dev"
    );
    require_tool("dpkg-query", "dpkg");
    let ws = TestWorkspace::new(&app(
        "zdyn",
        "zlib",
        "cgo = \"dynamic\"\nversion = \"1.0.0\"",
    ));
    ws.copy("tests/fixtures/cgo-zlib", "zlib");
    let out = ws.xtask(["pack"]);
    assert!(out.status.success(), "{}", text(&out));
    let layout = ws.root.join("target/gopack/zdyn/oci");

    // No app named: the image's own label says it is gopack's dynamic cgo image.
    let out = ws.xtask(["verify", "--image", layout.as_str(), "--format", "json"]);
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = reports[0]["platforms"][0]["checks"].as_array().unwrap();
    let status = |id: &str| {
        checks
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| (c["status"].clone(), c["message"].clone()))
            .unwrap()
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(status("elf.static").0, "skip", "{:?}", status("elf.static"));
    assert!(
        status("elf.static")
            .1
            .as_str()
            .unwrap()
            .contains("io.gopack.cgo.libraries"),
        "{:?}",
        status("elf.static")
    );
    assert_eq!(status("go.cgo").0, "pass", "{:?}", status("go.cgo"));
    assert_eq!(
        status("elf.loadable").0,
        "pass",
        "{:?}",
        status("elf.loadable")
    );

    // The SBOM lists the libraries gopack copied, with their Debian packages.
    let doc: Value = serde_json::from_slice(&attached(&layout, SPDX)).unwrap();
    let libraries: Vec<&Value> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["SPDXID"].as_str().unwrap().contains("-cgo-"))
        .collect();
    let purls: Vec<&str> = libraries
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:deb/debian/zlib1g@")),
        "{purls:?}"
    );
    assert!(
        purls.iter().any(|p| p.starts_with("pkg:deb/debian/libc6@")),
        "{purls:?}"
    );
    assert!(
        libraries
            .iter()
            .any(|p| p["comment"].as_str().unwrap().contains("libz.so.1")),
        "{libraries:?}"
    );
}

#[test]
fn image_name_names_the_archive_tags_and_the_registry_repository() {
    let registry = Registry::start();
    let ws = TestWorkspace::new(&format!(
        "registry = \"{}/acme\"\n{}",
        registry.address,
        app(
            "hello",
            "hello",
            "version = \"1.2.3\"\nimage-name = \"team/hello-api\""
        )
    ));
    ws.copy("examples/hello", "hello");
    let out = ws.xtask(["pack", "--push"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}/acme/team/hello-api@sha256:", registry.address)),
        "{stdout}"
    );
    let archive = ws.root.join("target/gopack/hello/hello.tar");
    let mut tar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    let manifest: Value = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
        .map(|mut e| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            serde_json::from_str(&text).unwrap()
        })
        .unwrap();
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["team/hello-api:1.2.3", "team/hello-api:latest"])
    );
    require_tool("skopeo", "skopeo");
    let inspected = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/acme/team/hello-api:1.2.3", registry.address),
    ]));
    assert!(inspected.contains("\"Digest\""), "{inspected}");
    // The binary and the outputs keep the app's name.
    assert!(ws
        .root
        .join("target/gopack/hello/bin/linux_amd64/hello")
        .is_file());

    // A name that is no repository path is refused when the config is read.
    ws.set_config(&app("hello", "hello", "image-name = \"Team/API\""));
    let out = ws.xtask(["pack", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apps[0].image-name"), "{stderr}");
}

#[test]
fn config_values_gopack_cannot_keep_are_refused_when_it_is_read() {
    let ws = TestWorkspace::new("");
    ws.copy("examples/hello", "hello");
    ws.write("certs/not-pem.crt", "this is not a certificate\n");
    for (extra, key, says) in [
        (
            "labels = { \"org.opencontainers.image.version\" = \"9\" }",
            "apps[0].labels.\"org.opencontainers.image.version\"",
            "gopack writes",
        ),
        (
            "image-env = { TZ = \"Europe/Berlin\" }",
            "apps[0].image-env.TZ",
            "timezone",
        ),
        (
            "ca-bundle = \"certs/not-pem.crt\"",
            "apps[0].ca-bundle",
            "no PEM certificate",
        ),
    ] {
        ws.set_config(&app("hello", "hello", extra));
        let out = ws.xtask(["pack", "--dry-run"]);
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{extra}: {stderr}");
        assert!(stderr.contains(says), "{extra}: {stderr}");
        assert!(stderr.contains("Cargo.toml"), "{extra}: {stderr}");
    }
    ws.set_config(&format!(
        "registry = \"Bad Registry\"\n{}",
        app("hello", "hello", "")
    ));
    let out = ws.xtask(["pack", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("workspace.metadata.gopack.registry"),
        "{stderr}"
    );

    ws.set_config(&app("hello", "hello", ""));
    let out = ws.xtask(["pack", "--registry-timeout", "0", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("greater than 0"), "{stderr}");

    let out = ws.xtask(["build", "--go", "/nonexistent/go"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--go"), "{stderr}");
}

#[test]
fn verify_list_names_every_check_and_its_severity() {
    let ws = TestWorkspace::new("");
    let out = ws.xtask(["verify", "--list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), gopack_core::verify::CheckId::ALL.len());
    let trimpath = lines.iter().find(|l| l["id"] == "go.trimpath").unwrap();
    assert_eq!(trimpath["with_app"], "warns");
    assert_eq!(trimpath["docs"], "docs/verify.md#gotrimpath");
    let out = ws.xtask(["verify", "--list"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "elf.stripped\n  with the app's config: fails\n  without (--image alone): warns"
        ),
        "{stdout}"
    );
}

#[test]
fn editing_only_a_files_source_repacks_without_go_build() {
    let ws = TestWorkspace::new(&app(
        "hello",
        "hello",
        "files = [{ src = \"config/app.yaml\", dst = \"/etc/hello/app.yaml\" }]",
    ));
    ws.copy("examples/hello", "hello");
    ws.write("hello/config/app.yaml", "greeting: hi\n");
    let pack = || {
        let out = ws.xtask(["pack", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            result["digest"].clone(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (first, _) = pack();
    ws.write("hello/config/app.yaml", "greeting: hello\n");
    let (second, events) = pack();
    assert_ne!(first, second, "the file is in the image");
    assert!(
        !events.contains("\"go-build\""),
        "no go build ran: {events}"
    );
    assert!(events.contains("binary-cached"), "{events}");
}
