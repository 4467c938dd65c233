//! File identities remembered next to content hashes, the way git's index
//! does, so a run where nothing changed stats files instead of reading them.
//!
//! An identity is (size, mtime ns, ctime ns, inode, device, mode). A file
//! whose identity matches its record is taken to hold the recorded content;
//! any other file is read and hashed again. Racy-git rule: a file whose
//! mtime or ctime is not clearly older than the start of the run could still
//! change within the same timestamp tick without changing its identity, so
//! it is hashed but not recorded, and is read again by the next run.
//! "Clearly older" is 2 s on file systems with whole-second timestamps and
//! 100 ms on those with sub-second ones (the clock tick is at most 10 ms).
//!
//! The cache only ever maps an identity to the hash of the content read for
//! it, and is written to a temporary file and renamed: a killed run leaves
//! the previous cache or the new one, never a half-written one. A file that
//! cannot be parsed is ignored (everything is hashed anew). Records are
//! binary, fixed fields then the path: a no-change run of a large app reads
//! thousands of them, and gopack's own code runs unoptimized under `cargo xtask`.

use super::Cache;
use crate::error::{IoContext, Result};
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files changed less than this before the run started are not recorded:
/// covers coarse filesystem clocks (whole seconds, FAT's two) and the tick in
/// which an edit may land.
const RACY_WINDOW: Duration = Duration::from_secs(2);
/// The window on a file system whose timestamps have sub-second precision
/// (the file's ctime, which only the kernel sets, has a fraction of a
/// second): its timestamps move with the kernel's clock tick (at most 10 ms),
/// so a run a moment after gopack wrote its outputs can already trust them.
const FINE_RACY_WINDOW: Duration = Duration::from_millis(100);

/// First line of the cache file; a different one is ignored.
const HEADER: &[u8] = b"gopack-stat-cache v3\n";

/// What a run learned from a file's content besides its hash (see
/// [`StatCache::content_hash_scanned`]); `None` when nothing was asked.
type Note = Option<String>;

/// What is remembered of one file.
#[derive(Debug, Clone)]
struct Record {
    identity: Identity,
    hash: [u8; 32],
    note: Note,
}

/// A record, and whether this run saw its file (only seen records are kept,
/// unless the cache is shared).
#[derive(Debug)]
struct Entry {
    record: Record,
    seen: bool,
}

/// Reads what a caller wants to know from a file's content while it is hashed
/// (e.g. a Go file's `//go:embed` lines), in chunks, with bounded memory.
pub trait Scan {
    /// The next bytes of the file.
    fn update(&mut self, bytes: &[u8]);
    /// What was found: one line of text (no newline), remembered with the record.
    fn finish(&mut self) -> String;
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
    mode: u32,
}

impl Identity {
    /// The identity in `meta` (from `stat`, links followed or not).
    pub fn of(meta: &std::fs::Metadata) -> Identity {
        Identity {
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        }
    }

    /// Whether the file changed too recently to be trusted by identity alone.
    pub(crate) fn racy(&self, started_ns: i128) -> bool {
        let window = if self.ctime_ns % 1_000_000_000 != 0 {
            FINE_RACY_WINDOW
        } else {
            RACY_WINDOW
        };
        let limit = started_ns - window.as_nanos() as i128;
        self.mtime_ns >= limit || self.ctime_ns >= limit
    }
}

/// Content hashes of files, by path, trusted while the identity is unchanged.
#[derive(Debug)]
pub struct StatCache {
    file: Utf8PathBuf,
    entries: HashMap<String, Entry>,
    seen: usize,
    started_ns: i128,
    changed: bool,
    keep_unseen: bool,
}

/// A shared stat cache keeps at most this many records it did not see in a run.
const MAX_UNSEEN: usize = 20_000;

impl StatCache {
    /// The stat cache named `name` (e.g. a hash of the folder it covers) in `cache`.
    pub fn open(cache: &Cache, name: &str) -> StatCache {
        let file = cache.entry_path(crate::cache::Kind::Stat, name);
        let entries = super::seal::read_regular(&file, super::MAX_SEALED)
            .ok()
            .flatten()
            .and_then(|bytes| parse(&bytes))
            .unwrap_or_default();
        StatCache {
            file,
            entries,
            seen: 0,
            started_ns: now_ns(),
            changed: false,
            keep_unseen: false,
        }
    }

