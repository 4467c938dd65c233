//! Entry points for fuzzing verify's parsers of image bytes, shared by the
//! cargo-fuzz targets in `fuzz/` and by the test that replays their seed
//! corpus (`gopack-core/tests/fuzz_corpus.rs`). Each takes any bytes and must
//! return, within small budgets, without a panic: what it finds is dropped.
//!
//! Not a stable API: it exists for the fuzz targets.

use super::buildinfo::read_build_info;
use super::elf::{self, ElfFacts};
use super::layers::Tree;
use super::limits::Budget;
use super::paths::{climbs_out, name_problem};
use super::source::{blob_name, Store};
use super::{verify, Expectations, ImageSource};
use crate::config::{ByteSize, Limits, Policy};
use crate::oci::documents::{ImageConfig, Index, Manifest};
use std::collections::BTreeSet;
use std::io::Write;

/// Budgets small enough for many runs a second.
fn small_limits() -> Limits {
    Limits {
        max_file_size: ByteSize(4 << 20),
        max_unpacked_size: ByteSize(64 << 20),
        max_entries: 20_000,
        max_seconds: 10,
    }
}

/// The tar layer reader: any compression, whiteouts, links, then path resolution.
pub fn tar_layer(bytes: &[u8]) {
    let wanted = BTreeSet::from(["/etc/passwd".to_string(), "/app".to_string()]);
    let budget = Budget::new(small_limits());
    if let Ok(tree) = Tree::read_bytes(bytes, &wanted, &budget) {
        for path in ["/app", "/etc/passwd", "/usr/bin/../bin/sh", "/a/b/c"] {
            let _ = tree.resolve(path);
        }
        for path in tree.nodes.keys().take(64) {
            let _ = tree.resolve(path);
        }
    }
}

/// `fs.paths`: the tree reader's findings on a layer (names, symlink and
/// hard-link targets, links to nothing, loops), the same bytes indexed as an
/// image archive (its members' names and links), and the lexical rules on
/// every line of the input.
pub fn fs_paths(bytes: &[u8]) {
    let budget = Budget::new(small_limits());
    if let Ok(tree) = Tree::read_bytes(bytes, &BTreeSet::new(), &budget) {
        assert!(tree.paths.kept.len() <= tree.paths.len());
        for path in tree.nodes.keys().take(64) {
            let _ = tree.resolve(path);
        }
    }
    if let Ok(mut file) = tempfile::Builder::new()
        .prefix("gopack-fuzz-")
        .suffix(".tar")
        .tempfile()
    {
        if file.write_all(bytes).is_ok() {
            if let Some(path) = file.path().to_str() {
                if let Ok(store) = Store::open(path.into(), Budget::new(small_limits())) {
                    let _ = store.findings.len();
                    for name in [
                        "manifest.json",
                        "index.json",
                        "../../etc/passwd",
                        "/etc/passwd",
                    ] {
                        let _ = store.has(name);
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().take(256).collect();
    for pair in lines.windows(2) {
        let _ = name_problem(pair[0]);
        let _ = climbs_out(pair[0], pair[1]);
    }
}

/// The ELF reader and the Go build info reader.
pub fn elf_binary(bytes: &[u8]) {
    if let Ok(facts) = ElfFacts::parse(bytes) {
        let _ = facts.is_static();
        let _ = elf::machine_name(facts.machine, facts.little_endian);
    }
    let _ = read_build_info(bytes);
    let _ = elf::contains(bytes, b"crypto/x509.");
}

/// The image documents: index, manifest and config as verify reads them.
pub fn documents(bytes: &[u8]) {
    if let Ok(index) = serde_json::from_slice::<Index>(bytes) {
        for descriptor in &index.manifests {
            let _ = blob_name(&descriptor.digest);
        }
    }
    if let Ok(manifest) = serde_json::from_slice::<Manifest>(bytes) {
        for layer in &manifest.layers {
            let _ = blob_name(&layer.digest);
        }
    }
    if let Ok(config) = serde_json::from_slice::<ImageConfig>(bytes) {
        let _ = config.rootfs.diff_ids.len();
        let _ = config.config.as_ref().map(|c| c.entrypoint.clone());
    }
    let _ = serde_json::from_slice::<Policy>(bytes);
}

/// The whole of verify on an archive: the bytes are written as an OCI or
/// `docker save` archive and verified with small budgets.
pub fn image_archive(bytes: &[u8]) {
    let Ok(mut file) = tempfile::Builder::new()
        .prefix("gopack-fuzz-")
        .suffix(".tar")
        .tempfile()
    else {
        return;
    };
    if file.write_all(bytes).is_err() {
        return;
    }
    let Some(path) = file.path().to_str() else {
        return;
    };
    let mut expect = Expectations::default();
    expect.policy.limits = small_limits();
    if let Ok(report) = verify(&ImageSource::Path(path.into()), &expect) {
        let _ = report.table();
        let _ = super::junit(std::slice::from_ref(&report));
    }
}
