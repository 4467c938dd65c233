//! The content-addressed cache: entries are files named by a key, written
//! under a temporary name and renamed into place, so a killed run never
//! leaves an entry that a later run trusts, and concurrent runs on one cache
//! both succeed (the last rename wins with identical content).
//!
//! Keys come from [`KeyHasher`]: content hashes, never mtimes or build ids.
//!
//! Small records (binary sums, layer records, SBOMs, base origins, tool
//! answers) are *sealed* ([`Cache::put_sealed`]): their file starts with a
//! digest of the entry's kind, key and content, so a damaged record, or one
//! copied under another key, is found before use ([`Cache::read_sealed`]),
//! reported, removed and rebuilt. A seal holds no secret: it proves an entry
//! intact, not who wrote it (docs/security.md says what a cache writer can do).
//!
//! [`stat`] remembers content hashes by file identity, for the cache's own
//! entries and for sources.
//!
//! [`RemoteStore`] is how a build reaches a shared cache (a registry) without
//! knowing how it is stored.

mod seal;
pub mod stat;

pub use seal::Sealed;

use crate::error::{IoContext, Result};
use crate::report::{Event, Reporter};
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};
use stat::StatCache;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Temporary files not written to for this long are left over by killed runs
/// and removed even while another run uses the cache.
const STALE_TEMP_AGE: Duration = Duration::from_secs(15 * 60);

/// The file whose `flock` tells runs sharing the cache about each other.
pub const LOCK_FILE: &str = ".lock";

/// Prefix of temporary files; never read as entries.
const TEMP_PREFIX: &str = ".tmp-";

/// The first bytes of a sealed entry, followed by `sha256:<hex>\n` and the content.
const SEAL_HEADER: &str = "gopack-sealed v1 ";

/// The largest sealed entry or stat file read (an SBOM of a very large program
/// is a few MiB).
const MAX_SEALED: u64 = 64 << 20;

/// One kind of cache entry, one folder each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `archives/`: the digest of an archive written for a layout.
    Archives,
    /// `bin/`: built binaries.
    Bin,
    /// `bin-sums/`: a binary's digest and size (sealed), written before it.
    BinSums,
    /// `blobs/`: layers and image documents, named by their digest.
    Blobs,
    /// `buildinfo/`: a binary's Go build info, by the binary's key (sealed).
    BuildInfo,
    /// `deps/`: markers that `go mod download` ran.
    Deps,
    /// `layers/`: a layer's digest, size and diff_id (sealed).
    Layers,
    /// `origins/`: the packages the base files came from (sealed).
    Origins,
    /// `sbom/`: SBOM documents (sealed).
    Sbom,
    /// `stat/`: content hashes by file identity.
    Stat,
    /// `tools/`: a tool's answers, e.g. `go env GOVERSION` (sealed).
    Tools,
    /// `vcs/`: what git said about an app's inputs.
    Vcs,
    /// `verified/`: images that passed verify.
    Verified,
}

impl Kind {
    /// Every kind, in folder order.
    pub const ALL: [Kind; 13] = [
        Kind::Archives,
        Kind::Bin,
        Kind::BinSums,
        Kind::Blobs,
        Kind::BuildInfo,
        Kind::Deps,
        Kind::Layers,
        Kind::Origins,
        Kind::Sbom,
        Kind::Stat,
        Kind::Tools,
        Kind::Vcs,
        Kind::Verified,
    ];

    /// The kind's folder name in the cache.
    pub const fn folder(self) -> &'static str {
        match self {
            Kind::Archives => "archives",
            Kind::Bin => "bin",
            Kind::BinSums => "bin-sums",
            Kind::Blobs => "blobs",
            Kind::BuildInfo => "buildinfo",
            Kind::Deps => "deps",
            Kind::Layers => "layers",
            Kind::Origins => "origins",
            Kind::Sbom => "sbom",
            Kind::Stat => "stat",
            Kind::Tools => "tools",
            Kind::Vcs => "vcs",
            Kind::Verified => "verified",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.folder())
    }
}