    /// A stat cache that several kinds of run share (e.g. the cache's own
    /// entries, which each app's run sees only in part): records a run did
    /// not see are kept, up to a bound, instead of dropped.
    pub fn open_shared(cache: &Cache, name: &str) -> StatCache {
        StatCache {
            keep_unseen: true,
            ..StatCache::open(cache, name)
        }
    }

    /// The SHA-256 of the content of `path` (links followed), read only when
    /// its identity differs from the record. `meta` is the file's `stat`.
    pub fn content_hash(&mut self, path: &Utf8Path, meta: &std::fs::Metadata) -> Result<[u8; 32]> {
        self.hash_with_identity(path, Identity::of(meta))
    }

    /// [`StatCache::content_hash`], and what `scan` finds in the content; both
    /// remembered together, so a file whose identity is unchanged is not read
    /// for either.
    pub fn content_hash_scanned(
        &mut self,
        path: &Utf8Path,
        meta: &std::fs::Metadata,
        scan: &mut dyn Scan,
    ) -> Result<([u8; 32], String)> {
        let (hash, note) = self.hash_noting(path, Identity::of(meta), Some(scan))?;
        Ok((hash, note.unwrap_or_default()))
    }

    fn hash_with_identity(&mut self, path: &Utf8Path, identity: Identity) -> Result<[u8; 32]> {
        Ok(self.hash_noting(path, identity, None)?.0)
    }

    fn hash_noting(
        &mut self,
        path: &Utf8Path,
        identity: Identity,
        scan: Option<&mut dyn Scan>,
    ) -> Result<([u8; 32], Note)> {
        // A record this run made wins over the previous run's (it is the same
        // entry), so a file hashed twice in one run keeps its note.
        if let Some(entry) = self.entries.get_mut(path.as_str()) {
            let record = &entry.record;
            let note_ok = scan.is_none() || record.note.is_some();
            if record.identity == identity && !identity.racy(self.started_ns) && note_ok {
                if !entry.seen {
                    entry.seen = true;
                    self.seen += 1;
                }
                return Ok((record.hash, record.note.clone()));
            }
        }
        let (hash, note) = match scan {
            Some(scan) => {
                let hash = hash_file_scanning(path, identity.size, Some(&mut *scan))?;
                (hash, Some(scan.finish().replace('\n', " ")))
            }
            None => (hash_file(path, identity.size)?, None),
        };
        self.changed = true;
        // A stale record goes; a racy file gets none until it settles.
        if let Some(old) = self.entries.remove(path.as_str()) {
            if old.seen {
                self.seen -= 1;
            }
        }
        if !identity.racy(self.started_ns) {
            let record = Record {
                identity,
                hash,
                note: note.clone(),
            };
            self.entries
                .insert(path.to_string(), Entry { record, seen: true });
            self.seen += 1;
        }
        Ok((hash, note))
    }

    /// Writes the records of the files seen by this run (atomically), when any
    /// was read. Best effort: a cache that cannot be written only costs speed.
    pub fn save(&self, cache: &Cache) {
        if !self.changed && (self.keep_unseen || self.seen == self.entries.len()) {
            return;
        }
        let mut unseen_kept = 0;
        let mut kept: Vec<(&String, &Record)> = Vec::with_capacity(self.seen);
        for (path, entry) in &self.entries {
            if entry.seen {
                kept.push((path, &entry.record));
            } else if self.keep_unseen && unseen_kept < MAX_UNSEEN {
                unseen_kept += 1;
                kept.push((path, &entry.record));
            }
        }
        kept.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut bytes = Vec::with_capacity(HEADER.len() + kept.len() * 160);
        bytes.extend_from_slice(HEADER);
        for (path, record) in kept {
            encode(&mut bytes, path, record);
        }
        let name = self.file.file_name().unwrap_or("stat");
        let _ = cache.put(crate::cache::Kind::Stat, name, &bytes);
    }
}

