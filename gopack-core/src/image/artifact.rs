//! OCI 1.1 artifacts attached to a platform image (the SBOM, the provenance):
//! an image manifest with an `artifactType`, the empty config, one layer (the
//! document), and a `subject` naming the platform manifest. The image's own
//! documents are untouched, so its digest never depends on them.
//!
//! In the layout and archive they are extra entries of `index.json` (with
//! their `artifactType`, no tag); on push they go to the registry by digest,
//! found through the referrers API or, on registries without it, through the
//! fallback tag `sha256-<subject hex>` (an index of referrers).

use super::documents::{canonical_json, media_type, Descriptor, Index, Manifest};
use super::rootfs::Tree;
use super::sbom::{self, SbomFormat};
use super::{store_blob, Blob, PlatformImage};
use crate::build::Binary;
use crate::cache::{Cache, KeyHasher, Kind};
use crate::config::App;
use crate::error::{Error, IoContext, Result};
use crate::image::ImageMetadata;
use camino::Utf8Path;
use std::collections::BTreeMap;

/// The empty config of artifacts.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";

/// One artifact attached to a platform image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `application/spdx+json`, `application/vnd.in-toto+json`, ...
    pub artifact_type: String,
    /// The artifact's manifest.
    pub manifest: Blob,
    /// The empty config, then the document.
    pub blobs: Vec<Blob>,
    /// The platform manifest it is about.
    pub subject: String,
    /// Annotations of the manifest (also on its descriptor).
    pub annotations: BTreeMap<String, String>,
    /// The tag it goes under instead of the subject's referrers: cosign's
    /// `sha256-<hex>.sig` and `.att` (see `crate::sign`); `None` for referrers.
    pub tag: Option<String>,
}

impl Artifact {
    /// The descriptor of the artifact's manifest, as `index.json` and the referrers API list it.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            artifact_type: Some(self.artifact_type.clone()),
            annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
            ..self.manifest.descriptor()
        }
    }

    /// The artifact's document blob.
    pub fn document(&self) -> &Blob {
        &self.blobs[1]
    }
}

