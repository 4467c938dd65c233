//! Sealed entries: a first line `gopack-sealed v1 sha256:<hex>`, a digest of
//! the entry's kind, key and content, then the content. A seal proves an
//! entry intact and written for its key; it holds no secret, so it does not
//! prove who wrote it.

use super::{Cache, KeyHasher, Kind, MAX_SEALED, SEAL_HEADER};
use crate::error::Result;
use crate::report::Reporter;
use camino::{Utf8Path, Utf8PathBuf};
use std::io::Read;

/// What a sealed entry holds ([`Cache::get_sealed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealed {
    /// No entry.
    Missing,
    /// The content, its seal intact.
    Intact(Vec<u8>),
    /// Why the entry cannot be trusted.
    Damaged(String),
}

impl Cache {
    /// Writes `content` as the entry `key`, sealed with a digest of the kind,
    /// the key and the content.
    pub fn put_sealed(&self, kind: Kind, key: &str, content: &[u8]) -> Result<Utf8PathBuf> {
        let mut bytes = format!("{SEAL_HEADER}{}\n", seal(kind, key, content)).into_bytes();
        bytes.extend_from_slice(content);
        self.put(kind, key, &bytes)
    }

    /// The content of the sealed entry `key`, checked against its seal.
    pub fn get_sealed(&self, kind: Kind, key: &str) -> Sealed {
        let path = self.entry_path(kind, key);
        let bytes = match read_regular(&path, MAX_SEALED) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Sealed::Missing,
            Err(why) => return Sealed::Damaged(why),
        };
        let Some(rest) = bytes.strip_prefix(SEAL_HEADER.as_bytes()) else {
            return Sealed::Damaged("has no seal".into());
        };
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            return Sealed::Damaged("has no seal".into());
        };
        let (recorded, content) = (&rest[..end], &rest[end + 1..]);
        if recorded != seal(kind, key, content).as_bytes() {
            return Sealed::Damaged(
                "does not match its seal (its content or its name changed)".into(),
            );
        }
        Sealed::Intact(content.to_vec())
    }

    /// [`Cache::get_sealed`]; a damaged entry is reported and removed, and
    /// `None` returned as for a missing one, so that it is rebuilt.
    pub fn read_sealed(&self, kind: Kind, key: &str, reporter: &dyn Reporter) -> Option<Vec<u8>> {
        match self.get_sealed(kind, key) {
            Sealed::Intact(content) => Some(content),
            Sealed::Missing => None,
            Sealed::Damaged(why) => {
                self.discard(reporter, kind, key, &why, &[]);
                None
            }
        }
    }
}

/// The seal of an entry: SHA-256 over its kind, key and content.
fn seal(kind: Kind, key: &str, content: &[u8]) -> String {
    let hash = KeyHasher::new("seal/v1")
        .text("kind", kind.folder())
        .text("key", key)
        .field("content", content)
        .finish();
    format!("sha256:{hash}")
}

/// The content of a regular file, at most `limit` bytes; `Ok(None)` when it
/// does not exist. Opened without following a symlink or waiting on a FIFO.
pub(super) fn read_regular(
    path: &Utf8Path,
    limit: u64,
) -> std::result::Result<Option<Vec<u8>>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("is a symbolic link, not a file".into())
        }
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot be read: {e}"))?;
    if meta.is_dir() {
        return Err("is a folder, not a file".into());
    }
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if meta.len() > limit {
        return Err(format!("has {} bytes, more than a record has", meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err("grew while gopack read it".into());
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
        (dir, cache)
    }

    #[test]
    fn sealed_entries_prove_their_content_and_their_key() {
        let (_dir, cache) = open();
        assert_eq!(cache.get_sealed(Kind::Layers, "a"), Sealed::Missing);
        let path = cache.put_sealed(Kind::Layers, "a", b"{\"x\":1}").unwrap();
        assert_eq!(
            cache.get_sealed(Kind::Layers, "a"),
            Sealed::Intact(b"{\"x\":1}".to_vec())
        );
        // Another key's entry copied here, or another kind's, is not this one.
        cache.put_sealed(Kind::Layers, "b", b"{\"x\":2}").unwrap();
        std::fs::copy(cache.entry_path(Kind::Layers, "b"), &path).unwrap();
        assert!(matches!(
            cache.get_sealed(Kind::Layers, "a"),
            Sealed::Damaged(_)
        ));
        cache.put_sealed(Kind::Sbom, "a", b"{\"x\":1}").unwrap();
        std::fs::copy(cache.entry_path(Kind::Sbom, "a"), &path).unwrap();
        assert!(matches!(
            cache.get_sealed(Kind::Layers, "a"),
            Sealed::Damaged(_)
        ));
        // A flipped byte, an unsealed entry, a folder, a symlink, a FIFO.
        cache.put_sealed(Kind::Layers, "a", b"{\"x\":1}").unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(
            cache.get_sealed(Kind::Layers, "a"),
            Sealed::Damaged(_)
        ));
        std::fs::write(&path, b"{\"x\":1}").unwrap();
        assert_eq!(
            cache.get_sealed(Kind::Layers, "a"),
            Sealed::Damaged("has no seal".into())
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(
            matches!(cache.get_sealed(Kind::Layers, "a"), Sealed::Damaged(why) if why.contains("folder"))
        );
        assert!(cache.get(Kind::Layers, "a").is_none());
        // Storing over the folder works.
        cache.put_sealed(Kind::Layers, "a", b"1").unwrap();
        assert_eq!(
            cache.get_sealed(Kind::Layers, "a"),
            Sealed::Intact(b"1".to_vec())
        );
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        assert!(cache.get(Kind::Layers, "a").is_none());
        assert!(
            matches!(cache.get_sealed(Kind::Layers, "a"), Sealed::Damaged(why) if why.contains("symbolic"))
        );
        std::fs::remove_file(&path).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(path.as_str())
            .status()
            .expect("mkfifo (coreutils) runs");
        assert!(status.success());
        assert!(matches!(
            cache.get_sealed(Kind::Layers, "a"),
            Sealed::Damaged(_)
        ));
        let recorder = crate::report::Recorder::default();
        assert_eq!(cache.read_sealed(Kind::Layers, "a", &recorder), None);
        assert!(
            std::fs::symlink_metadata(&path).is_err(),
            "the FIFO was removed"
        );
        assert_eq!(recorder.events().len(), 1);
    }
}