/// What `compute` says about the program at `program` (e.g. `go env GOVERSION`),
/// remembered per identity of the program's file and `context`. Only a native
/// binary (ELF) that did not change within the racy window is remembered: a
/// script or shim can answer differently without changing itself.
///
/// The record is sealed (kind, key and answer) and must also pass `confirm`, a
/// check against something outside the cache (Go's `VERSION` file beside its
/// `bin/`); a record that fails either is reported, removed, and the program
/// asked again. `confirm` returning `None` means nothing outside the cache can
/// confirm the answer: the program is asked every time.
pub fn remembered(
    cache: &Cache,
    program: &Utf8Path,
    context: &str,
    confirm: impl Fn(&str) -> Option<bool>,
    reporter: &dyn crate::report::Reporter,
    compute: impl FnOnce() -> Result<String>,
) -> Result<String> {
    let Some(key) = program_key(program, context) else {
        return compute();
    };
    let kind = crate::cache::Kind::Tools;
    if let Some(record) = cache.read_sealed(kind, &key, reporter) {
        let answer = String::from_utf8(record)
            .ok()
            .and_then(|text| text.strip_suffix('\n').map(str::to_string));
        match answer.as_deref().map(|a| (a, confirm(a))) {
            Some((answer, Some(true))) => return Ok(answer.to_string()),
            Some((answer, Some(false))) => cache.discard(
                reporter,
                kind,
                &key,
                &format!("says {program} is {answer:?}, which its installation contradicts"),
                &[],
            ),
            Some((_, None)) => {}
            None => cache.discard(reporter, kind, &key, "cannot be read", &[]),
        }
    }
    let answer = compute()?;
    if !answer.contains('\n') && confirm(&answer) == Some(true) {
        let _ = cache.put_sealed(kind, &key, format!("{answer}\n").as_bytes());
    }
    Ok(answer)
}

/// A key for a native program's identity, or None when it must not be remembered.
fn program_key(program: &Utf8Path, context: &str) -> Option<String> {
    let real = std::fs::canonicalize(program).ok()?;
    let real = Utf8PathBuf::from_path_buf(real).ok()?;
    let mut file = open_regular(&real).ok()?;
    let meta = file.metadata().ok()?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).ok()?;
    let identity = Identity::of(&meta);
    if magic != *b"\x7fELF" || identity.racy(now_ns()) {
        return None;
    }
    Some(
        crate::cache::KeyHasher::new("tool/v2")
            .text("path", real.as_str())
            .text("identity", &format!("{identity:?}"))
            .text("context", context)
            .finish(),
    )
}

/// SHA-256 of a file's first `len` bytes; an error when it is shorter now, or
/// when it is not a regular file (a FIFO, socket or device is never read: it is
/// opened with `O_NONBLOCK` and refused by its `fstat`, so it cannot block).
pub fn hash_file(path: &Utf8Path, len: u64) -> Result<[u8; 32]> {
    hash_file_scanning(path, len, None)
}

fn hash_file_scanning(path: &Utf8Path, len: u64, scan: Option<&mut dyn Scan>) -> Result<[u8; 32]> {
    let file = open_regular(path)?;
    let mut hasher = HashWriter(Sha256::new(), scan);
    let copied = std::io::copy(&mut file.take(len), &mut hasher).at(path, "read")?;
    if copied != len {
        return Err(crate::error::Error::Invalid {
            path: path.to_string(),
            message: "the file changed size while gopack read it".into(),
            help: "run again once nothing writes to it".into(),
        });
    }
    Ok(hasher.0.finalize().into())
}

