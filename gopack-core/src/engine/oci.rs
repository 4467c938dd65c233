//! The daemonless engine: built binaries plus a generated root filesystem
//! become a two-layer image (shared base, app), stored as blobs in the cache,
//! without a docker engine or a base image. Where the image goes next (the
//! layout, the archive, verify, docker, a registry) is the pipeline's
//! business ([`crate::pipeline`]).
//!
//! Layers are cached by a key over their content and mtime, so a re-pack
//! with unchanged inputs neither builds nor compresses.

use crate::build::{Binary, Builder};
use crate::cache::stat::StatCache;
use crate::cache::{Cache, KeyHasher, Kind};
use crate::config::{App, Workspace};
use crate::error::{IoContext, Result};
use crate::image::rootfs::{self, Tree};
use crate::image::{self, Blob, Image, ImageMetadata, Packed, PlatformImage, RunConfig};
use crate::oci::documents::media_type;
use crate::oci::layer::{write_layer, LayerInfo};
use crate::remote_cache::RemoteCache;
use crate::report::{Event, Reporter};

/// The daemonless engine.
pub struct OciEngine<'a> {
    workspace: &'a Workspace,
    builder: Builder<'a>,
    reporter: &'a dyn Reporter,
    remote: Option<&'a RemoteCache<'a>>,
    /// What this run already learned for every app alike: base layers by the
    /// settings they are made of, and layer keys by the files a tree names
    /// (host files are hashed once per run, not once per app).
    memo: std::sync::Mutex<Memo>,
}

/// A base layer and the tree it was made of (the SBOM lists its files).
type BaseLayer = (std::sync::Arc<Tree>, (LayerInfo, Blob));

/// See [`OciEngine::memo`].
#[derive(Default)]
struct Memo {
    /// Each made once per run: apps with the same settings that ask at the
    /// same time wait for the first.
    base_layers:
        std::collections::HashMap<String, std::sync::Arc<std::sync::Mutex<Option<BaseLayer>>>>,
    layer_keys: std::collections::HashMap<String, String>,
}

impl<'a> OciEngine<'a> {
    /// An engine over the workspace (finds `go`, opens the cache).
    pub fn new(workspace: &'a Workspace, reporter: &'a dyn Reporter) -> Result<Self> {
        Ok(OciEngine {
            workspace,
            builder: Builder::new(workspace, reporter)?,
            reporter,
            remote: None,
            memo: Default::default(),
        })
    }

    /// Shares binaries and layers through `remote`, the cache registry.
    pub fn with_remote(mut self, remote: Option<&'a RemoteCache<'a>>) -> Self {
        self.builder = self.builder.with_remote(remote);
        self.remote = remote;
        self
    }

    /// The cache the engine writes blobs to.
    pub fn cache(&self) -> &Cache {
        self.builder.cache()
    }

    /// Builds and packs `app`.
    pub fn pack(&self, app: &App) -> Result<Packed> {
        self.pack_with(
            app,
            ImageMetadata::read_remembering(app, Some(self.cache()), self.reporter)?,
        )
    }

    /// Builds and packs `app` with metadata already read (a [`crate::plan::Plan`]'s).
    pub fn pack_with(&self, app: &App, metadata: ImageMetadata) -> Result<Packed> {
        self.pack_with_hook(app, metadata, &|_| {})
    }

    /// [`OciEngine::pack_with`], calling `made` with the image as soon as its
    /// own blobs (layers, configs, manifests, index) are in the cache, before
    /// its attachments are made: verify starts there.
    pub fn pack_with_hook(
        &self,
        app: &App,
        metadata: ImageMetadata,
        made: &dyn Fn(&Image),
    ) -> Result<Packed> {
        let tags = crate::engine::image_tags(app, &metadata, self.reporter)?;
        // The base layer needs no binary: it is made (or found) while go builds.
        let (binaries, base) = std::thread::scope(|scope| {
            let base = scope.spawn(|| self.base_layer(app));
            let binaries = self.builder.build_version(app, &metadata.version);
            let base = base
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (binaries, base)
        });
        let binaries = binaries?;
        let (base_tree, base) = base?;
        let run = run_config(app, &metadata);
        let mut platforms = Vec::new();
        for binary in &binaries {
            platforms.push(self.platform_image(app, binary, &base, &run, &metadata)?);
        }
        let index = if platforms.len() > 1 {
            let bytes = image::index_json(&platforms);
            Some(image::store_blob_checked(
                self.cache(),
                &bytes,
                media_type::INDEX,
                self.reporter,
            )?)
        } else {
            None
        };
        let mut image = Image {
            name: app.image_name().to_string(),
            tags,
            platforms,
            index,
            artifacts: Vec::new(),
        };
        made(&image);
        image.artifacts = crate::image::artifact::attachments(
            self.cache(),
            self.reporter,
            app,
            &self.workspace.root,
            &metadata,
            &base_tree,
            &base.1.digest,
            &binaries,
            &image.platforms,
        )?;
        Ok(Packed {
            app: app.name().into(),
            image,
            metadata,
        })
    }

