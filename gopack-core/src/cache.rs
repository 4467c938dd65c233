//! The content-addressed cache: entries are files named by a key, written
//! under a temporary name and renamed into place, so a killed run never
//! leaves an entry that a later run trusts, and concurrent runs on one cache
//! both succeed (the last rename wins with identical content).
//!
//! Keys come from [`KeyHasher`]: content hashes, never mtimes or build ids.

use crate::error::{IoContext, Result};
use crate::statcache::StatCache;
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Temporary files not written to for this long are left over by killed runs
/// and removed (the cache takes no lock, so age is the only sign of an owner).
const STALE_TEMP_AGE: Duration = Duration::from_secs(15 * 60);

/// Prefix of temporary files; never read as entries.
const TEMP_PREFIX: &str = ".tmp-";

/// Every kind of entry, one folder each: `clean` removes a cache folder only
/// when it holds nothing else. A new kind of entry is added here.
pub const FOLDERS: &[&str] = &[
    "archives", "bin", "bin-sums", "blobs", "deps", "layers", "origins", "sbom", "stat", "tools",
    "vcs", "verified",
];

/// A cache folder with one subfolder per kind of entry (`deps`, `bin`, `blobs`, ...).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Utf8PathBuf,
    /// Content hashes of the cache's own entries by file identity, shared by
    /// every clone and saved when the last one is dropped.
    identities: Arc<Identities>,
}

/// The stat cache of entries' content hashes (`stat/entries`), opened on first use.
#[derive(Debug)]
struct Identities {
    dir: Utf8PathBuf,
    stats: Mutex<Option<StatCache>>,
}

impl Drop for Identities {
    fn drop(&mut self) {
        let stats = self.stats.get_mut().map(Option::take);
        if let Ok(Some(stats)) = stats {
            // Best effort: a record not written only costs a hash next run.
            if let Ok(cache) = Cache::open(self.dir.clone()) {
                stats.save(&cache);
            }
        }
    }
}

impl Cache {
    /// Opens (and creates) the cache at `dir`.
    pub fn open(dir: impl Into<Utf8PathBuf>) -> Result<Cache> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).at(&dir, "create the cache folder")?;
        let identities = Arc::new(Identities {
            dir: dir.clone(),
            stats: Mutex::new(None),
        });
        Ok(Cache { dir, identities })
    }

    /// The SHA-256 of an entry's content (`meta` is its `stat`), read only when
    /// the file's identity changed since a run last hashed it: any write to the
    /// file changes its ctime, so a rewritten entry is always read again.
    pub fn entry_hash(&self, path: &Utf8Path, meta: &std::fs::Metadata) -> Result<[u8; 32]> {
        let mut stats = self
            .identities
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        stats
            .get_or_insert_with(|| StatCache::open_shared(self, "entries"))
            .content_hash(path, meta)
    }

    /// The cache's root folder.
    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    /// The path an entry has (whether or not it exists).
    pub fn entry_path(&self, kind: &str, key: &str) -> Utf8PathBuf {
        debug_assert!(
            FOLDERS.contains(&kind),
            "cache kind {kind} is not in FOLDERS"
        );
        self.dir.join(kind).join(key)
    }

    /// The entry's path if it exists.
    pub fn get(&self, kind: &str, key: &str) -> Option<Utf8PathBuf> {
        let path = self.entry_path(kind, key);
        path.is_file().then_some(path)
    }

    /// A temporary path in the kind's folder, for a child process (like `go build -o`)
    /// to write to; [`Cache::commit`] renames it into place.
    pub fn temp_path(&self, kind: &str) -> Result<tempfile::TempPath> {
        let folder = self.kind_dir(kind)?;
        let file = temp_builder()
            .tempfile_in(&folder)
            .at(&folder, "create a temporary file in")?;
        Ok(file.into_temp_path())
    }

    /// Renames a finished temporary file into the entry `key`.
    pub fn commit(&self, kind: &str, key: &str, temp: tempfile::TempPath) -> Result<Utf8PathBuf> {
        let path = self.entry_path(kind, key);
        temp.persist(&path)
            .map_err(|e| e.error)
            .at(&path, "store a cache entry at")?;
        Ok(path)
    }

    /// Writes `bytes` as the entry `key`, atomically.
    pub fn put(&self, kind: &str, key: &str, bytes: &[u8]) -> Result<Utf8PathBuf> {
        let folder = self.kind_dir(kind)?;
        let mut file = temp_builder()
            .tempfile_in(&folder)
            .at(&folder, "create a temporary file in")?;
        file.write_all(bytes)
            .at(file.path().to_string_lossy().as_ref(), "write")?;
        self.commit(kind, key, file.into_temp_path())
    }

    /// A writer for a new entry whose key is known only at the end (e.g. a blob
    /// named by its digest): write, then [`Cache::commit`] the temp path.
    pub fn temp_file(&self, kind: &str) -> Result<tempfile::NamedTempFile> {
        let folder = self.kind_dir(kind)?;
        temp_builder()
            .tempfile_in(&folder)
            .at(&folder, "create a temporary file in")
    }

    fn kind_dir(&self, kind: &str) -> Result<Utf8PathBuf> {
        debug_assert!(
            FOLDERS.contains(&kind),
            "cache kind {kind} is not in FOLDERS"
        );
        let folder = self.dir.join(kind);
        if !folder.is_dir() {
            std::fs::create_dir_all(&folder).at(&folder, "create the cache folder")?;
            return Ok(folder);
        }
        remove_stale_temps(&folder);
        Ok(folder)
    }
}