/// Every kind of entry's folder: `clean` removes a cache folder only when it
/// holds nothing else.
pub const FOLDERS: &[&str] = &{
    let mut folders = [""; Kind::ALL.len()];
    let mut i = 0;
    while i < Kind::ALL.len() {
        folders[i] = Kind::ALL[i].folder();
        i += 1;
    }
    folders
};

/// A shared cache that a build asks before it builds a binary and tells what
/// it built (the cache registry). Failures are the store's to report: a
/// build goes on locally.
pub trait RemoteStore: Sync {
    /// Fetches the binary `key` into the local cache (with its record);
    /// whether it arrived.
    fn fetch_binary(&self, app: &str, key: &str) -> bool;
    /// Queues the binary `key`, just built, for upload after the run.
    fn built_binary(&self, app: &str, platform: &str, key: &str);
}

/// The first 12 characters of a key, for messages.
pub fn short(key: &str) -> String {
    key.chars().take(12).collect()
}

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
    /// A shared `flock` on `.lock` held while the cache is open: a run that
    /// gets it exclusively knows that no other run is writing.
    _lock: Option<std::fs::File>,
}

impl Drop for Identities {
    fn drop(&mut self) {
        let stats = self.stats.get_mut().map(Option::take);
        if let Ok(Some(stats)) = stats {
            // Best effort: a record not written only costs a hash next run.
            let cache = Cache {
                dir: self.dir.clone(),
                identities: Arc::new(Identities {
                    dir: self.dir.clone(),
                    stats: Mutex::new(None),
                    _lock: None,
                }),
            };
            stats.save(&cache);
        }
    }
}

