//! Replays the seed corpus of every fuzz target (`fuzz/corpus/<target>/`)
//! through the same entry points cargo-fuzz runs: no input may panic. This is
//! CI's bounded-time fuzz guard; `cargo +nightly fuzz run TARGET` in `fuzz/`
//! explores further (docs/verify.md), and inputs it finds go in the corpus.

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 3,
        "{}: the seed corpus is missing; run python3 fuzz/make_seeds.py",
        dir.display()
    );
    for input in &inputs {
        let bytes = std::fs::read(input).unwrap();
        // A panic names the input through this message.
        eprintln!("{target}: {}", input.display());
        run(&bytes);
        // Every prefix too: truncation is the commonest damage.
        for cut in [
            1,
            64,
            511,
            512,
            bytes.len() / 2,
            bytes.len().saturating_sub(1),
        ] {
            run(&bytes[..cut.min(bytes.len())]);
        }
    }
}

#[test]
fn tar_layer_corpus() {
    replay("tar_layer", gopack_core::verify::fuzz::tar_layer);
}

#[test]
fn fs_paths_corpus() {
    replay("fs_paths", gopack_core::verify::fuzz::fs_paths);
}

#[test]
fn elf_binary_corpus() {
    replay("elf_binary", gopack_core::verify::fuzz::elf_binary);
}

#[test]
fn documents_corpus() {
    replay("documents", gopack_core::verify::fuzz::documents);
}

#[test]
fn image_archive_corpus() {
    replay("image_archive", gopack_core::verify::fuzz::image_archive);
}
