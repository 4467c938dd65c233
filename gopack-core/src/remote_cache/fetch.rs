//! Fetching entries from the cache registry after a local miss: streamed into
//! temporary files in the cache, checked, then renamed into place.

use super::*;

impl<'a> RemoteCache<'a> {
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