/// Opens a regular file (links followed) for reading without ever blocking in `open`.
fn open_regular(path: &Utf8Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let refuse = || crate::error::Error::Invalid {
        path: path.to_string(),
        message:
            "is not a regular file (a FIFO, socket or device); gopack reads only regular files"
                .into(),
        help: "remove it, or move it out of the folders gopack reads".into(),
    };
    if !std::fs::metadata(path).at(path, "read")?.is_file() {
        return Err(refuse());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .at(path, "read")?;
    if !file.metadata().at(path, "read")?.is_file() {
        return Err(refuse());
    }
    Ok(file)
}

struct HashWriter<'s>(Sha256, Option<&'s mut dyn Scan>);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        if let Some(scan) = self.1.as_mut() {
            scan.update(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// One record: path length (u32), hash, size (u64), mtime and ctime (i128),
/// inode and device (u64), mode (u32), note length (u32, `u32::MAX` for
/// none), then the path and the note; integers little-endian.
fn encode(out: &mut Vec<u8>, path: &str, record: &Record) {
    let id = &record.identity;
    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
    out.extend_from_slice(&record.hash);
    out.extend_from_slice(&id.size.to_le_bytes());
    out.extend_from_slice(&id.mtime_ns.to_le_bytes());
    out.extend_from_slice(&id.ctime_ns.to_le_bytes());
    out.extend_from_slice(&id.ino.to_le_bytes());
    out.extend_from_slice(&id.dev.to_le_bytes());
    out.extend_from_slice(&id.mode.to_le_bytes());
    let note_len = record.note.as_ref().map_or(u32::MAX, |n| n.len() as u32);
    out.extend_from_slice(&note_len.to_le_bytes());
    out.extend_from_slice(path.as_bytes());
    if let Some(note) = &record.note {
        out.extend_from_slice(note.as_bytes());
    }
}

/// Bytes of a record before its path and note.
const FIXED: usize = 4 + 32 + 8 + 16 + 16 + 8 + 8 + 4 + 4;

/// The records of a cache file, or None when any part of it is not a record.
fn parse(bytes: &[u8]) -> Option<HashMap<String, Entry>> {
    let mut rest = bytes.strip_prefix(HEADER)?;
    let mut entries = HashMap::with_capacity(rest.len() / 128);
    while !rest.is_empty() {
        let fixed = rest.get(..FIXED)?;
        let (path_len, fixed) = fixed.split_at(4);
        let (hash, fixed) = fixed.split_at(32);
        let (size, fixed) = fixed.split_at(8);
        let (mtime, fixed) = fixed.split_at(16);
        let (ctime, fixed) = fixed.split_at(16);
        let (ino, fixed) = fixed.split_at(8);
        let (dev, fixed) = fixed.split_at(8);
        let (mode, note_len) = fixed.split_at(4);
        let path_len = u32::from_le_bytes(path_len.try_into().ok()?) as usize;
        let note_len = u32::from_le_bytes(note_len.try_into().ok()?);
        let note_bytes = if note_len == u32::MAX {
            0
        } else {
            note_len as usize
        };
        let tail = rest.get(FIXED..)?;
        let path = std::str::from_utf8(tail.get(..path_len)?).ok()?;
        let note = match note_len {
            u32::MAX => None,
            _ => Some(
                std::str::from_utf8(tail.get(path_len..path_len + note_bytes)?)
                    .ok()?
                    .to_string(),
            ),
        };
        let record = Record {
            identity: Identity {
                size: u64::from_le_bytes(size.try_into().ok()?),
                mtime_ns: i128::from_le_bytes(mtime.try_into().ok()?),
                ctime_ns: i128::from_le_bytes(ctime.try_into().ok()?),
                ino: u64::from_le_bytes(ino.try_into().ok()?),
                dev: u64::from_le_bytes(dev.try_into().ok()?),
                mode: u32::from_le_bytes(mode.try_into().ok()?),
            },
            hash: hash.try_into().ok()?,
            note,
        };
        entries.insert(
            path.to_string(),
            Entry {
                record,
                seen: false,
            },
        );
        rest = tail.get(path_len + note_bytes..)?;
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn setup() -> (tempfile::TempDir, Cache, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().into()).unwrap();
        let cache = Cache::open(root.join("cache")).unwrap();
        (dir, cache, root)
    }

    fn hash(cache: &Cache, path: &Utf8Path) -> [u8; 32] {
        let mut stats = StatCache::open(cache, "t");
        let hash = stats
            .content_hash(path, &std::fs::metadata(path).unwrap())
            .unwrap();
        stats.save(cache);
        hash
    }

    /// Sets mtime (and, as a side effect, ctime to now) with the real `touch`.
    fn touch(path: &Utf8Path, date: &str) {
        let status = Command::new("touch")
            .args(["-d", date, path.as_str()])
            .status()
            .expect("touch (coreutils) runs");
        assert!(status.success());
    }

    fn recorded(cache: &Cache) -> usize {
        let bytes =
            std::fs::read(cache.entry_path(crate::cache::Kind::Stat, "t")).unwrap_or_default();
        parse(&bytes).map_or(0, |entries| entries.len())
    }

    #[test]
    fn an_old_file_is_recorded_and_trusted() {
        let (_dir, cache, root) = setup();
        let file = root.join("a.go");
        std::fs::write(&file, "package a\n").unwrap();
        touch(&file, "2020-01-01 00:00:00");
        // ctime is now: racy, not recorded yet.
        let first = hash(&cache, &file);
        assert_eq!(recorded(&cache), 0);
        assert_eq!(first, <[u8; 32]>::from(Sha256::digest(b"package a\n")));
        // Once the record exists, a matching identity is trusted.
        let mut stats = StatCache::open(&cache, "t");
        stats.started_ns += 10 * 1_000_000_000;
        stats
            .content_hash(&file, &std::fs::metadata(&file).unwrap())
            .unwrap();
        stats.save(&cache);
        assert_eq!(recorded(&cache), 1);
    }

    #[test]
    fn an_edit_keeping_size_and_mtime_is_seen() {
        let (_dir, cache, root) = setup();
        let file = root.join("a.go");
        std::fs::write(&file, "package a\n").unwrap();
        touch(&file, "2020-01-01 00:00:00");
        let mut stats = StatCache::open(&cache, "t");
        stats.started_ns += 10 * 1_000_000_000;
        let before = stats
            .content_hash(&file, &std::fs::metadata(&file).unwrap())
            .unwrap();
        stats.save(&cache);
        assert_eq!(recorded(&cache), 1);
        let old = std::fs::metadata(&file).unwrap();

        // Same size, mtime put back: only ctime tells.
        std::fs::write(&file, "package b\n").unwrap();
        touch(&file, "2020-01-01 00:00:00");
        let new = std::fs::metadata(&file).unwrap();
        assert_eq!(
            (old.len(), old.mtime(), old.mtime_nsec()),
            (new.len(), new.mtime(), new.mtime_nsec())
        );
        let after = hash(&cache, &file);
        assert_ne!(after, before);
        assert_eq!(after, <[u8; 32]>::from(Sha256::digest(b"package b\n")));
    }

    #[test]
    fn a_replaced_file_with_the_same_times_is_seen() {
        let (_dir, cache, root) = setup();
        let file = root.join("a.go");
        std::fs::write(&file, "package a\n").unwrap();
        touch(&file, "2020-01-01 00:00:00");
        let mut stats = StatCache::open(&cache, "t");
        // Far in the future: every identity is trusted, ctime included, so
        // only the inode can tell the files apart.
        stats.started_ns += 1_000_000 * 1_000_000_000;
        stats
            .content_hash(&file, &std::fs::metadata(&file).unwrap())
            .unwrap();
        stats.save(&cache);
        let old = Identity::of(&std::fs::metadata(&file).unwrap());

        let other = root.join("b.go");
        std::fs::write(&other, "package b\n").unwrap();
        touch(&other, "2020-01-01 00:00:00");
        let _keep_inode = std::fs::hard_link(&file, root.join("old.go"));
        std::fs::rename(&other, &file).unwrap();
        let new_meta = std::fs::metadata(&file).unwrap();
        let mut new = Identity::of(&new_meta);
        assert_ne!(new.ino, old.ino);
        // Pretend ctime matched too: the inode alone must make the difference.
        new.ctime_ns = old.ctime_ns;
        let mut stats = StatCache::open(&cache, "t");
        stats.started_ns += 1_000_000 * 1_000_000_000;
        let recorded = stats.entries[file.as_str()].record.identity;
        assert_ne!(recorded, new);
        let hash = stats.hash_with_identity(&file, new).unwrap();
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(b"package b\n")));
    }