/// Temporary files readable by all, like files a user creates: entries are
/// copied into image layouts that other tools and users read.
fn temp_builder() -> tempfile::Builder<'static, 'static> {
    use std::os::unix::fs::PermissionsExt;
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(TEMP_PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o644));
    builder
}

/// Removes temporary files that killed runs left behind. Best effort: another
/// run may remove the same file first.
fn remove_stale_temps(folder: &Utf8Path) {
    let Ok(entries) = folder.read_dir_utf8() else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !entry.file_name().starts_with(TEMP_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP_AGE)
            .unwrap_or(false);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Builds a cache key: SHA-256 over named, length-prefixed fields, so that
/// no two different inputs can run together into the same byte stream.
#[derive(Clone)]
pub struct KeyHasher {
    hasher: Sha256,
}

impl KeyHasher {
    /// A hasher for keys of one kind and format version, e.g. `"bin/v1"`.
    pub fn new(domain: &str) -> Self {
        let mut hasher = KeyHasher {
            hasher: Sha256::new(),
        };
        hasher.field("domain", domain.as_bytes());
        hasher
    }

    /// Adds one named field.
    pub fn field(&mut self, name: &str, value: &[u8]) -> &mut Self {
        for part in [name.as_bytes(), value] {
            self.hasher.update((part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
        self
    }

    /// Adds one named field whose value is a file's content, streamed.
    pub fn file(&mut self, name: &str, path: &Utf8Path) -> Result<&mut Self> {
        let mut file = std::fs::File::open(path).at(path, "read")?;
        let len = file.metadata().at(path, "read")?.len();
        self.hasher.update((name.len() as u64).to_le_bytes());
        self.hasher.update(name.as_bytes());
        self.hasher.update(len.to_le_bytes());
        let copied =
            std::io::copy(&mut (&mut file).take(len), &mut self.hasher).at(path, "read")?;
        if copied != len {
            return Err(crate::error::Error::Invalid {
                path: path.to_string(),
                message: "the file changed size while gopack read it".into(),
                help: "run again once nothing writes to it".into(),
            });
        }
        Ok(self)
    }

    /// Adds a named text field.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.field(name, value.as_bytes())
    }

    /// The key as lower-case hex.
    pub fn finish(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_run_together() {
        let a = KeyHasher::new("t").text("a", "bc").finish();
        let b = KeyHasher::new("t").text("ab", "c").finish();
        assert_ne!(a, b);
        assert_eq!(a, KeyHasher::new("t").text("a", "bc").finish());
    }

    #[test]
    fn entries_appear_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
        let temp = cache.temp_path("bin").unwrap();
        std::fs::write(&temp, b"half").unwrap();
        assert!(cache.get("bin", "k").is_none());
        drop(temp);
        assert!(cache.get("bin", "k").is_none());
        cache.put("bin", "k", b"whole").unwrap();
        assert_eq!(
            std::fs::read(cache.get("bin", "k").unwrap()).unwrap(),
            b"whole"
        );
        // A leftover temp file is never an entry.
        let leftover = cache.temp_path("bin").unwrap().keep().unwrap();
        assert!(leftover
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(TEMP_PREFIX));
        assert_eq!(cache.get("bin", "k").map(|_| ()), Some(()));
    }
}
