//! The cache proves what it returns: every cached blob and binary is checked
//! against its recorded digest and size before it goes into an image. A damaged
//! entry is reported ([`crate::report::Event::Warning`]), discarded and rebuilt, never shipped.
//!
//! Blobs are named by their digest; a binary's digest and size are recorded
//! (sealed, see [`Cache::put_sealed`]) in `bin-sums/<key>` before the binary is
//! stored, so a binary without an intact record, or whose bytes differ from it,
//! is not trusted. A binary entry that is no regular file (a folder, a
//! symlink) is damage too: reported and removed, so that the build can store
//! the binary again.

use crate::cache::{Cache, Kind, Sealed};
use crate::error::{Error, IoContext, Result};
use crate::oci::{digest, Blob};
use crate::report::Reporter;
use camino::Utf8Path;
use sha2::{Digest as _, Sha256};
use std::io::Read;

/// `(sha256:<hex>, size)` of a file, streamed.
pub fn file_digest(path: &Utf8Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    Ok((digest::from_hash(&hasher.finalize()), size))
}

/// Why the file at `path` is not `digest` of `size` bytes; `None` when it is.
/// The size is compared first, so most damage costs no hashing.
pub fn mismatch(path: &Utf8Path, digest: &str, size: u64) -> Option<String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => return Some("is not a regular file".into()),
        Ok(meta) if meta.len() != size => {
            return Some(format!("has {} bytes, {size} were recorded", meta.len()))
        }
        Ok(_) => {}
        Err(e) => return Some(format!("cannot be read: {e}")),
    }
    match file_digest(path) {
        Ok((actual, _)) if actual == digest => None,
        Ok((actual, _)) => Some(format!("hashes to {actual}, {digest} was recorded")),
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

/// [`mismatch`] for an entry of `cache`: the content hash is remembered by
/// the file's identity, so an entry unchanged since a run checked it is not
/// read again.
pub fn entry_mismatch(cache: &Cache, path: &Utf8Path, digest: &str, size: u64) -> Option<String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => return Some("is not a regular file".into()),
        Ok(meta) if meta.len() != size => {
            return Some(format!("has {} bytes, {size} were recorded", meta.len()))
        }
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    match cache.entry_hash(path, &meta) {
        Ok(hash) if digest::from_hash(&hash) == digest => None,
        Ok(hash) => Some(format!(
            "hashes to {}, {digest} was recorded",
            digest::from_hash(&hash)
        )),
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

/// Reports a damaged entry and removes it (and `also`, e.g. its record), so
/// that it is rebuilt ([`Cache::discard`]).
pub fn discard(
    reporter: &dyn Reporter,
    cache: &Cache,
    kind: Kind,
    key: &str,
    why: &str,
    also: &[(Kind, &str)],
) {
    cache.discard(reporter, kind, key, why, also);
}

/// The cached blob, checked (size and content); a damaged one is discarded and
/// `None` returned.
pub fn checked_blob(
    cache: &Cache,
    blob: &Blob,
    reporter: &dyn Reporter,
) -> Option<camino::Utf8PathBuf> {
    let path = cache.get(Kind::Blobs, blob.key())?;
    match entry_mismatch(cache, &path, &blob.digest, blob.size) {
        None => Some(path),
        Some(why) => {
            discard(reporter, cache, Kind::Blobs, blob.key(), &why, &[]);
            None
        }
    }
}

/// The text of a binary's record: `sha256:<hex> <size>`.
pub fn binary_record(digest: &str, size: u64) -> String {
    format!("{digest} {size}\n")
}

/// Records a binary's digest and size under its key; done before the binary is
/// stored, so a stored binary always has a record.
pub fn record_binary(cache: &Cache, key: &str, path: &Utf8Path) -> Result<()> {
    let (digest, size) = file_digest(path).at(path, "read")?;
    cache.put_sealed(Kind::BinSums, key, binary_record(&digest, size).as_bytes())?;
    Ok(())
}

/// The cached binary `key`, checked against its record; a damaged or
/// unrecorded binary, or an entry that is no regular file, is reported and
/// discarded (`None`).
pub fn checked_binary(
    cache: &Cache,
    key: &str,
    reporter: &dyn Reporter,
) -> Option<camino::Utf8PathBuf> {
    if let Some(why) = cache.not_a_file(Kind::Bin, key) {
        discard(
            reporter,
            cache,
            Kind::Bin,
            key,
            &why,
            &[(Kind::BinSums, key)],
        );
        return None;
    }
    let path = cache.get(Kind::Bin, key)?;
    binary_ok(cache, key, &path, reporter).then_some(path)
}

/// Whether the cached binary `key` at `path` matches its record; a damaged or
/// unrecorded binary is reported and discarded.
pub fn binary_ok(cache: &Cache, key: &str, path: &Utf8Path, reporter: &dyn Reporter) -> bool {
    let why = match cache.get_sealed(Kind::BinSums, key) {
        Sealed::Intact(record) => match parse_binary_record(&record) {
            Some((digest, size)) => entry_mismatch(cache, path, &digest, size),
            None => Some("has a record gopack cannot read".into()),
        },
        Sealed::Missing => Some("has no recorded digest".into()),
        Sealed::Damaged(why) => Some(format!("has a record that {why}")),
    };
    match why {
        None => true,
        Some(why) => {
            discard(
                reporter,
                cache,
                Kind::Bin,
                key,
                &why,
                &[(Kind::BinSums, key)],
            );
            false
        }
    }
}

/// The digest and size recorded for the cached binary `key`, when its record
/// is intact.
pub fn recorded_binary(cache: &Cache, key: &str) -> Option<(String, u64)> {
    match cache.get_sealed(Kind::BinSums, key) {
        Sealed::Intact(record) => parse_binary_record(&record),
        _ => None,
    }
}

/// `(digest, size)` of a binary's record.
fn parse_binary_record(record: &[u8]) -> Option<(String, u64)> {
    let text = std::str::from_utf8(record).ok()?;
    let (digest, size) = text.trim().split_once(' ')?;
    digest::hex_part(digest)?;
    Some((digest.to_string(), size.parse::<u64>().ok()?))
}

/// Copies a cached blob to `target` (a plain copy, or a reflink where the file
/// system makes one: never a hard link, so damage in one cannot reach the other)
/// and checks the copy. On a mismatch the cache entry is discarded too.
pub fn copy_blob(cache: &Cache, blob: &Blob, target: &Utf8Path) -> Result<()> {
    let source = cache.entry_path(Kind::Blobs, blob.key());
    std::fs::copy(&source, target).at(target, "copy a blob to")?;
    if let Some(why) = mismatch(target, &blob.digest, blob.size) {
        let _ = std::fs::remove_file(&source);
        return Err(damaged(&source, &why));
    }
    Ok(())
}

/// A reader over a cached blob that fails at its end unless the bytes read were
/// exactly the blob's size and digest.
pub struct CheckedReader {
    file: std::io::Take<std::fs::File>,
    hasher: Sha256,
    read: u64,
    blob: Blob,
}

impl CheckedReader {
    /// Opens the cached blob.
    pub fn open(cache: &Cache, blob: &Blob) -> Result<CheckedReader> {
        let path = cache.entry_path(Kind::Blobs, blob.key());
        let file = std::fs::File::open(&path).at(&path, "read")?;
        Ok(CheckedReader {
            // One byte more than the size, to notice a longer file.
            file: file.take(blob.size.saturating_add(1)),
            hasher: Sha256::new(),
            read: 0,
            blob: blob.clone(),
        })
    }
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if n == 0 || self.read > self.blob.size {
            let digest = digest::from_hash(&self.hasher.clone().finalize());
            if self.read != self.blob.size || digest != self.blob.digest {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "cached blob {} is damaged ({} bytes hashing to {digest}); remove it and run again",
                        self.blob.digest, self.read
                    ),
                ));
            }
        }
        Ok(n)
    }
}

