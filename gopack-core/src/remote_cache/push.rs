//! Pushing the entries a successful run built to the cache registry.

use super::*;

impl<'a> RemoteCache<'a> {
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
