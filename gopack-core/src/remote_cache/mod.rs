//! The cache registry (`cache-registry`): the expensive cache entries — built
//! binaries (by binary key) and compressed layers (by layer key) — shared
//! between machines through any OCI registry, as OCI artifacts tagged by key.
//!
//! On a local miss the registry is asked before anything is built; what it
//! sends is streamed into a temporary file in the cache (never a buffer sized
//! by the registry), checked against the digests and sizes by the local
//! cache's own rules ([`crate::integrity`]), and only then renamed into the
//! local cache. New entries are pushed after a successful run (read-write mode).
//!
//! The registry is never a reason to fail: unreachable, slow or refusing, it is
//! one warning and the run builds locally without asking it again; an entry
//! that does not check out is reported, ignored and rebuilt (and replaced on
//! push, in read-write mode).
//!
//! Entries live in one repository, `<cache-registry>/gopack-cache`, under the
//! tags `bin-<key>` and `layer-<key>`: a manifest with `artifactType`
//! [`BINARY_TYPE`] or [`LAYER_TYPE`], the empty config, and two layers: the
//! entry's record (`bin-sums` line, layer record) and its blob.
//!
//! This module holds the entry format and the run's counters; `fetch` and
//! `push` the two directions.

use crate::cache::Cache;
use crate::config::CacheRegistryMode;
use crate::error::{Error, IoContext, Result};
use crate::image::store_blob;
use crate::integrity;
use crate::oci::digest;
use crate::oci::documents::{canonical_json, media_type, Descriptor, Manifest};
use crate::oci::layer::LayerInfo;
pub use crate::reference::{check_reference, REFERENCE_HELP};
use crate::registry::{Access, Connection, Pusher, Target};
use crate::report::{Event, Reporter};
use camino::Utf8PathBuf;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

mod fetch;
mod push;
#[cfg(test)]
mod tests;

/// The artifact type of a built binary entry.
pub const BINARY_TYPE: &str = "application/vnd.gopack.cache.binary.v1";
/// The artifact type of a compressed layer entry.
pub const LAYER_TYPE: &str = "application/vnd.gopack.cache.layer.v1";
/// The media type of a binary's record (`sha256:<hex> <size>`).
const BIN_SUMS_MEDIA: &str = "application/vnd.gopack.cache.bin-sums.v1";
/// The media type of a binary blob.
const BINARY_MEDIA: &str = "application/vnd.gopack.cache.binary.v1.blob";
/// The media type of a layer's record (`{digest, size, diff_id}`).
const LAYER_RECORD_MEDIA: &str = "application/vnd.gopack.cache.layer-record.v1+json";
/// The repository under the cache registry prefix that holds the entries.
pub const REPOSITORY: &str = "gopack-cache";
/// The largest manifest, record and blob the registry may send.
const MANIFEST_LIMIT: u64 = 64 << 10;
const RECORD_LIMIT: u64 = 64 << 10;
const BLOB_LIMIT: u64 = 4 << 30;
/// The largest tar inside a layer (a decompression bomb stops here).
const TAR_LIMIT: u64 = 16 << 30;
/// The empty config of cache artifacts.
const EMPTY: &[u8] = b"{}";

/// The tag of an entry: `<kind>-<key>`, with any character a tag cannot hold
/// replaced, at most 128 characters (tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn tag(kind: &str, key: &str) -> String {
    let raw = format!("{kind}-{key}");
    let mut tag: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if tag.len() > 128 || tag != raw {
        // A key that does not fit as it is: name it by its hash, keeping it unique.
        tag = format!(
            "{kind}-h{}",
            digest::hex_of(&digest::sha256(raw.as_bytes()))
        );
    }
    tag
}

/// A new entry waiting for the end of a successful run to be pushed.
#[derive(Debug, Clone)]
enum Pending {
    Binary {
        app: String,
        platform: String,
        key: String,
    },
    Layer {
        app: String,
        platform: String,
        key: String,
        info: LayerInfo,
    },
}

/// Why fetching an entry did not work.
enum Failure {
    /// The registry could not be asked (network, HTTP status, timeout).
    Down(Error),
    /// The registry answered with something that does not check out.
    Bad(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Down(e)
    }
}

/// The cache registry of one run.
pub struct RemoteCache<'a> {
    prefix: String,
    target: Target,
    mode: CacheRegistryMode,
    connection: Connection,
    cache: Cache,
    reporter: &'a dyn Reporter,
    client: OnceLock<Option<Pusher<'a>>>,
    down: AtomicBool,
    pending: Mutex<Vec<Pending>>,
    /// Tags whose entry in the registry did not check out: their blobs are sent
    /// again even where the registry says it has them.
    damaged: Mutex<std::collections::HashSet<String>>,
    hits: AtomicU64,
    misses: AtomicU64,
    pushed: AtomicU64,
}