    fn platform_image(
        &self,
        app: &App,
        binary: &Binary,
        base: &(LayerInfo, Blob),
        run: &RunConfig,
        metadata: &ImageMetadata,
    ) -> Result<PlatformImage> {
        let platform = binary.platform.to_string();
        let mut tree = rootfs::app_tree(app, &binary.path);
        let mut run = run.clone();
        // The binary's content, not how it was made: an edit that leaves the
        // binary as it was (a comment, a test, a reverted change) reuses its
        // compressed layer.
        let binary_content = binary.content_key(self.cache());
        let mut content_key = Some(binary_content.clone());
        if !app.config.files.is_empty() {
            let files_key = crate::image::files::add_to_tree(app, &mut tree)?;
            content_key = Some(format!("{binary_content}+{files_key}"));
        }
        if app.config.cgo == crate::config::Cgo::Dynamic {
            let runtime = crate::build::cgo::RuntimeFiles::find(binary, &app.binary_path())?;
            runtime.add_to(&mut tree);
            run.labels.insert(
                crate::build::cgo::LIBRARIES_LABEL.into(),
                runtime.paths.join(","),
            );
            self.reporter.report(Event::Libraries {
                app: app.name().into(),
                platform: platform.clone(),
                libraries: runtime.listing,
            });
            // The libraries' contents are not in the binary's key: hash the tree.
            content_key = None;
        }
        let run = &run;
        let app_layer = self.layer(
            app,
            &platform,
            "app",
            &tree,
            metadata.epoch,
            content_key.as_deref(),
        )?;
        let layers = [
            (base.0.clone(), "base layer"),
            (app_layer.0.clone(), "app layer"),
        ];
        let layer_refs: Vec<(LayerInfo, &str)> =
            layers.iter().map(|(l, w)| (l.clone(), *w)).collect();
        let config_bytes =
            image::config_json(&binary.platform, run, &layer_refs, &metadata.created());
        let config = image::store_blob_checked(
            self.cache(),
            &config_bytes,
            media_type::CONFIG,
            self.reporter,
        )?;
        let layer_blobs = vec![base.1.clone(), app_layer.1];
        let manifest_bytes = image::manifest_json(&config, &layer_blobs);
        let manifest = image::store_blob_checked(
            self.cache(),
            &manifest_bytes,
            media_type::MANIFEST,
            self.reporter,
        )?;
        Ok(PlatformImage {
            platform: binary.platform.clone(),
            manifest,
            config,
            layers: layer_blobs,
        })
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.memo
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The app's base layer and tree; made once per run for every app with
    /// the same settings (user, CA bundle, zoneinfo, time zone).
    fn base_layer(&self, app: &App) -> Result<BaseLayer> {
        let c = &app.config;
        let settings = format!(
            "{:?}",
            (
                &c.user,
                c.certs,
                &c.ca_bundle,
                &c.tzdata,
                &c.zoneinfo,
                &c.timezone
            )
        );
        let slot = self.memo().base_layers.entry(settings).or_default().clone();
        let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((tree, (info, blob))) = &*slot {
            self.report_layer(app, "all", "base", info, true);
            return Ok((tree.clone(), (info.clone(), blob.clone())));
        }
        let tree = rootfs::base_tree(app, &self.workspace.root)?;
        let layer = self.layer(app, "all", "base", &tree, rootfs::BASE_EPOCH, None)?;
        let made = (std::sync::Arc::new(tree), layer);
        *slot = Some(made.clone());
        Ok(made)
    }

    /// A layer from the cache, or written (streamed, compressed and hashed) into it.
    /// `content_key` stands for the tree's file contents when the caller knows a
    /// key for them (a binary's cache key), sparing a hash of the files.
    fn layer(
        &self,
        app: &App,
        platform: &str,
        role: &str,
        tree: &Tree,
        mtime: u64,
        content_key: Option<&str>,
    ) -> Result<(LayerInfo, Blob)> {
        // v2: layers are compressed in blocks (crate::oci::pgzip); v1 layers have other bytes.
        // v3: layer records are sealed (see crate::cache).
        // v4: the gzip level is part of the key (a layer of another level has other bytes).
        // v5: an app layer's content is its binary's digest, not its build key.
        let mut hasher = KeyHasher::new("layer/v5");
        hasher
            .text("level", &crate::oci::layer::LEVEL.to_string())
            .text("role", role)
            .text("mtime", &mtime.to_string());
        match content_key {
            Some(key) => {
                hasher.text("content", key);
                for entry in tree.entries() {
                    hasher
                        .text("path", &entry.path)
                        .text("mode", &format!("{:o}", entry.mode));
                }
            }
            None => {
                // The same files (the base's CA bundle and zoneinfo) are
                // hashed once per run, whichever app names them first.
                let shape = tree_shape(role, mtime, tree);
                let known = self.memo().layer_keys.get(&shape).cloned();
                match known {
                    Some(key) => hasher.text("tree", &key),
                    None => {
                        let name = crate::build::stat_cache_name(&self.workspace.root, app, role);
                        let mut stats = StatCache::open(self.cache(), &name);
                        let mut files = KeyHasher::new("tree");
                        tree.hash_into(&mut files, &mut stats)?;
                        stats.save(self.cache());
                        let key = files.finish();
                        self.memo().layer_keys.insert(shape, key.clone());
                        hasher.text("tree", &key)
                    }
                };
            }
        }
        let key = hasher.finish();
        if let Some(info) = self.cached_layer(&key) {
            self.report_layer(app, platform, role, &info, true);
            return Ok((info.clone(), layer_blob(&info)));
        }
        if let Some(info) = self.remote.and_then(|r| r.fetch_layer(app.name(), &key)) {
            self.report_layer(app, platform, role, &info, true);
            return Ok((info.clone(), layer_blob(&info)));
        }
        let temp = self.cache().temp_file(Kind::Blobs)?;
        let (info, file) = write_layer(tree, mtime, std::io::BufWriter::new(temp))?;
        let temp = file
            .into_inner()
            .map_err(|e| e.into_error())
            .at(self.cache().dir(), "write a layer in")?;
        self.cache().commit(
            Kind::Blobs,
            crate::oci::digest::hex_of(&info.digest),
            temp.into_temp_path(),
        )?;
        let record = serde_json::to_vec(&info).expect("layer info serializes");
        self.cache().put_sealed(Kind::Layers, &key, &record)?;
        if let Some(remote) = self.remote {
            remote.built_layer(app.name(), platform, &key, &info);
        }
        self.report_layer(app, platform, role, &info, false);
        Ok((info.clone(), layer_blob(&info)))
    }

    /// The layer record `key`, trusted only when its seal is intact (it was
    /// written for this key, as it is), it reads, and its blob checks out.
    fn cached_layer(&self, key: &str) -> Option<LayerInfo> {
        let cache = self.cache();
        let record = cache.read_sealed(Kind::Layers, key, self.reporter)?;
        let info = match serde_json::from_slice::<LayerInfo>(&record) {
            Ok(info) if image::digest::hex_part(&info.diff_id).is_some() => info,
            Ok(_) => {
                let why = "has no valid diff_id";
                cache.discard(self.reporter, Kind::Layers, key, why, &[]);
                return None;
            }
            Err(e) => {
                let why = format!("cannot be read: {e}");
                cache.discard(self.reporter, Kind::Layers, key, &why, &[]);
                return None;
            }
        };
        let blob = layer_blob(&info);
        if crate::integrity::checked_blob(cache, &blob, self.reporter).is_none() {
            let _ = std::fs::remove_file(cache.entry_path(Kind::Layers, key));
            return None;
        }
        Some(info)
    }

    fn report_layer(&self, app: &App, platform: &str, role: &str, info: &LayerInfo, cached: bool) {
        self.reporter.report(Event::Layer {
            app: app.name().into(),
            platform: platform.into(),
            role: role.into(),
            digest: info.digest.clone(),
            size: info.size,
            cached,
        });
    }
}

/// What a tree names, without reading a file: the key of its hash within a run.
fn tree_shape(role: &str, mtime: u64, tree: &Tree) -> String {
    use crate::oci::tree::Content;
    let mut shape = KeyHasher::new("tree-shape");
    shape.text("role", role).text("mtime", &mtime.to_string());
    for entry in tree.entries() {
        shape
            .text("path", &entry.path)
            .text("mode", &format!("{:o}", entry.mode));
        match &entry.content {
            Content::Dir => shape.text("dir", ""),
            Content::Bytes(bytes) => shape.field("bytes", bytes),
            Content::Host(path) => shape.text("host", path.as_str()),
            Content::Symlink(target) => shape.text("symlink", target),
        };
    }
    shape.finish()
}

fn layer_blob(info: &LayerInfo) -> Blob {
    Blob {
        digest: info.digest.clone(),
        size: info.size,
        media_type: media_type::LAYER_GZIP.into(),
    }
}

/// The image's runtime settings from the app's config.
fn run_config(app: &App, metadata: &ImageMetadata) -> RunConfig {
    let config = &app.config;
    let mut env = rootfs::settings_env(app);
    env.extend(config.image_env.clone());
    let mut labels = std::collections::BTreeMap::from([
        (
            "org.opencontainers.image.title".to_string(),
            config.name.clone(),
        ),
        (
            "org.opencontainers.image.version".to_string(),
            metadata.version.clone(),
        ),
        (
            "org.opencontainers.image.created".to_string(),
            metadata.created(),
        ),
    ]);
    if let Some(revision) = &metadata.revision {
        labels.insert("org.opencontainers.image.revision".into(), revision.clone());
    }
    if let Some(source) = &metadata.source {
        labels.insert("org.opencontainers.image.source".into(), source.clone());
    }
    labels.extend(config.labels.clone());
    RunConfig {
        user: format!("{}:{}", config.user.uid, config.user.gid()),
        entrypoint: vec![app.binary_path()],
        cmd: config.args.clone(),
        env,
        workdir: config.workdir.clone(),
        expose: config.expose.clone(),
        labels,
    }
}
