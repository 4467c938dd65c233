//! What an image is made of, before anything is published: the generated root
//! filesystem ([`rootfs`]), deterministic layers ([`layer`], written with the
//! one tar header of [`tar`]), and the OCI documents that tie them together
//! ([`documents`]), all stored as blobs in the cache by digest ([`digest`]).

pub mod artifact;
pub mod files;
pub mod metadata;
pub mod provenance;
pub mod rootfs;
pub mod sbom;

pub use crate::oci::{digest, documents, layer, pgzip, tar, Blob};
pub use metadata::ImageMetadata;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::oci::documents::{
    canonical_json, media_type, Descriptor, Empty, History, ImageConfig, Index, Manifest, RootFs,
    RunSettings,
};
use crate::oci::layer::LayerInfo;
use crate::platform::Platform;
use camino::Utf8PathBuf;
use std::collections::BTreeMap;

/// The annotation OCI layouts use for tags.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The runtime settings of an image.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// Numeric `uid:gid`.
    pub user: String,
    /// Exec-form entrypoint.
    pub entrypoint: Vec<String>,
    /// Default arguments.
    pub cmd: Vec<String>,
    /// Environment, `NAME=value`, sorted by name.
    pub env: BTreeMap<String, String>,
    /// Working folder.
    pub workdir: Option<String>,
    /// Exposed ports such as `8080/tcp`.
    pub expose: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// An image the oci engine made: every blob is in the cache and nothing is
/// written anywhere else yet ([`crate::publish::Outputs`] writes the layout
/// and the archive).
#[derive(Debug, Clone)]
pub struct Packed {
    /// The app's name.
    pub app: String,
    /// The image.
    pub image: Image,
    /// Provenance of the image.
    pub metadata: ImageMetadata,
}

impl Packed {
    /// `name:tag` for every tag.
    pub fn references(&self) -> Vec<String> {
        self.image
            .tags
            .iter()
            .map(|t| format!("{}:{t}", self.image.name))
            .collect()
    }
}

/// One platform's image: its manifest, config and layers.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// The platform.
    pub platform: Platform,
    /// The manifest blob.
    pub manifest: Blob,
    /// The config blob.
    pub config: Blob,
    /// The layer blobs, base first.
    pub layers: Vec<Blob>,
}

/// A finished image: one manifest, or an index over several, plus its tags.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image's name (repository), e.g. `hello`.
    pub name: String,
    /// Tags, e.g. `1.2.0` and `latest`.
    pub tags: Vec<String>,
    /// The per-platform images.
    pub platforms: Vec<PlatformImage>,
    /// The index blob when there are several platforms.
    pub index: Option<Blob>,
    /// SBOMs and provenance attached to the platform images (not part of the image's digest).
    pub artifacts: Vec<artifact::Artifact>,
}

impl Image {
    /// The image's digest: the index's, or the single manifest's.
    pub fn digest(&self) -> &str {
        &self.top().digest
    }

    /// The top blob: the index or the single manifest.
    pub fn top(&self) -> &Blob {
        self.index.as_ref().unwrap_or(&self.platforms[0].manifest)
    }

    /// Every blob of the image and its attached artifacts, each once, sorted by digest.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut blobs: BTreeMap<&str, &Blob> = BTreeMap::new();
        for image in &self.platforms {
            for blob in std::iter::once(&image.manifest)
                .chain(std::iter::once(&image.config))
                .chain(&image.layers)
            {
                blobs.insert(&blob.digest, blob);
            }
        }
        if let Some(index) = &self.index {
            blobs.insert(&index.digest, index);
        }
        for artifact in &self.artifacts {
            for blob in std::iter::once(&artifact.manifest).chain(&artifact.blobs) {
                blobs.insert(&blob.digest, blob);
            }
        }
        blobs.into_values().collect()
    }

    /// The platform image `docker load` gets from the archive: linux/amd64 when
    /// present, else the first.
    pub fn docker_default(&self) -> &PlatformImage {
        self.platforms
            .iter()
            .find(|p| p.platform.arch == "amd64")
            .unwrap_or(&self.platforms[0])
    }
}