    /// Counts the bytes a scan is given.
    struct Counting(usize);

    impl Scan for Counting {
        fn update(&mut self, bytes: &[u8]) {
            self.0 += bytes.len();
        }
        fn finish(&mut self) -> String {
            format!("read {}", self.0)
        }
    }

    #[test]
    fn a_note_is_remembered_with_its_record() {
        let (_dir, cache, root) = setup();
        let file = root.join("a.go");
        std::fs::write(&file, "package a\n").unwrap();
        touch(&file, "2020-01-01 00:00:00");
        let meta = std::fs::metadata(&file).unwrap();
        let mut stats = StatCache::open(&cache, "t");
        stats.started_ns += 10 * 1_000_000_000;
        let (hash, note) = stats
            .content_hash_scanned(&file, &meta, &mut Counting(0))
            .unwrap();
        assert_eq!(note, "read 10");
        // Hashed again without a scan in the same run: the note stays.
        assert_eq!(stats.content_hash(&file, &meta).unwrap(), hash);
        stats.save(&cache);
        let mut stats = StatCache::open(&cache, "t");
        stats.started_ns += 10 * 1_000_000_000;
        let mut counting = Counting(0);
        let again = stats
            .content_hash_scanned(&file, &meta, &mut counting)
            .unwrap();
        assert_eq!(again, (hash, "read 10".to_string()));
        assert_eq!(counting.0, 0, "an unchanged file is not read again");
    }