impl<'a> RemoteCache<'a> {
    /// The cache registry at `prefix` (checked with [`check_reference`]; `flag`
    /// names where it came from in the error). Nothing is sent before the first entry is asked for.
    pub fn new(
        prefix: &str,
        flag: &str,
        mode: CacheRegistryMode,
        connection: Connection,
        cache: &Cache,
        reporter: &'a dyn Reporter,
    ) -> Result<Self> {
        check_reference(prefix).map_err(|message| Error::Flag {
            flag: flag.into(),
            message,
            help: REFERENCE_HELP.into(),
        })?;
        let target = Target::new(prefix, REPOSITORY, false)?;
        Ok(RemoteCache {
            prefix: prefix.trim_end_matches('/').to_string(),
            target,
            mode,
            connection,
            cache: cache.clone(),
            reporter,
            client: OnceLock::new(),
            down: AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            damaged: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            pushed: AtomicU64::new(0),
        })
    }

    /// Whether new entries are pushed.
    pub fn pushes(&self) -> bool {
        self.mode == CacheRegistryMode::ReadWrite
    }

    /// Whether the registry failed earlier in this run (then it is not asked again).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// `host[/path]/<name>`: where the docker engine's deps image `name` (`gopack-deps/<app>:<key>`) lives.
    pub fn docker_reference(&self, name: &str) -> String {
        let prefix = self
            .prefix
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&self.prefix);
        format!("{prefix}/{name}")
    }

    /// Marks the registry down for the rest of the run, with one warning.
    pub fn fail(&self, what: &str, err: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::Relaxed) {
            self.reporter.report(Event::Warning {
                message: format!(
                    "the cache registry {} failed ({what}): {err}; this run builds locally and \
                     does not ask it again",
                    self.prefix
                ),
            });
        }
    }

    /// Counts and reports an entry taken from the registry.
    pub fn hit(&self, app: &str, kind: &str, key: &str, size: u64, start: Instant) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.reporter.report(Event::CacheRemoteHit {
            app: app.into(),
            kind: kind.into(),
            key: crate::cache::short(key),
            size,
            millis: start.elapsed().as_millis() as u64,
        });
    }

    /// Counts and reports an entry the registry does not have.
    pub fn miss(&self, app: &str, kind: &str, key: &str) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.reporter.report(Event::CacheRemoteMiss {
            app: app.into(),
            kind: kind.into(),
            key: crate::cache::short(key),
        });
    }

    /// Counts and reports an entry sent to the registry.
    pub fn pushed(&self, app: &str, kind: &str, key: &str, size: u64, start: Instant) {
        self.pushed.fetch_add(1, Ordering::Relaxed);
        self.reporter.report(Event::CacheRemotePush {
            app: app.into(),
            kind: kind.into(),
            key: crate::cache::short(key),
            size,
            millis: start.elapsed().as_millis() as u64,
        });
    }

    /// Reports the run's totals ([`Event::CacheRemoteSummary`]).
    pub fn summary(&self) {
        self.reporter.report(Event::CacheRemoteSummary {
            registry: self.prefix.clone(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            pushed: self.pushed.load(Ordering::Relaxed),
        });
    }

    /// The client, connected on first use; `None` once the registry failed.
    fn client(&self) -> Option<&Pusher<'a>> {
        if self.is_down() {
            return None;
        }
        let client = self.client.get_or_init(|| {
            let access = Access {
                push: self.pushes(),
                attempts: 2,
            };
            let connect = crate::registry::credentials::lookup(&self.target.host).and_then(|c| {
                Pusher::with_access(
                    self.target.clone(),
                    self.connection.clone(),
                    c,
                    access,
                    &self.cache,
                    self.reporter,
                )
            });
            match connect {
                Ok(client) => Some(client),
                Err(e) => {
                    self.fail("connecting", &e);
                    None
                }
            }
        });
        client.as_ref().filter(|_| !self.is_down())
    }
}

impl crate::cache::RemoteStore for RemoteCache<'_> {
    fn fetch_binary(&self, app: &str, key: &str) -> bool {
        RemoteCache::fetch_binary(self, app, key)
    }

    fn built_binary(&self, app: &str, platform: &str, key: &str) {
        RemoteCache::built_binary(self, app, platform, key)
    }
}

/// `bin` for binaries and `layer` for layers: the tag's prefix.
fn entry_kind(kind: &str) -> &'static str {
    if kind == "binary" {
        "bin"
    } else {
        "layer"
    }
}

fn missing_blob(blob: &Descriptor) -> Failure {
    Failure::Bad(format!(
        "names a blob the registry does not have ({})",
        blob.digest
    ))
}

fn not_utf8() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path is not UTF-8")
}