/// Stores `bytes` as a blob in the cache; returns its digest and size. A cached
/// blob with other bytes is damaged and written again.
pub fn store_blob(cache: &Cache, bytes: &[u8], media_type: &str) -> Result<Blob> {
    store_blob_checked(cache, bytes, media_type, &crate::report::Silent)
}

/// [`store_blob`], reporting a damaged cached blob to `reporter` before it is
/// written again.
pub fn store_blob_checked(
    cache: &Cache,
    bytes: &[u8],
    media_type: &str,
    reporter: &dyn crate::report::Reporter,
) -> Result<Blob> {
    let blob = Blob {
        digest: digest::sha256(bytes),
        size: bytes.len() as u64,
        media_type: media_type.to_string(),
    };
    let intact = cache
        .get(crate::cache::Kind::Blobs, blob.key())
        .is_some_and(|path| std::fs::read(&path).is_ok_and(|cached| cached == bytes));
    if !intact {
        if cache.get(crate::cache::Kind::Blobs, blob.key()).is_some() {
            crate::integrity::discard(
                reporter,
                cache,
                crate::cache::Kind::Blobs,
                blob.key(),
                "differs from its digest",
                &[],
            );
        }
        cache.put(crate::cache::Kind::Blobs, blob.key(), bytes)?;
    }
    Ok(blob)
}

/// The path of a blob in the cache, or an error when it has gone.
pub fn cached_blob(cache: &Cache, blob: &Blob) -> Result<Utf8PathBuf> {
    cache
        .get(crate::cache::Kind::Blobs, blob.key())
        .ok_or_else(|| Error::Invalid {
            path: cache
                .entry_path(crate::cache::Kind::Blobs, blob.key())
                .to_string(),
            message: format!("blob {} is missing from the cache", blob.digest),
            help: "the cache was changed while gopack ran; run the command again".into(),
        })
}

/// The image config JSON for one platform.
pub fn config_json(
    platform: &Platform,
    run: &RunConfig,
    layers: &[(LayerInfo, &str)],
    created: &str,
) -> Vec<u8> {
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let env: Vec<String> = run.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let settings = RunSettings {
        user: Some(run.user.clone()),
        exposed_ports: (!run.expose.is_empty())
            .then(|| run.expose.iter().map(|p| (p.clone(), Empty {})).collect()),
        env: non_empty(&env),
        entrypoint: Some(run.entrypoint.clone()),
        cmd: non_empty(&run.cmd),
        volumes: None,
        working_dir: run.workdir.clone(),
        labels: Some(run.labels.clone()),
        stop_signal: None,
    };
    let history = layers
        .iter()
        .map(|(_, what)| History {
            created: Some(created.to_string()),
            created_by: Some(format!("gopack: {what}")),
            ..History::default()
        })
        .collect();
    let config = ImageConfig {
        created: Some(created.to_string()),
        architecture: platform.arch.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: Some(settings),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|(l, _)| l.diff_id.clone()).collect(),
        },
        history: Some(history),
        ..ImageConfig::default()
    };
    canonical_json(&config)
}

/// The manifest JSON for a config and its layers.
pub fn manifest_json(config: &Blob, layers: &[Blob]) -> Vec<u8> {
    canonical_json(&Manifest {
        schema_version: 2,
        media_type: Some(media_type::MANIFEST.into()),
        artifact_type: None,
        config: config.descriptor(),
        layers: layers.iter().map(Blob::descriptor).collect(),
        subject: None,
        annotations: None,
    })
}

/// The image index JSON over per-platform manifests.
pub fn index_json(images: &[PlatformImage]) -> Vec<u8> {
    let manifests = images
        .iter()
        .map(|image| Descriptor {
            platform: Some((&image.platform).into()),
            ..image.manifest.descriptor()
        })
        .collect();
    canonical_json(&Index::new(manifests))
}