    #[test]
    fn the_window_follows_the_precision_of_the_timestamps() {
        let second = 1_000_000_000i128;
        let at = |ctime_ns: i128| Identity {
            size: 1,
            mtime_ns: ctime_ns,
            ctime_ns,
            ino: 1,
            dev: 1,
            mode: 0o100644,
        };
        let start = 1_700_000_000 * second;
        // Whole seconds: a coarse file system; two seconds of doubt.
        assert!(at(start - second).racy(start));
        assert!(!at(start - 3 * second).racy(start));
        // Nanoseconds: the clock tick; a tenth of a second of doubt.
        assert!(at(start - 50_000_001).racy(start));
        assert!(!at(start - 200_000_001).racy(start));
        assert!(at(start + 1).racy(start), "changed after the start");
    }

    #[test]
    fn a_same_tick_edit_is_never_trusted() {
        let (_dir, cache, root) = setup();
        let file = root.join("a.go");
        std::fs::write(&file, "package a\n").unwrap();
        // Recorded right after an edit: racy, so not recorded at all.
        hash(&cache, &file);
        assert_eq!(recorded(&cache), 0);
        std::fs::write(&file, "package b\n").unwrap();
        assert_eq!(
            hash(&cache, &file),
            <[u8; 32]>::from(Sha256::digest(b"package b\n"))
        );
    }

    #[test]
    fn a_damaged_or_half_written_cache_is_ignored() {
        let (_dir, cache, root) = setup();
        let file = root.join("a.go");
        std::fs::write(&file, "package a\n").unwrap();
        cache
            .put(
                crate::cache::Kind::Stat,
                "t",
                &[HEADER, &[7u8; 40][..]].concat(),
            )
            .unwrap();
        assert_eq!(
            hash(&cache, &file),
            <[u8; 32]>::from(Sha256::digest(b"package a\n"))
        );
    }

    #[test]
    fn records_read_back_as_written_and_a_cut_file_is_refused() {
        let record = |size, note: Option<&str>| Record {
            identity: Identity {
                size,
                mtime_ns: -5,
                ctime_ns: 1_700_000_000_123_456_789,
                ino: 42,
                dev: 7,
                mode: 0o100644,
            },
            hash: [size as u8; 32],
            note: note.map(String::from),
        };
        let mut bytes = HEADER.to_vec();
        encode(&mut bytes, "a/b.go", &record(1, Some("cgo\u{1f}embed x y")));
        encode(&mut bytes, "a/ü\nc", &record(2, None));
        encode(&mut bytes, "e", &record(3, Some("")));
        let entries = parse(&bytes).expect("parses");
        let b = &entries["a/b.go"].record;
        assert_eq!((b.identity, b.hash), (record(1, None).identity, [1; 32]));
        assert_eq!(b.note.as_deref(), Some("cgo\u{1f}embed x y"));
        assert_eq!(entries["a/ü\nc"].record.note, None);
        assert_eq!(entries["e"].record.note.as_deref(), Some(""));
        // Cut anywhere but between records, the file is refused.
        let cuts = (HEADER.len() + 1..bytes.len()).filter(|&cut| parse(&bytes[..cut]).is_some());
        assert_eq!(cuts.count(), 2);
        assert!(parse(b"gopack-stat-cache v2\n").is_none());
    }
}
