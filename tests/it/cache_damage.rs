//! Every kind of cache record proves its content: an SBOM, a tool's answer, a
//! layer record or a binary entry that was damaged, forged or swapped is
//! reported, removed and rebuilt in the same run, which exits 0 with the
//! image it would have made from an empty cache.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The layout's blobs, each checked against its name: equal sets mean the
/// same image, attachments (SBOM, provenance) included.
fn layout_blobs(ws: &TestWorkspace) -> BTreeSet<String> {
    let dir = ws.root.join("target/gopack/hello/oci/blobs/sha256");
    dir.read_dir_utf8()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let bytes = std::fs::read(entry.path()).unwrap();
            assert_eq!(sha256_hex(&bytes), entry.file_name(), "{}", entry.path());
            entry.file_name().to_string()
        })
        .collect()
}

/// The one entry of a cache folder.
fn only_entry(ws: &TestWorkspace, kind: &str) -> Utf8PathBuf {
    let entries = cache_entries(&ws.cache_dir(), kind);
    assert_eq!(entries.len(), 1, "{kind}: {entries:?}");
    ws.cache_dir().join(kind).join(&entries[0])
}

/// A sealed entry's content (after its seal line).
fn sealed_content(path: &Utf8Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let newline = bytes.iter().position(|b| *b == b'\n').unwrap();
    assert!(bytes.starts_with(b"gopack-sealed v1 sha256:"), "{path}");
    bytes[newline + 1..].to_vec()
}

/// Seals `content` as gopack does (no secret: anyone who writes the cache can).
fn seal(kind: &str, key: &str, content: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for (name, value) in [
        ("domain", "seal/v1".as_bytes()),
        ("kind", kind.as_bytes()),
        ("key", key.as_bytes()),
        ("content", content),
    ] {
        for part in [name.as_bytes(), value] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut sealed = format!("gopack-sealed v1 sha256:{hex}\n").into_bytes();
    sealed.extend_from_slice(content);
    sealed
}

/// Packs again and checks: exit 0, a warning naming the damaged entry, the same image.
fn assert_healed(ws: &TestWorkspace, digest: &str, blobs: &BTreeSet<String>, what: &str) -> String {
    let (again, events) = pack_json(ws);
    assert_eq!(again, digest, "{what}: another image digest");
    assert!(
        events.contains("\"event\":\"warning\"") && events.contains("damaged cache entry"),
        "{what} was not reported: {events}"
    );
    assert_eq!(
        &layout_blobs(ws),
        blobs,
        "{what}: another image or attachment"
    );
    // Healed for good: the next run has nothing to report.
    let (third, events) = pack_json(ws);
    assert_eq!(third, digest);
    assert!(!events.contains("damaged cache entry"), "{what}: {events}");
    events
}

#[test]
fn a_flipped_byte_in_a_cached_sbom_is_never_shipped() {
    let ws = hello_workspace();
    let (digest, _) = pack_json(&ws);
    let blobs = layout_blobs(&ws);
    let entry = only_entry(&ws, "sbom");
    let bytes = std::fs::read(&entry).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("stdlib"), "{text}");
    std::fs::write(&entry, text.replacen("stdlib", "stelib", 1)).unwrap();
    assert_healed(&ws, &digest, &blobs, "a damaged SBOM");
    let healed = String::from_utf8(std::fs::read(&entry).unwrap()).unwrap();
    assert!(!healed.contains("stelib"), "{healed}");
}

#[test]
fn a_forged_go_version_record_is_caught_and_go_asked_again() {
    let ws = hello_workspace();
    let (digest, _) = pack_json(&ws);
    let blobs = layout_blobs(&ws);
    let entry = only_entry(&ws, "tools");
    let key = entry.file_name().unwrap().to_string();
    let real = String::from_utf8(sealed_content(&entry)).unwrap();
    assert!(real.starts_with("go1."), "{real}");

    // Edited in place: the seal no longer matches.
    let text = String::from_utf8(std::fs::read(&entry).unwrap()).unwrap();
    std::fs::write(&entry, text.replace(real.trim(), "go1.99.9")).unwrap();
    assert_healed(&ws, &digest, &blobs, "an edited go version");
    assert_eq!(String::from_utf8(sealed_content(&entry)).unwrap(), real);

    // Forged with a valid seal: Go's own VERSION file contradicts it.
    std::fs::write(&entry, seal("tools", &key, b"go1.99.9\n")).unwrap();
    let events = assert_healed(&ws, &digest, &blobs, "a forged go version");
    assert!(!events.contains("go1.99.9"), "{events}");
    for blob in &blobs {
        let bytes = std::fs::read(
            ws.root
                .join("target/gopack/hello/oci/blobs/sha256")
                .join(blob),
        )
        .unwrap();
        assert!(
            !bytes.windows(8).any(|w| w == b"go1.99.9"),
            "the forged version reached blob {blob}"
        );
    }
}

/// The layer records: (path, record) of the base layer and of the app layer.
fn layer_records(ws: &TestWorkspace, digest: &str) -> [(Utf8PathBuf, serde_json::Value); 2] {
    let layout = ws.root.join("target/gopack/hello/oci");
    let manifest = layout_json(&layout, digest);
    let find = |layer: usize| {
        let wanted = manifest["layers"][layer]["digest"].as_str().unwrap();
        cache_entries(&ws.cache_dir(), "layers")
            .into_iter()
            .map(|name| ws.cache_dir().join("layers").join(name))
            .map(|path| {
                let record: serde_json::Value =
                    serde_json::from_slice(&sealed_content(&path)).unwrap();
                (path, record)
            })
            .find(|(_, record)| record["digest"] == wanted)
            .unwrap_or_else(|| panic!("no record of layer {wanted}"))
    };
    [find(0), find(1)]
}

#[test]
fn an_app_layer_record_replaced_by_the_base_layers_heals() {
    let ws = hello_workspace();
    let (digest, _) = pack_json(&ws);
    let blobs = layout_blobs(&ws);
    let [(base, _), (app, _)] = layer_records(&ws, &digest);
    std::fs::copy(&base, &app).unwrap();
    assert_healed(&ws, &digest, &blobs, "a swapped layer record");
    let out = ws.xtask(["verify", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn an_edited_diff_id_in_a_layer_record_heals() {
    let ws = hello_workspace();
    let (digest, _) = pack_json(&ws);
    let blobs = layout_blobs(&ws);
    let [_, (app, record)] = layer_records(&ws, &digest);
    let diff_id = record["diff_id"].as_str().unwrap();
    let mut edited = diff_id.to_string();
    let last = edited.pop().unwrap();
    edited.push(if last == '0' { '1' } else { '0' });
    let text = String::from_utf8(std::fs::read(&app).unwrap()).unwrap();
    std::fs::write(&app, text.replace(diff_id, &edited)).unwrap();
    assert_healed(&ws, &digest, &blobs, "an edited diff_id");
}

#[test]
fn a_binary_entry_replaced_by_a_folder_heals() {
    let ws = hello_workspace();
    let (digest, _) = pack_json(&ws);
    let blobs = layout_blobs(&ws);
    let binary = only_entry(&ws, "bin");
    std::fs::remove_file(&binary).unwrap();
    std::fs::create_dir_all(binary.join("inside")).unwrap();
    assert_healed(&ws, &digest, &blobs, "a folder as a binary");
    assert!(binary.is_file(), "the binary entry was not stored again");
}