impl Cache {
    /// Opens (and creates) the cache at `dir`, and removes the `.tmp-*` files
    /// that killed runs left: all of them when no other run has the cache
    /// open (a shared `flock` on `.lock` says so), else those untouched for
    /// 15 minutes. On SIGINT or SIGTERM, this process's temporary files in
    /// the cache are removed.
    pub fn open(dir: impl Into<Utf8PathBuf>) -> Result<Cache> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).at(&dir, "create the cache folder")?;
        let (lock, alone) = lock_shared(&dir);
        for kind in Kind::ALL {
            let folder = dir.join(kind.folder());
            remove_stale_temps(&folder, alone);
            crate::process::remove_temps_on_interrupt(&folder, false);
        }
        let identities = Arc::new(Identities {
            dir: dir.clone(),
            stats: Mutex::new(None),
            _lock: lock,
        });
        Ok(Cache { dir, identities })
    }

    /// The cache at `dir` if the folder is there, for a few small records read
    /// before a run opens the cache (the remembered `cargo metadata` answer):
    /// nothing is created, locked or swept; `None` when there is no such folder.
    pub fn existing(dir: impl Into<Utf8PathBuf>) -> Option<Cache> {
        let dir = dir.into();
        if !dir.is_dir() {
            return None;
        }
        let identities = Arc::new(Identities {
            dir: dir.clone(),
            stats: Mutex::new(None),
            _lock: None,
        });
        Some(Cache { dir, identities })
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
    pub fn entry_path(&self, kind: Kind, key: &str) -> Utf8PathBuf {
        self.dir.join(kind.folder()).join(key)
    }

    /// The entry's path if it exists as a regular file (a symlink, folder or
    /// other special file is never an entry).
    pub fn get(&self, kind: Kind, key: &str) -> Option<Utf8PathBuf> {
        let path = self.entry_path(kind, key);
        std::fs::symlink_metadata(&path)
            .is_ok_and(|meta| meta.is_file())
            .then_some(path)
    }

    /// Why the entry `key` is there but is no regular file (a folder, a
    /// symlink, a FIFO...); `None` when it is a file or absent.
    pub fn not_a_file(&self, kind: Kind, key: &str) -> Option<String> {
        let meta = std::fs::symlink_metadata(self.entry_path(kind, key)).ok()?;
        let what = meta.file_type();
        (!what.is_file()).then(|| {
            if what.is_dir() {
                "is a folder, not a file".to_string()
            } else if what.is_symlink() {
                "is a symbolic link, not a file".to_string()
            } else {
                "is not a regular file".to_string()
            }
        })
    }

    /// Reports the entry as damaged, and removes it and `also` (e.g. its
    /// record), whatever they are, so that they are rebuilt.
    pub fn discard(
        &self,
        reporter: &dyn Reporter,
        kind: Kind,
        key: &str,
        why: &str,
        also: &[(Kind, &str)],
    ) {
        let path = self.entry_path(kind, key);
        reporter.report(Event::Warning {
            message: format!("damaged cache entry {path} {why}; it is discarded and rebuilt"),
        });
        remove_any(&path);
        for (kind, key) in also {
            remove_any(&self.entry_path(*kind, key));
        }
    }

    /// A temporary path in the kind's folder, for a child process (like `go build -o`)
    /// to write to; [`Cache::commit`] renames it into place.
    pub fn temp_path(&self, kind: Kind) -> Result<tempfile::TempPath> {
        let folder = self.kind_dir(kind)?;
        let file = temp_builder()
            .tempfile_in(&folder)
            .at(&folder, "create a temporary file in")?;
        Ok(file.into_temp_path())
    }

    /// Renames a finished temporary file into the entry `key`.
    pub fn commit(&self, kind: Kind, key: &str, temp: tempfile::TempPath) -> Result<Utf8PathBuf> {
        let path = self.entry_path(kind, key);
        // A rename cannot replace a folder: whatever is in the way goes.
        if std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir()) {
            let _ = std::fs::remove_dir_all(&path);
        }
        temp.persist(&path)
            .map_err(|e| e.error)
            .at(&path, "store a cache entry at")?;
        Ok(path)
    }

    /// Writes `bytes` as the entry `key`, atomically.
    pub fn put(&self, kind: Kind, key: &str, bytes: &[u8]) -> Result<Utf8PathBuf> {
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
    pub fn temp_file(&self, kind: Kind) -> Result<tempfile::NamedTempFile> {
        let folder = self.kind_dir(kind)?;
        temp_builder()
            .tempfile_in(&folder)
            .at(&folder, "create a temporary file in")
    }

    fn kind_dir(&self, kind: Kind) -> Result<Utf8PathBuf> {
        let folder = self.dir.join(kind.folder());
        if !folder.is_dir() {
            std::fs::create_dir_all(&folder).at(&folder, "create the cache folder")?;
        }
        Ok(folder)
    }
}

/// Removes a file, a symlink or a folder.
fn remove_any(path: &Utf8Path) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Takes a shared `flock` on `<dir>/.lock`, first trying an exclusive one:
/// the lock file, and whether this run has the cache to itself. Without a
/// lock (a file system without `flock`) the run is never alone.
fn lock_shared(dir: &Utf8Path) -> (Option<std::fs::File>, bool) {
    use rustix::fs::{flock, FlockOperation};
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
    else {
        return (None, false);
    };
    let alone = flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok();
    // Converting an exclusive lock to a shared one, or waiting for a run
    // that sweeps: both short.
    if flock(&file, FlockOperation::LockShared).is_err() {
        return (None, false);
    }
    (Some(file), alone)
}

/// Temporary files (and folders) readable by all, like files a user creates:
/// entries are copied into image layouts that other tools and users read.
/// Named `.tmp-<pid>-...`, so that a run stopped by a signal removes its own.
fn temp_builder() -> tempfile::Builder<'static, 'static> {
    use std::os::unix::fs::PermissionsExt;
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&*TEMP_NAME)
        .permissions(std::fs::Permissions::from_mode(0o644));
    builder
}

static TEMP_NAME: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(crate::process::signals::temp_prefix);

