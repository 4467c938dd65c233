//! OCI image documents (config, manifest, index), written as canonical JSON
//! (sorted keys, no spaces) so that their digests are stable, and the two
//! outputs: an OCI image layout folder and one archive that both OCI tools
//! (as oci-archive) and `docker load` (through its `manifest.json`) accept.

use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::layer::{HashingWriter, LayerInfo};
use crate::platform::Platform;
use camino::{Utf8Path, Utf8PathBuf};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

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

/// A blob stored in the cache, ready to go into a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: MediaType,
}

impl Blob {
    /// Its descriptor.
    pub fn descriptor(&self) -> Result<Descriptor> {
        descriptor(self.media_type.clone(), &self.digest, self.size, None, None)
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
}

impl Image {
    /// The image's digest: the index's, or the single manifest's.
    pub fn digest(&self) -> &str {
        match &self.index {
            Some(index) => &index.digest,
            None => &self.platforms[0].manifest.digest,
        }
    }

    /// The top blob: the index or the single manifest.
    pub fn top(&self) -> &Blob {
        self.index.as_ref().unwrap_or(&self.platforms[0].manifest)
    }

    /// Every blob of the image, each once, sorted by digest.
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

/// Serializes a document as canonical JSON: keys sorted, no whitespace.
pub fn canonical_json<T: Serialize>(document: &T) -> Result<Vec<u8>> {
    let value = serde_json::to_value(document).map_err(spec_error)?;
    serde_json::to_vec(&value).map_err(spec_error)
}

fn spec_error(err: impl std::fmt::Display) -> Error {
    Error::Invalid {
        path: "image document".into(),
        message: err.to_string(),
        help: "this is a bug in gopack; please report it with the app's configuration".into(),
    }
}

fn descriptor(
    media_type: MediaType,
    digest: &str,
    size: u64,
    platform: Option<&Platform>,
    annotations: Option<HashMap<String, String>>,
) -> Result<Descriptor> {
    let digest: oci_spec::image::Digest = digest.parse().map_err(spec_error)?;
    let mut builder = DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(size);
    if let Some(platform) = platform {
        builder = builder.platform(oci_platform(platform)?);
    }
    if let Some(annotations) = annotations {
        builder = builder.annotations(annotations);
    }
    builder.build().map_err(spec_error)
}

fn oci_platform(platform: &Platform) -> Result<oci_spec::image::Platform> {
    let mut builder = PlatformBuilder::default()
        .architecture(Arch::from(platform.arch.as_str()))
        .os(Os::from(platform.os.as_str()));
    if let Some(variant) = &platform.variant {
        builder = builder.variant(variant.clone());
    }
    builder.build().map_err(spec_error)
}

/// Stores `bytes` as a blob in the cache; returns its digest and size.
pub fn store_blob(cache: &Cache, bytes: &[u8], media_type: MediaType) -> Result<Blob> {
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    );
    let key = blob_key(&digest);
    if cache.get("blobs", &key).is_none() {
        cache.put("blobs", &key, bytes)?;
    }
    Ok(Blob {
        digest,
        size: bytes.len() as u64,
        media_type,
    })
}

/// The cache key of a blob: its hex digest.
pub fn blob_key(digest: &str) -> String {
    digest.trim_start_matches("sha256:").to_string()
}

/// The image config JSON for one platform.
pub fn config_json(
    platform: &Platform,
    run: &RunConfig,
    layers: &[(LayerInfo, &str)],
    created: &str,
) -> Result<Vec<u8>> {
    let env: Vec<String> = run.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let labels: HashMap<String, String> = run.labels.clone().into_iter().collect();
    let mut config = ConfigBuilder::default()
        .user(run.user.clone())
        .entrypoint(run.entrypoint.clone())
        .labels(labels);
    if !env.is_empty() {
        config = config.env(env);
    }
    if !run.cmd.is_empty() {
        config = config.cmd(run.cmd.clone());
    }
    if let Some(dir) = &run.workdir {
        config = config.working_dir(dir.clone());
    }
    if !run.expose.is_empty() {
        config = config.exposed_ports(run.expose.clone());
    }
    let history = layers
        .iter()
        .map(|(_, what)| {
            HistoryBuilder::default()
                .created(created.to_string())
                .created_by(format!("gopack: {what}"))
                .build()
                .map_err(spec_error)
        })
        .collect::<Result<Vec<_>>>()?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|(l, _)| l.diff_id.clone())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(spec_error)?;
    let mut image = ImageConfigurationBuilder::default()
        .created(created.to_string())
        .architecture(Arch::from(platform.arch.as_str()))
        .os(Os::from(platform.os.as_str()))
        .config(config.build().map_err(spec_error)?)
        .rootfs(rootfs)
        .history(history);
    if let Some(variant) = &platform.variant {
        image = image.variant(variant.clone());
    }
    canonical_json(&image.build().map_err(spec_error)?)
}

/// The manifest JSON for a config and its layers.
pub fn manifest_json(config: &Blob, layers: &[Blob]) -> Result<Vec<u8>> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor()?)
        .layers(
            layers
                .iter()
                .map(Blob::descriptor)
                .collect::<Result<Vec<_>>>()?,
        )
        .build()
        .map_err(spec_error)?;
    canonical_json(&manifest)
}

