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

use crate::cache::Cache;
use crate::config::CacheRegistryMode;
use crate::error::{Error, IoContext, Result};
use crate::image::documents::{canonical_json, media_type, Descriptor, Manifest};
use crate::image::layer::LayerInfo;
use crate::image::{digest, store_blob};
use crate::integrity;
use crate::publish::registry::{Access, Connection, Pusher, Target};
use crate::report::{Event, Reporter};
use camino::Utf8PathBuf;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

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
/// The help line of a refused cache registry reference.
pub const REFERENCE_HELP: &str = "write a registry host and an optional repository path, e.g. \
    \"ghcr.io/acme/gopack-cache\" or \"127.0.0.1:5000/cache\" (lower case, no tag)";

/// The largest manifest, record and blob the registry may send.
const MANIFEST_LIMIT: u64 = 64 << 10;
const RECORD_LIMIT: u64 = 64 << 10;
const BLOB_LIMIT: u64 = 4 << 30;
/// The largest tar inside a layer (a decompression bomb stops here).
const TAR_LIMIT: u64 = 16 << 30;
/// The empty config of cache artifacts.
const EMPTY: &[u8] = b"{}";

/// Checks a `cache-registry` value; the reason when it is unusable.
pub fn check_reference(reference: &str) -> std::result::Result<(), String> {
    if reference.trim().is_empty() {
        return Err("the value is empty".into());
    }
    let target = Target::new(reference, REPOSITORY, false).map_err(|e| match e {
        Error::Flag { message, .. } => message,
        other => other.to_string(),
    })?;
    let path_ok = target.repository.split('/').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
    });
    if !path_ok || reference.contains('@') {
        return Err(format!(
            "`{reference}` is not a registry repository prefix (repository paths are lower-case \
             letters, digits, `.`, `_`, `-` and `/`)"
        ));
    }
    Ok(())
}

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
            let connect = crate::publish::credentials::lookup(&self.target.host).and_then(|c| {
                Pusher::with_access(
                    self.target.clone(),
                    self.connection,
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

    /// Asks the registry for the binary `key` after a local miss; true when it
    /// is now in the local cache (with its `bin-sums/` record), checked.
    pub fn fetch_binary(&self, app: &str, key: &str) -> bool {
        self.fetch(app, "binary", key, |client| {
            self.try_fetch_binary(client, key)
        })
    }

    /// Asks the registry for the layer `key` after a local miss; its record
    /// when the layer is now in the local cache, checked.
    pub fn fetch_layer(&self, app: &str, key: &str) -> Option<LayerInfo> {
        let mut found = None;
        self.fetch(app, "layer", key, |client| {
            let (size, info) = match self.try_fetch_layer(client, key)? {
                Some(found) => found,
                None => return Ok(None),
            };
            found = Some(info);
            Ok(Some(size))
        });
        found
    }

    fn fetch(
        &self,
        app: &str,
        kind: &str,
        key: &str,
        attempt: impl FnOnce(&Pusher<'a>) -> std::result::Result<Option<u64>, Failure>,
    ) -> bool {
        let Some(client) = self.client() else {
            return false;
        };
        let start = Instant::now();
        match attempt(client) {
            Ok(Some(size)) => {
                self.hit(app, kind, key, size, start);
                true
            }
            Ok(None) => {
                self.miss(app, kind, key);
                false
            }
            Err(Failure::Down(e)) => {
                self.fail(&format!("fetching {kind} {}", crate::cache::short(key)), &e);
                false
            }
            Err(Failure::Bad(why)) => {
                self.damaged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(tag(entry_kind(kind), key));
                self.reporter.report(Event::Warning {
                    message: format!(
                        "the cache registry's entry {} {why}; it is ignored and built here{}",
                        self.target.reference(&tag(entry_kind(kind), key)),
                        if self.pushes() { ", then replaced" } else { "" }
                    ),
                });
                self.misses.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The manifest of an entry, checked for shape: `artifactType`, the two layers' media types.
    fn entry_manifest(
        &self,
        client: &Pusher<'a>,
        tag: &str,
        artifact_type: &str,
        layer_types: [&str; 2],
    ) -> std::result::Result<Option<[Descriptor; 2]>, Failure> {
        let Some(bytes) = client.manifest(tag, media_type::MANIFEST, MANIFEST_LIMIT)? else {
            return Ok(None);
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Bad(format!("has a manifest gopack cannot read: {e}")))?;
        if manifest.artifact_type.as_deref() != Some(artifact_type) {
            return Err(Failure::Bad(format!(
                "is not a {artifact_type} (its artifactType is {:?})",
                manifest.artifact_type
            )));
        }
        let [record, blob]: [Descriptor; 2] = manifest
            .layers
            .try_into()
            .map_err(|_| Failure::Bad("does not have exactly two layers".into()))?;
        for (layer, (media, limit)) in [&record, &blob]
            .into_iter()
            .zip([(layer_types[0], RECORD_LIMIT), (layer_types[1], BLOB_LIMIT)])
        {
            if layer.media_type != media {
                return Err(Failure::Bad(format!(
                    "has a layer of type {}, {media} expected",
                    layer.media_type
                )));
            }
            if digest::hex_part(&layer.digest).is_none() || layer.size > limit {
                return Err(Failure::Bad(format!(
                    "names a blob `{}` of {} bytes (a sha256 digest and at most {limit} bytes expected)",
                    layer.digest, layer.size
                )));
            }
        }
        Ok(Some([record, blob]))
    }

    /// Downloads a small blob (a record) into memory, bounded and checked.
    fn small_blob(
        &self,
        client: &Pusher<'a>,
        blob: &Descriptor,
    ) -> std::result::Result<Vec<u8>, Failure> {
        let mut bytes = Vec::new();
        if client
            .fetch_blob(&blob.digest, blob.size.min(RECORD_LIMIT), &mut bytes)?
            .is_none()
        {
            return Err(missing_blob(blob));
        }
        if bytes.len() as u64 != blob.size || digest::sha256(&bytes) != blob.digest {
            return Err(Failure::Bad(format!(
                "has a record that is not {} ({} bytes arrived)",
                blob.digest,
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Streams a blob into a temporary file in the cache folder `kind` and checks
    /// it as the local cache checks its entries.
    fn blob_to_temp(
        &self,
        client: &Pusher<'a>,
        kind: crate::cache::Kind,
        blob: &Descriptor,
    ) -> std::result::Result<tempfile::NamedTempFile, Failure> {
        let temp = self.cache.temp_file(kind)?;
        let path = Utf8PathBuf::from_path_buf(temp.path().to_path_buf())
            .map_err(|p| Failure::Down(Error::io(p.display().to_string(), "use", not_utf8())))?;
        let mut out = std::io::BufWriter::new(temp);
        if client
            .fetch_blob(&blob.digest, blob.size, &mut out)?
            .is_none()
        {
            return Err(missing_blob(blob));
        }
        let temp = out
            .into_inner()
            .map_err(|e| e.into_error())
            .at(&path, "write")?;
        if let Some(why) = integrity::mismatch(&path, &blob.digest, blob.size) {
            return Err(Failure::Bad(format!("has a blob that {why}")));
        }
        Ok(temp)
    }

    fn try_fetch_binary(
        &self,
        client: &Pusher<'a>,
        key: &str,
    ) -> std::result::Result<Option<u64>, Failure> {
        let Some([record, binary]) = self.entry_manifest(
            client,
            &tag("bin", key),
            BINARY_TYPE,
            [BIN_SUMS_MEDIA, BINARY_MEDIA],
        )?
        else {
            return Ok(None);
        };
        let text = self.small_blob(client, &record)?;
        let expected = integrity::binary_record(&binary.digest, binary.size);
        if text != expected.as_bytes() {
            return Err(Failure::Bad(
                "has a bin-sums record that does not describe its binary".into(),
            ));
        }
        let temp = self.blob_to_temp(client, crate::cache::Kind::Bin, &binary)?;
        // The record first, as a local build writes it: a binary always has one.
        self.cache
            .put_sealed(crate::cache::Kind::BinSums, key, expected.as_bytes())?;
        self.cache
            .commit(crate::cache::Kind::Bin, key, temp.into_temp_path())?;
        Ok(Some(record.size + binary.size))
    }

    fn try_fetch_layer(
        &self,
        client: &Pusher<'a>,
        key: &str,
    ) -> std::result::Result<Option<(u64, LayerInfo)>, Failure> {
        let Some([record, blob]) = self.entry_manifest(
            client,
            &tag("layer", key),
            LAYER_TYPE,
            [LAYER_RECORD_MEDIA, media_type::LAYER_GZIP],
        )?
        else {
            return Ok(None);
        };
        let bytes = self.small_blob(client, &record)?;
        let info: LayerInfo = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Bad(format!("has a layer record gopack cannot read: {e}")))?;
        if info.digest != blob.digest
            || info.size != blob.size
            || digest::hex_part(&info.diff_id).is_none()
        {
            return Err(Failure::Bad(
                "has a layer record that does not describe its blob".into(),
            ));
        }
        let temp = self.blob_to_temp(client, crate::cache::Kind::Blobs, &blob)?;
        let diff_id = tar_digest(temp.path())
            .map_err(|e| Failure::Bad(format!("has a layer that does not decompress: {e}")))?;
        if diff_id != info.diff_id {
            return Err(Failure::Bad(format!(
                "has a layer whose tar hashes to {diff_id}, {} was recorded",
                info.diff_id
            )));
        }
        self.cache.commit(
            crate::cache::Kind::Blobs,
            digest::hex_of(&blob.digest),
            temp.into_temp_path(),
        )?;
        let record = serde_json::to_vec(&info).expect("layer info serializes");
        self.cache
            .put_sealed(crate::cache::Kind::Layers, key, &record)?;
        Ok(Some((record.len() as u64 + blob.size, info)))
    }

    /// Remembers a binary built here, to push after the run succeeds.
    pub fn built_binary(&self, app: &str, platform: &str, key: &str) {
        if self.pushes() {
            self.queue(Pending::Binary {
                app: app.into(),
                platform: platform.into(),
                key: key.into(),
            });
        }
    }

    /// Remembers a layer compressed here, to push after the run succeeds.
    pub fn built_layer(&self, app: &str, platform: &str, key: &str, info: &LayerInfo) {
        if self.pushes() {
            self.queue(Pending::Layer {
                app: app.into(),
                platform: platform.into(),
                key: key.into(),
                info: info.clone(),
            });
        }
    }

    fn queue(&self, entry: Pending) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// Pushes the entries made since the last call (after a successful build or
    /// pack); a failure is a warning, never an error.
    pub fn push_pending(&self) {
        let pending: Vec<Pending> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for entry in pending {
            let Some(client) = self.client() else {
                return;
            };
            let start = Instant::now();
            let (app, kind, key, result) = match &entry {
                Pending::Binary { app, platform, key } => (
                    app,
                    "binary",
                    key,
                    self.push_binary(client, app, platform, key),
                ),
                Pending::Layer {
                    app,
                    platform,
                    key,
                    info,
                } => (
                    app,
                    "layer",
                    key,
                    self.push_layer(client, app, platform, key, info),
                ),
            };
            match result {
                Ok(Some(size)) => self.pushed(app, kind, key, size, start),
                Ok(None) => {}
                Err(e) => self.fail(&format!("pushing {kind} {}", crate::cache::short(key)), &e),
            }
        }
    }

    fn push_binary(
        &self,
        client: &Pusher<'a>,
        app: &str,
        platform: &str,
        key: &str,
    ) -> Result<Option<u64>> {
        let Some(binary) = self.cache.get(crate::cache::Kind::Bin, key) else {
            return Ok(None);
        };
        // Only what the local cache would trust goes out.
        if !integrity::binary_ok(&self.cache, key, &binary, self.reporter) {
            return Ok(None);
        }
        let (binary_digest, binary_size) = integrity::file_digest(&binary).at(&binary, "read")?;
        // The registry's entry carries the record's text, not the local seal.
        let text = integrity::binary_record(&binary_digest, binary_size);
        let record = store_blob(&self.cache, text.as_bytes(), BIN_SUMS_MEDIA)?;
        let record_path = self
            .cache
            .entry_path(crate::cache::Kind::Blobs, record.key());
        let layers = [
            (BIN_SUMS_MEDIA, record.digest, record.size, record_path),
            (BINARY_MEDIA, binary_digest, binary_size, binary),
        ];
        self.push_entry(
            client,
            &tag("bin", key),
            BINARY_TYPE,
            app,
            platform,
            &layers,
        )
        .map(Some)
    }

    fn push_layer(
        &self,
        client: &Pusher<'a>,
        app: &str,
        platform: &str,
        key: &str,
        info: &LayerInfo,
    ) -> Result<Option<u64>> {
        let blob_path = self
            .cache
            .entry_path(crate::cache::Kind::Blobs, digest::hex_of(&info.digest));
        if integrity::mismatch(&blob_path, &info.digest, info.size).is_some() {
            return Ok(None);
        }
        let record = store_blob(
            &self.cache,
            &serde_json::to_vec(&info).expect("layer info serializes"),
            LAYER_RECORD_MEDIA,
        )?;
        let record_path = self
            .cache
            .entry_path(crate::cache::Kind::Blobs, record.key());
        let layers = [
            (LAYER_RECORD_MEDIA, record.digest, record.size, record_path),
            (
                media_type::LAYER_GZIP,
                info.digest.clone(),
                info.size,
                blob_path,
            ),
        ];
        self.push_entry(
            client,
            &tag("layer", key),
            LAYER_TYPE,
            app,
            platform,
            &layers,
        )
        .map(Some)
    }

    /// Pushes the blobs the registry lacks, then the manifest under `tag`; returns the bytes of the entry.
    fn push_entry(
        &self,
        client: &Pusher<'a>,
        tag: &str,
        artifact_type: &str,
        app: &str,
        platform: &str,
        layers: &[(&str, String, u64, Utf8PathBuf); 2],
    ) -> Result<u64> {
        let config = store_blob(&self.cache, EMPTY, crate::image::artifact::EMPTY_MEDIA_TYPE)?;
        client.push_file(
            &config.digest,
            &self
                .cache
                .entry_path(crate::cache::Kind::Blobs, config.key()),
            true,
        )?;
        let damaged = self
            .damaged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(tag);
        let mut size = 0;
        for (_, digest, blob_size, path) in layers {
            client.push_file(digest, path, !damaged)?;
            size += blob_size;
        }
        let annotations = BTreeMap::from([
            (
                "dev.gopack.version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            ("dev.gopack.platform".to_string(), platform.to_string()),
            ("dev.gopack.app".to_string(), app.to_string()),
        ]);
        let manifest = canonical_json(&Manifest {
            schema_version: 2,
            media_type: Some(media_type::MANIFEST.into()),
            artifact_type: Some(artifact_type.into()),
            config: config.descriptor(),
            layers: layers
                .iter()
                .map(|(media, digest, size, _)| Descriptor::new(media, digest, *size))
                .collect(),
            subject: None,
            annotations: Some(annotations),
        });
        client.put_manifest(media_type::MANIFEST, &manifest, tag)?;
        Ok(size)
    }
}

/// `bin` for binaries and `layer` for layers: the tag's prefix.
impl crate::cache::RemoteStore for RemoteCache<'_> {
    fn fetch_binary(&self, app: &str, key: &str) -> bool {
        RemoteCache::fetch_binary(self, app, key)
    }

    fn built_binary(&self, app: &str, platform: &str, key: &str) {
        RemoteCache::built_binary(self, app, platform, key)
    }
}

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

/// `sha256:<hex>` of the tar inside a gzip file, read at most [`TAR_LIMIT`] bytes.
fn tar_digest(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest as _, Sha256};
    let file = std::fs::File::open(path)?;
    let mut tar = flate2::read::GzDecoder::new(std::io::BufReader::new(file)).take(TAR_LIMIT + 1);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = tar.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.write_all(&buffer[..n])?;
    }
    if total > TAR_LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the tar is larger than {TAR_LIMIT} bytes"),
        ));
    }
    Ok(digest::from_hash(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_valid_and_unique() {
        let key = "a".repeat(64);
        assert_eq!(tag("bin", &key), format!("bin-{key}"));
        let long = "b".repeat(200);
        let t = tag("layer", &long);
        assert!(t.len() <= 128 && t.starts_with("layer-h"), "{t}");
        assert_ne!(tag("bin", "x/y"), tag("bin", "x_y"));
        assert!(tag("bin", "x/y")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    }

    #[test]
    fn references_are_checked() {
        for good in [
            "ghcr.io/acme/gopack-cache",
            "127.0.0.1:5000",
            "127.0.0.1:5000/ci/cache",
            "http://registry.lan:5000/cache",
        ] {
            assert_eq!(check_reference(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "acme",
            "ghcr.io/Acme",
            "ghcr.io/acme//x",
            "ghcr.io/acme@sha256:00",
            "ftp://x.io/y",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }

    /// A registry on 127.0.0.1 that answers `GET` by path from `routes` (404
    /// otherwise), for `requests` requests.
    fn canned_registry(routes: Vec<(String, Vec<u8>)>, requests: usize) -> String {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for _ in 0..requests {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or_default();
                let mut stream = reader.into_inner();
                let (status, body) = match routes.iter().find(|(p, _)| p == path) {
                    Some((_, body)) => ("200 OK", body.clone()),
                    None if path == "/v2/" => ("200 OK", b"{}".to_vec()),
                    None => ("404 Not Found", Vec::new()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        address
    }

    fn entry(artifact_type: &str, layers: Vec<Descriptor>) -> Vec<u8> {
        canonical_json(&Manifest {
            schema_version: 2,
            media_type: Some(media_type::MANIFEST.into()),
            artifact_type: Some(artifact_type.into()),
            config: Descriptor::new(
                "application/vnd.oci.empty.v1+json",
                &digest::sha256(EMPTY),
                2,
            ),
            layers,
            subject: None,
            annotations: None,
        })
    }

    #[test]
    fn hostile_entries_are_refused_before_anything_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
        let key = "c".repeat(64);
        let binary = b"\x7fELF not really".to_vec();
        let bin_digest = digest::sha256(&binary);
        // A record that names another binary.
        let record = format!("{} 99\n", digest::sha256(b"other")).into_bytes();
        let huge = Descriptor::new(BINARY_MEDIA, &bin_digest, BLOB_LIMIT + 1);
        let cases = [
            (
                entry(
                    BINARY_TYPE,
                    vec![
                        Descriptor::new(
                            BIN_SUMS_MEDIA,
                            &digest::sha256(&record),
                            record.len() as u64,
                        ),
                        Descriptor::new(BINARY_MEDIA, &bin_digest, binary.len() as u64),
                    ],
                ),
                "does not describe its binary",
            ),
            (
                entry(
                    BINARY_TYPE,
                    vec![
                        Descriptor::new(
                            BIN_SUMS_MEDIA,
                            &digest::sha256(&record),
                            record.len() as u64,
                        ),
                        huge,
                    ],
                ),
                "at most",
            ),
            (entry(LAYER_TYPE, Vec::new()), "is not a"),
            (b"not json".to_vec(), "cannot read"),
        ];
        for (manifest, expected) in cases {
            let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
            let routes = vec![
                (format!("/v2/{REPOSITORY}/manifests/bin-{key}"), manifest),
                (
                    format!(
                        "/v2/{REPOSITORY}/blobs/sha256:{}",
                        hex(&digest::sha256(&record))
                    ),
                    record.clone(),
                ),
                (
                    format!("/v2/{REPOSITORY}/blobs/sha256:{}", hex(&bin_digest)),
                    binary.clone(),
                ),
            ];
            let address = canned_registry(routes, 4);
            let recorder = crate::report::Recorder::default();
            let remote = RemoteCache::new(
                &address,
                "--cache-registry",
                CacheRegistryMode::Read,
                Connection::default(),
                &cache,
                &recorder,
            )
            .unwrap();
            assert!(!remote.fetch_binary("api", &key));
            let events = recorder.events();
            assert!(
                matches!(&events[..], [Event::Warning { message }] if message.contains(expected) && message.contains("ignored")),
                "{expected}: {events:?}"
            );
            assert!(!remote.is_down());
            assert!(
                cache.get(crate::cache::Kind::Bin, &key).is_none()
                    && cache.get(crate::cache::Kind::BinSums, &key).is_none()
            );
        }
    }

    #[test]
    fn a_registry_that_is_down_is_one_warning_and_never_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
        // Bound and closed: connections are refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let recorder = crate::report::Recorder::default();
        let remote = RemoteCache::new(
            &format!("127.0.0.1:{port}"),
            "--cache-registry",
            CacheRegistryMode::ReadWrite,
            Connection::default(),
            &cache,
            &recorder,
        )
        .unwrap();
        assert!(!remote.fetch_binary("api", &"a".repeat(64)));
        assert!(remote.fetch_layer("api", &"b".repeat(64)).is_none());
        remote.built_binary("api", "linux/amd64", &"a".repeat(64));
        remote.push_pending();
        let warnings = recorder
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::Warning { .. }))
            .count();
        assert_eq!(warnings, 1, "{:?}", recorder.events());
        assert!(remote.is_down());
    }
}
