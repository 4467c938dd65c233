//! Deterministic layers: a [`Tree`] written as tar, gzip-compressed, hashed
//! as it streams (memory does not grow with the binary's size).
//!
//! Same tree and mtime, same bytes: entries sorted, one fixed mtime, uid/gid
//! 0 with no user or group names, explicit modes, no host metadata, and a
//! gzip header with no timestamp and no file name. The gzip is compressed
//! in blocks on every core ([`super::pgzip`]), with the same bytes on any number.

use super::pgzip::ParallelGzip;
use super::tar::header;
use super::tree::{Content, Entry, Tree};
use crate::error::{IoContext, Result};
use flate2::Compression;
use sha2::{Digest, Sha256};
use std::io::{self, Write};

/// The digests of a written layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed tar (the config's diff_id).
    pub diff_id: String,
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The inner writer, the `sha256:<hex>` digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        let digest = super::digest::from_hash(&self.hasher.finalize());
        (self.inner, digest, self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The gzip level of every layer. Chosen by numbers (`cargo xtask bench
/// --levels`, docs/benchmarks.md): on real Go binaries level 3 writes 3 %
/// more bytes than level 6 in about 70 % of the time; level 1 (zlib-rs's
/// quick strategy) writes 28 % more. Part of every layer digest.
pub const LEVEL: u32 = 3;

/// Writes `tree` as a gzip-compressed tar to `out`; returns the digests and `out`.
pub fn write_layer<W: Write>(tree: &Tree, mtime: u64, out: W) -> Result<(LayerInfo, W)> {
    let compressed = HashingWriter::new(out);
    let gzip = ParallelGzip::new(compressed, Compression::new(LEVEL))
        .at("layer", "start the gzip stream")?;
    let uncompressed = HashingWriter::new(gzip);
    let mut builder = tar::Builder::new(uncompressed);
    builder.mode(tar::HeaderMode::Deterministic);
    for entry in tree.entries() {
        append(&mut builder, entry, mtime).at(entry.path.as_str(), "write the layer entry")?;
    }
    let uncompressed = builder.into_inner().at("layer", "finish the tar stream")?;
    let (gzip, diff_id, _) = uncompressed.finish();
    let compressed = finish_gzip(gzip).at("layer", "finish the gzip stream")?;
    let (out, digest, size) = compressed.finish();
    Ok((
        LayerInfo {
            digest,
            size,
            diff_id,
        },
        out,
    ))
}

fn finish_gzip<W: Write>(gzip: ParallelGzip<W>) -> io::Result<W> {
    gzip.finish()
}

fn append<W: Write>(builder: &mut tar::Builder<W>, entry: &Entry, mtime: u64) -> io::Result<()> {
    match &entry.content {
        Content::Dir => {
            let mut header = header(tar::EntryType::Directory, entry.mode, mtime, 0);
            builder.append_data(&mut header, format!("{}/", entry.path), io::empty())
        }
        Content::Bytes(bytes) => {
            let mut header = header(
                tar::EntryType::Regular,
                entry.mode,
                mtime,
                bytes.len() as u64,
            );
            builder.append_data(&mut header, &entry.path, bytes.as_slice())
        }
        Content::Host(path) => {
            let file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            let mut header = header(tar::EntryType::Regular, entry.mode, mtime, size);
            // A file that changes size while it is read would corrupt the stream.
            builder.append_data(&mut header, &entry.path, io::Read::take(file, size))
        }
        Content::Symlink(target) => {
            let mut header = header(tar::EntryType::Symlink, entry.mode, mtime, 0);
            builder.append_link(&mut header, &entry.path, target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Tree {
        let mut tree = Tree::default();
        tree.file(
            "etc/passwd",
            0o644,
            Content::Bytes(b"root:x:0:0::/:/sbin/nologin\n".to_vec()),
        );
        tree.dir("tmp", 0o1777);
        tree.file(
            "usr/share/zoneinfo/UTC2",
            0o777,
            Content::Symlink("Etc/UTC".into()),
        );
        tree
    }

    #[test]
    fn same_tree_same_bytes_and_digests_match() {
        let (a, bytes_a) = write_layer(&tree(), 1_700_000_000, Vec::new()).unwrap();
        let (b, bytes_b) = write_layer(&tree(), 1_700_000_000, Vec::new()).unwrap();
        assert_eq!(a, b);
        assert_eq!(bytes_a, bytes_b);
        assert_eq!(a.size, bytes_a.len() as u64);
        assert_eq!(
            a.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes_a)))
        );
        // No timestamp and no name in the gzip header; OS byte fixed.
        assert_eq!(&bytes_a[4..8], &[0, 0, 0, 0]);
        assert_eq!(bytes_a[3] & 0x08, 0);

        let mut tar_bytes = Vec::new();
        io::copy(
            &mut flate2::read::GzDecoder::new(bytes_a.as_slice()),
            &mut tar_bytes,
        )
        .unwrap();
        assert_eq!(
            a.diff_id,
            format!("sha256:{}", hex::encode(Sha256::digest(&tar_bytes)))
        );
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries[0], ("etc/".into(), 0o755, 0, 1_700_000_000));
        assert_eq!(entries[1], ("etc/passwd".into(), 0o644, 0, 1_700_000_000));
        assert_eq!(entries[2], ("tmp/".into(), 0o1777, 0, 1_700_000_000));
    }

    /// The deflate backend, level and block size are part of every layer
    /// digest: a change of any (or a feature of another crate switching flate2
    /// to a C zlib) moves image digests, and must be a deliberate, documented
    /// one. The file spans several blocks of [`super::super::pgzip::BLOCK`].
    #[test]
    fn layer_bytes_are_pinned() {
        let mut tree = tree();
        let text: String = (0..20000)
            .map(|i| format!("line {i} of a pinned file\n"))
            .collect();
        tree.file("etc/pinned", 0o644, Content::Bytes(text.into_bytes()));
        let (info, _) = write_layer(&tree, 1_700_000_000, Vec::new()).unwrap();
        assert_eq!(
            info.digest,
            "sha256:cbfa68d0e8ad8ff4e0e93dc3b2e7d6d0443675c2e0419efe33bf18bb69f8ff9c"
        );
    }

    #[test]
    fn mtime_changes_the_digest() {
        let (a, _) = write_layer(&tree(), 1, Vec::new()).unwrap();
        let (b, _) = write_layer(&tree(), 2, Vec::new()).unwrap();
        assert_ne!(a.digest, b.digest);
    }
}