fn damaged(path: &Utf8Path, why: &str) -> Error {
    Error::Invalid {
        path: path.to_string(),
        message: format!("the cache entry {why}; it was removed"),
        help: "something changed the cache while gopack ran; run the command again".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Event, Recorder};

    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache =
            Cache::open(camino::Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
        (dir, cache)
    }

    fn flip(path: &Utf8Path) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn damaged_blobs_are_discarded() {
        let (_dir, cache) = cache();
        let blob = Blob {
            digest: digest::sha256(b"layer bytes"),
            size: 11,
            media_type: "x".into(),
        };
        let path = cache.put(Kind::Blobs, blob.key(), b"layer bytes").unwrap();
        let recorder = Recorder::default();
        assert_eq!(checked_blob(&cache, &blob, &recorder), Some(path.clone()));
        let mut read = Vec::new();
        CheckedReader::open(&cache, &blob)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, b"layer bytes");
        flip(&path);
        let mut read = Vec::new();
        let err = CheckedReader::open(&cache, &blob)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        assert_eq!(checked_blob(&cache, &blob, &recorder), None);
        assert!(!path.exists());
        assert!(
            matches!(&recorder.events()[0], Event::Warning { message } if message.contains("hashes to"))
        );
    }

    #[test]
    fn binaries_need_their_record() {
        let (dir, cache) = cache();
        let built = Utf8Path::from_path(dir.path()).unwrap().join("built");
        std::fs::write(&built, b"hello").unwrap();
        record_binary(&cache, "k", &built).unwrap();
        let entry = cache.put(Kind::Bin, "k", b"hello").unwrap();
        let recorder = Recorder::default();
        assert!(binary_ok(&cache, "k", &entry, &recorder));
        std::fs::write(&entry, b"jello").unwrap();
        assert!(!binary_ok(&cache, "k", &entry, &recorder));
        assert!(cache.get(Kind::Bin, "k").is_none() && cache.get(Kind::BinSums, "k").is_none());
        let entry = cache.put(Kind::Bin, "k", b"hello").unwrap();
        assert!(
            !binary_ok(&cache, "k", &entry, &recorder),
            "no record, no trust"
        );
        assert_eq!(recorder.events().len(), 2);
    }
}