/// Stores `document` and an artifact manifest for it with `subject` = `image`'s manifest.
pub fn attach(
    cache: &Cache,
    image: &PlatformImage,
    artifact_type: &str,
    document: &[u8],
    created: &str,
) -> Result<Artifact> {
    let config = store_blob(cache, EMPTY, EMPTY_MEDIA_TYPE)?;
    let layer = store_blob(cache, document, artifact_type)?;
    let annotations = BTreeMap::from([(
        "org.opencontainers.image.created".to_string(),
        created.to_string(),
    )]);
    let manifest = canonical_json(&Manifest {
        schema_version: 2,
        media_type: Some(media_type::MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: config.descriptor(),
        layers: vec![layer.descriptor()],
        subject: Some(image.manifest.descriptor()),
        annotations: Some(annotations.clone()),
    });
    let manifest = store_blob(cache, &manifest, media_type::MANIFEST)?;
    Ok(Artifact {
        artifact_type: artifact_type.to_string(),
        manifest,
        blobs: vec![config, layer],
        subject: image.manifest.digest.clone(),
        annotations,
        tag: None,
    })
}

/// The SBOM and provenance of every platform image of `app`, as configured.
/// Documents are cached (sealed, see [`Cache::put_sealed`]) by everything they
/// say, so an unchanged re-pack reads no binary and asks no package manager; a
/// damaged cached document is reported and made again.
#[allow(clippy::too_many_arguments)]
pub fn attachments(
    cache: &Cache,
    reporter: &dyn crate::report::Reporter,
    app: &App,
    workspace_root: &Utf8Path,
    metadata: &ImageMetadata,
    base_tree: &Tree,
    base_digest: &str,
    binaries: &[Binary],
    platforms: &[PlatformImage],
) -> Result<Vec<Artifact>> {
    let sbom_type = app.config.sbom.media_type();
    if sbom_type.is_none() && !app.config.provenance {
        return Ok(Vec::new());
    }
    let created = metadata.created();
    let mut origins = None;
    let mut artifacts = Vec::new();
    for (binary, image) in binaries.iter().zip(platforms) {
        let mut info = None;
        if let Some(media_type) = sbom_type {
            // v3: replaced modules as built, cgo libraries.
            // v4: the binary by its content, not its build key.
            let key = KeyHasher::new("sbom/v4")
                .text("format", media_type)
                .text("binary", &binary.content_key(cache))
                .text("base", base_digest)
                .text("manifest", &image.manifest.digest)
                .text("version", &metadata.version)
                .text("created", &created)
                .text("gopack", env!("CARGO_PKG_VERSION"))
                .finish();
            let document = match cache.read_sealed(Kind::Sbom, &key, reporter) {
                Some(document) => document,
                None => {
                    if origins.is_none() {
                        origins =
                            Some(remembered_origins(cache, reporter, base_tree, base_digest)?);
                    }
                    let info = info.get_or_insert(remembered_build_info(cache, reporter, binary)?);
                    let subject = sbom::Subject {
                        app: app.name(),
                        version: &metadata.version,
                        platform: &binary.platform,
                        manifest_digest: &image.manifest.digest,
                        created: &created,
                    };
                    let mut base = origins.clone().unwrap_or_default();
                    if app.config.cgo == crate::config::Cgo::Dynamic {
                        let runtime =
                            crate::build::cgo::RuntimeFiles::find(binary, &app.binary_path())?;
                        base.extend(sbom::library_origins(&runtime.entries)?);
                    }
                    let bytes = match app.config.sbom {
                        SbomFormat::Cyclonedx => sbom::cyclonedx(&subject, info, &base)?,
                        _ => sbom::spdx(&subject, info, &base)?,
                    };
                    cache.put_sealed(Kind::Sbom, &key, &bytes)?;
                    bytes
                }
            };
            artifacts.push(attach(cache, image, media_type, &document, &created)?);
        }
        if app.config.provenance {
            let info = match info.take() {
                Some(info) => info,
                None => remembered_build_info(cache, reporter, binary)?,
            };
            let document = super::provenance::statement(
                app,
                workspace_root,
                metadata,
                binary,
                &info,
                &image.manifest.digest,
            )?;
            artifacts.push(attach(
                cache,
                image,
                super::provenance::MEDIA_TYPE,
                &document,
                &created,
            )?);
        }
    }
    Ok(artifacts)
}

/// The binary's Go build info, remembered (sealed) by the binary's key: a
/// re-pack of an unchanged binary does not read its megabytes again.
fn remembered_build_info(
    cache: &Cache,
    reporter: &dyn crate::report::Reporter,
    binary: &Binary,
) -> Result<crate::goinfo::buildinfo::BuildInfo> {
    let key = KeyHasher::new("buildinfo/v2")
        .text("binary", &binary.content_key(cache))
        .finish();
    if let Some(info) = cache
        .read_sealed(Kind::BuildInfo, &key, reporter)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    {
        return Ok(info);
    }
    let info = read_build_info(binary)?;
    let record = serde_json::to_vec(&info).expect("build info serializes");
    cache.put_sealed(Kind::BuildInfo, &key, &record)?;
    Ok(info)
}

fn read_build_info(binary: &Binary) -> Result<crate::goinfo::buildinfo::BuildInfo> {
    let bytes = std::fs::read(&binary.path).at(&binary.path, "read")?;
    crate::goinfo::buildinfo::read_build_info(&bytes).map_err(|e| Error::Invalid {
        path: binary.path.to_string(),
        message: e.to_string(),
        help: "the SBOM and provenance come from the binary's Go build info; set sbom = false \
               and provenance = false to pack without them"
            .into(),
    })
}

/// The referrers index of the fallback tag schema: `sha256-<hex>` of the subject.
pub fn fallback_tag(subject: &str) -> String {
    subject.replace(':', "-")
}

/// Adds `artifact` to a referrers index (the fallback tag's), keeping what others put there.
pub fn merge_referrers(existing: Option<&[u8]>, artifact: &Artifact) -> Vec<u8> {
    let mut manifests: Vec<Descriptor> = existing
        .and_then(|bytes| serde_json::from_slice::<Index>(bytes).ok())
        .map(|index| index.manifests)
        .unwrap_or_default();
    if !manifests
        .iter()
        .any(|m| m.digest == artifact.manifest.digest)
    {
        manifests.push(artifact.descriptor());
    }
    canonical_json(&Index::new(manifests))
}

/// The package database files whose change can change a base file's owner or version.
const PACKAGE_DATABASE: &[&str] = &["/var/lib/dpkg/status", "/etc/os-release"];

/// [`sbom::base_origins`], remembered (`origins/`) by the base layer's digest
/// (every base file's path and content), the host paths the files came from,
/// and the identity of the package database: asking dpkg and hashing the
/// zoneinfo files again costs more than the rest of a re-pack.
fn remembered_origins(
    cache: &Cache,
    reporter: &dyn crate::report::Reporter,
    base_tree: &Tree,
    base_digest: &str,
) -> Result<Vec<sbom::BaseOrigin>> {
    use crate::image::rootfs::Content;
    // v2: sealed entries.
    let mut key = crate::cache::KeyHasher::new("origins/v2");
    key.text("base", base_digest);
    for entry in base_tree.entries() {
        if let Content::Host(host) = &entry.content {
            key.text("path", &entry.path).text("host", host.as_str());
        }
    }
    for file in PACKAGE_DATABASE {
        let identity = std::fs::metadata(file)
            .map(|meta| format!("{:?}", crate::cache::stat::Identity::of(&meta)))
            .unwrap_or_else(|_| "absent".into());
        key.text("database", file).text("identity", &identity);
    }
    let key = key.finish();
    if let Some(bytes) = cache.read_sealed(Kind::Origins, &key, reporter) {
        match serde_json::from_slice::<Vec<sbom::BaseOrigin>>(&bytes) {
            Ok(origins) => return Ok(origins),
            Err(e) => cache.discard(reporter, Kind::Origins, &key, &e.to_string(), &[]),
        }
    }
    let origins = sbom::base_origins(base_tree)?;
    let bytes = serde_json::to_vec(&origins).expect("origins serialize");
    cache.put_sealed(Kind::Origins, &key, &bytes)?;
    Ok(origins)
}