/// Removes temporary files and folders that killed runs left behind: all of
/// them when `alone` (no other run has the cache open), else those untouched
/// for [`STALE_TEMP_AGE`]. Best effort: another run may remove one first.
fn remove_stale_temps(folder: &Utf8Path, alone: bool) {
    let Ok(entries) = folder.read_dir_utf8() else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !entry.file_name().starts_with(TEMP_PREFIX) {
            continue;
        }
        let old = alone
            || entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP_AGE)
                .unwrap_or(false);
        if old {
            remove_any(entry.path());
        }
    }
}

/// Builds a cache key: SHA-256 over named, length-prefixed fields, so that
/// no two different inputs can run together into the same byte stream.
#[derive(Clone)]
pub struct KeyHasher {
    hasher: Sha256,
    /// Fields not yet hashed: thousands of small fields (a large app's file
    /// names and hashes) cost one `update` per few kilobytes, not four each.
    pending: Vec<u8>,
}

/// Bytes of fields gathered before they are hashed.
const KEY_BUFFER: usize = 16 << 10;

impl KeyHasher {
    /// A hasher for keys of one kind and format version, e.g. `"bin/v1"`.
    pub fn new(domain: &str) -> Self {
        let mut hasher = KeyHasher {
            hasher: Sha256::new(),
            pending: Vec::new(),
        };
        hasher.field("domain", domain.as_bytes());
        hasher
    }

    /// Adds one named field.
    pub fn field(&mut self, name: &str, value: &[u8]) -> &mut Self {
        if self.pending.len() + name.len() + value.len() + 16 > KEY_BUFFER {
            self.flush();
        }
        for part in [name.as_bytes(), value] {
            if part.len() > KEY_BUFFER / 2 {
                self.flush();
                self.hasher.update((part.len() as u64).to_le_bytes());
                self.hasher.update(part);
            } else {
                self.pending
                    .extend_from_slice(&(part.len() as u64).to_le_bytes());
                self.pending.extend_from_slice(part);
            }
        }
        self
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }

    /// Adds one named field whose value is a file's content, streamed.
    pub fn file(&mut self, name: &str, path: &Utf8Path) -> Result<&mut Self> {
        let mut file = std::fs::File::open(path).at(path, "read")?;
        let len = file.metadata().at(path, "read")?.len();
        self.flush();
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
        let mut hasher = self.hasher.clone();
        hasher.update(&self.pending);
        hex::encode(hasher.finalize())
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
        let temp = cache.temp_path(Kind::Bin).unwrap();
        std::fs::write(&temp, b"half").unwrap();
        assert!(cache.get(Kind::Bin, "k").is_none());
        drop(temp);
        assert!(cache.get(Kind::Bin, "k").is_none());
        cache.put(Kind::Bin, "k", b"whole").unwrap();
        assert_eq!(
            std::fs::read(cache.get(Kind::Bin, "k").unwrap()).unwrap(),
            b"whole"
        );
        // A leftover temp file is never an entry.
        let leftover = cache.temp_path(Kind::Bin).unwrap().keep().unwrap();
        assert!(leftover
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(TEMP_PREFIX));
        assert_eq!(cache.get(Kind::Bin, "k").map(|_| ()), Some(()));
    }

    #[test]
    fn leftover_temps_go_when_no_other_run_has_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().into()).unwrap();
        let first = Cache::open(&root).unwrap();
        let leftover = root.join("blobs/.tmp-1-left");
        std::fs::create_dir_all(root.join("blobs")).unwrap();
        std::fs::write(&leftover, b"half").unwrap();
        // Another run has the cache open: a fresh temp file may be its.
        drop(Cache::open(&root).unwrap());
        assert!(leftover.exists());
        drop(first);
        drop(Cache::open(&root).unwrap());
        assert!(!leftover.exists());
    }

    #[test]
    fn kinds_and_folders_agree() {
        assert_eq!(FOLDERS.len(), Kind::ALL.len());
        for (kind, folder) in Kind::ALL.iter().zip(FOLDERS) {
            assert_eq!(kind.folder(), *folder);
        }
    }
}
