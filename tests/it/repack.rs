//! What a re-pack after an edit redoes and what it keeps: a binary that came
//! out the same keeps its compressed layer, a layout keeps its blobs, and
//! verify of an image whose content passed before checks its attachments
//! without reading a layer.

use crate::support::*;
use camino::Utf8Path;
use gopack_core::config::Attachment;
use gopack_core::verify::{verify, verify_attachments, Expectations, ImageSource};
use std::os::unix::fs::MetadataExt;

fn workspace(extra: &str) -> TestWorkspace {
    let ws = TestWorkspace::new(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\n{extra}\n"
    ));
    ws.copy("examples/hello", "hello");
    ws
}

/// `pack --json`'s events (stderr), after checking it succeeded and left
/// nothing temporary in the app's folder (verify reads a layout of links
/// there while the real one is written).
fn pack_events(ws: &TestWorkspace) -> String {
    let out = ws.xtask(["pack", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let left: Vec<String> = std::fs::read_dir(ws.root.join("target/gopack/hello"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `cached` field of the app layer's event.
fn app_layer_cached(events: &str) -> bool {
    let line = events
        .lines()
        .find(|l| l.contains("\"event\":\"layer\"") && l.contains("\"role\":\"app\""))
        .unwrap_or_else(|| panic!("no app layer event: {events}"));
    line.contains("\"cached\":true")
}

fn append(path: &Utf8Path, text: &str) {
    let mut old = std::fs::read_to_string(path).unwrap();
    old.push_str(text);
    std::fs::write(path, old).unwrap();
}

#[test]
fn a_rebuilt_binary_that_came_out_the_same_keeps_its_layer() {
    let ws = workspace("");
    let first = pack_events(&ws);
    assert!(!app_layer_cached(&first), "{first}");
    let made_from_binary =
        || ["buildinfo", "sbom"].map(|kind| cache_entries(&ws.cache_dir(), kind).len());
    assert_eq!(made_from_binary(), [1, 1]);
    let main = ws.root.join("hello/main.go");
    // A comment at the end: go builds again, and the binary is byte for byte the same.
    append(&main, "\n// A comment changes no byte of the binary.\n");
    let comment = pack_events(&ws);
    assert!(comment.contains("\"event\":\"go-build\""), "{comment}");
    assert!(app_layer_cached(&comment), "{comment}");
    // Its build info and SBOM are the ones made before.
    assert_eq!(made_from_binary(), [1, 1]);
    // A change of code makes another binary and another layer.
    let text = std::fs::read_to_string(&main).unwrap();
    assert!(text.contains("func main() {"), "{text}");
    std::fs::write(
        &main,
        text.replace("func main() {", "func main() {\n\tdefer println()"),
    )
    .unwrap();
    let code = pack_events(&ws);
    assert!(code.contains("\"event\":\"go-build\""), "{code}");
    assert!(!app_layer_cached(&code), "{code}");
    assert_eq!(made_from_binary(), [2, 2]);
}

#[test]
fn a_new_layout_links_the_blobs_the_old_one_holds_intact() {
    let ws = workspace("sbom = \"spdx\"");
    pack_events(&ws);
    let blobs = ws.root.join("target/gopack/hello/oci/blobs/sha256");
    let inodes = |dir: &Utf8Path| -> Vec<(String, u64)> {
        let mut found: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, e.metadata().unwrap().ino())
            })
            .collect();
        found.sort();
        found
    };
    let before = inodes(&blobs);
    // Another SBOM format: new attachments and index, the same layers.
    ws.set_config(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\nsbom = \"cyclonedx\"\n",
    );
    pack_events(&ws);
    let after = inodes(&blobs);
    let kept: Vec<_> = after.iter().filter(|b| before.contains(b)).collect();
    let new = after.len() - kept.len();
    assert!(new > 0, "the SBOM changed, so some blob is new: {after:?}");
    // The two layers (and the config) are the same files, not copies.
    assert!(kept.len() >= 3, "before {before:?}\nafter {after:?}");
    // A blob damaged in place is never linked into the next layout.
    let (layer, _) = kept[0];
    let path = blobs.join(layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    ws.set_config(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\nsbom = \"spdx\"\n",
    );
    pack_events(&ws);
    let repaired = std::fs::read(blobs.join(layer)).unwrap();
    assert_ne!(
        repaired, bytes,
        "the damaged blob was linked into the new layout"
    );
    let out = ws.xtask(["verify", "--image", "target/gopack/hello/oci"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn verify_of_attachments_reads_no_layer_and_still_checks_them() {
    let ws = workspace("provenance = false");
    pack_events(&ws);
    let layout = ws.root.join("layout-copy");
    copy_dir(&ws.root.join("target/gopack/hello/oci"), &layout);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = layout_json(&layout, &manifest_digest);
    let layer = manifest["layers"][1]["digest"].as_str().unwrap();
    let layer_path = layout
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    std::fs::write(&layer_path, b"not a layer").unwrap();
    let source = ImageSource::Path(layout.clone());
    let expect = Expectations::default();

    let full = verify(&source, &expect).map(|r| r.passed());
    assert!(
        !matches!(full, Ok(true)),
        "verify reads every layer and sees the damaged one"
    );
    let attachments = verify_attachments(&source, &expect).expect("reads the layout");
    assert!(
        attachments.passed(),
        "no layer is read: {}",
        serde_json::to_string(&attachments).unwrap()
    );
    // What it does check: a required provenance this image lacks.
    let mut strict = Expectations::default();
    strict.policy.require = vec![Attachment::Provenance];
    let report = verify_attachments(&source, &strict).unwrap();
    assert!(!report.passed());
    let failed: Vec<&str> = report
        .platforms
        .iter()
        .flat_map(|p| &p.checks)
        .filter(|c| c.status == gopack_core::verify::Status::Fail)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(failed, ["provenance.present"]);
}