/// The image index JSON over per-platform manifests.
pub fn index_json(images: &[PlatformImage]) -> Result<Vec<u8>> {
    let manifests = images
        .iter()
        .map(|image| {
            let m = &image.manifest;
            descriptor(
                m.media_type.clone(),
                &m.digest,
                m.size,
                Some(&image.platform),
                None,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    index_document(manifests)
}

/// An image index over `manifests`, as canonical JSON.
fn index_document(manifests: Vec<Descriptor>) -> Result<Vec<u8>> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(spec_error)?;
    canonical_json(&index)
}

/// The layout's `index.json`: the image once per tag, named by `ref.name`.
fn layout_index_json(image: &Image) -> Result<Vec<u8>> {
    let top = image.top();
    let platform = image.index.is_none().then(|| &image.platforms[0].platform);
    let manifests = image
        .tags
        .iter()
        .map(|tag| {
            let annotations = HashMap::from([(REF_NAME.to_string(), tag.clone())]);
            descriptor(
                top.media_type.clone(),
                &top.digest,
                top.size,
                platform,
                Some(annotations),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    index_document(manifests)
}

/// `docker save`'s manifest.json for one platform image.
fn docker_manifest_json(image: &Image, platform: &PlatformImage) -> Result<Vec<u8>> {
    let path = |blob: &Blob| format!("blobs/sha256/{}", blob_key(&blob.digest));
    let entry = serde_json::json!([{
        "Config": path(&platform.config),
        "RepoTags": image.tags.iter().map(|t| format!("{}:{t}", image.name)).collect::<Vec<_>>(),
        "Layers": platform.layers.iter().map(path).collect::<Vec<_>>(),
    }]);
    serde_json::to_vec(&entry).map_err(spec_error)
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes the OCI image layout folder at `dir`, replacing what was there.
/// The new layout is built next to it and renamed into place.
pub fn write_layout(cache: &Cache, image: &Image, dir: &Utf8Path) -> Result<()> {
    let parent = dir.parent().expect("layout folders have a parent");
    std::fs::create_dir_all(parent).at(parent, "create")?;
    let temp = tempfile::Builder::new()
        .prefix(".tmp-layout-")
        .tempdir_in(parent)
        .at(parent, "create a temporary folder in")?;
    let root = Utf8Path::from_path(temp.path()).expect("temp paths under a UTF-8 folder are UTF-8");
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).at(&blobs, "create")?;
    for blob in image.blobs() {
        let source = cached_blob(cache, blob)?;
        let target = blobs.join(blob_key(&blob.digest));
        // Blobs are immutable and named by content: a hard link is a safe copy.
        if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).at(&target, "copy a blob to")?;
        }
    }
    write_file(&root.join("oci-layout"), OCI_LAYOUT)?;
    write_file(&root.join("index.json"), &layout_index_json(image)?)?;
    let old = parent.join(format!(".tmp-old-{}", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &old).at(dir, "move aside the old layout")?;
    }
    let kept = temp.keep();
    std::fs::rename(&kept, dir).at(dir, "put the new layout in place at")?;
    if old.exists() {
        std::fs::remove_dir_all(&old).at(&old, "remove the old layout")?;
    }
    Ok(())
}

/// Writes one archive: the OCI layout plus `manifest.json` for `docker load`
/// (with the platform image `docker_platform`). Entries sorted, fixed mtime.
pub fn write_archive(
    cache: &Cache,
    image: &Image,
    docker_platform: &PlatformImage,
    mtime: u64,
    path: &Utf8Path,
) -> Result<String> {
    let parent = path.parent().expect("archive paths have a parent");
    std::fs::create_dir_all(parent).at(parent, "create")?;
    let temp = tempfile::Builder::new()
        .prefix(".tmp-archive-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(parent)
        .at(parent, "create a temporary file in")?;
    let hashing = HashingWriter::new(std::io::BufWriter::new(temp.as_file()));
    let mut tar = tar::Builder::new(hashing);
    let header = |size: u64, kind: tar::EntryType, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(size);
        h
    };
    let layout_index = layout_index_json(image)?;
    let docker_manifest = docker_manifest_json(image, docker_platform)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append_data(
            &mut header(0, tar::EntryType::Directory, 0o755),
            dir,
            std::io::empty(),
        )
        .at(path, "write")?;
    }
    for blob in image.blobs() {
        let source = cached_blob(cache, blob)?;
        let file = std::fs::File::open(&source).at(&source, "read")?;
        let name = format!("blobs/sha256/{}", blob_key(&blob.digest));
        tar.append_data(
            &mut header(blob.size, tar::EntryType::Regular, 0o644),
            &name,
            file,
        )
        .at(path, "write")?;
    }
    for (name, bytes) in [
        ("index.json", layout_index.as_slice()),
        ("manifest.json", docker_manifest.as_slice()),
        ("oci-layout", OCI_LAYOUT),
    ] {
        tar.append_data(
            &mut header(bytes.len() as u64, tar::EntryType::Regular, 0o644),
            name,
            bytes,
        )
        .at(path, "write")?;
    }
    let hashing = tar.into_inner().at(path, "write")?;
    let (mut writer, digest, _) = hashing.finish();
    writer.flush().at(path, "write")?;
    drop(writer);
    temp.persist(path).map_err(|e| e.error).at(path, "write")?;
    Ok(digest)
}

fn cached_blob(cache: &Cache, blob: &Blob) -> Result<Utf8PathBuf> {
    cache
        .get("blobs", &blob_key(&blob.digest))
        .ok_or_else(|| Error::Invalid {
            path: cache
                .entry_path("blobs", &blob_key(&blob.digest))
                .to_string(),
            message: format!("blob {} is missing from the cache", blob.digest),
            help: "the cache was changed while gopack ran; run the command again".into(),
        })
}

fn write_file(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).at(path, "write")
}
