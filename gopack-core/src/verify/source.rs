//! Where an image comes from and how its blobs are read: an OCI layout folder,
//! a tar of one (OCI archive), a `docker save` archive (the classic layout with
//! `manifest.json` at the root, or the newer one that also has `index.json`), or
//! an image of the local docker engine, saved to a temp file first.
//!
//! Archives are indexed once (name → offset and size); a blob is then read by
//! seeking into the tar, never by unpacking it.

use super::limits::Budget;
pub(crate) use super::store::{Location, Store};
use crate::config::Limits;
use crate::error::{Error, IoContext, Result};
use crate::oci::documents::{ImageConfig, Index, Manifest};
use crate::toolchain::Docker;
use camino::Utf8PathBuf;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The most platform images one source may hold (each gets a report).
const MAX_IMAGES: usize = 256;

/// An image to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An OCI layout folder, an OCI archive or a `docker save` archive (detected by content).
    Path(Utf8PathBuf),
    /// An image of the local docker engine, by name or id (`docker:NAME[:TAG]`).
    Docker(String),
}

impl ImageSource {
    /// `docker:NAME[:TAG]` names an engine image; anything else is a path.
    pub fn parse(text: &str) -> ImageSource {
        match text.strip_prefix("docker:") {
            Some(reference) => ImageSource::Docker(reference.to_string()),
            None => ImageSource::Path(Utf8PathBuf::from(text)),
        }
    }
}

impl FromStr for ImageSource {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Ok(ImageSource::parse(text))
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Path(path) => write!(f, "{path}"),
            ImageSource::Docker(reference) => write!(f, "docker:{reference}"),
        }
    }
}

/// How the image was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A folder with `oci-layout`, `index.json` and `blobs/`.
    OciLayout,
    /// A tar of an OCI layout.
    OciArchive,
    /// A `docker save` archive.
    DockerArchive,
}

impl Format {
    /// How reports name the format.
    pub fn name(self) -> &'static str {
        match self {
            Format::OciLayout => "oci layout",
            Format::OciArchive => "oci archive",
            Format::DockerArchive => "docker archive",
        }
    }
}

/// A layer of an image: the blob and what it should hash to.
#[derive(Debug, Clone)]
pub(crate) struct LayerRef {
    /// The blob's name in the store.
    pub name: String,
    /// The digest the manifest gives (compressed bytes), when known.
    pub digest: Option<String>,
    /// The size the manifest gives, when known.
    pub size: Option<u64>,
    /// The digest of the uncompressed tar, from the config's rootfs.
    pub diff_id: Option<String>,
}

/// One platform's image, as found in the source.
#[derive(Debug)]
pub(crate) struct FoundImage {
    /// The manifest's digest, when the format has one.
    pub manifest_digest: Option<String>,
    /// Tags or reference names found with it.
    pub names: Vec<String>,
    /// The platform written in the index, if any.
    pub index_platform: Option<String>,
    /// The parsed config.
    pub config: ImageConfig,
    /// The config's name in the store.
    pub config_name: String,
    /// The layers, base first.
    pub layers: Vec<LayerRef>,
    /// JSON documents (config, manifest, ...) whose digest or size is not what refers to them.
    pub problems: Vec<String>,
    /// How many JSON blobs were checked against their digests.
    pub checked_blobs: usize,
}

impl FoundImage {
    /// `os/arch[/variant]` from the config.
    pub fn platform(&self) -> String {
        let mut text = format!("{}/{}", self.config.os, self.config.architecture);
        if let Some(variant) = &self.config.variant {
            if !variant.is_empty() {
                text.push('/');
                text.push_str(variant);
            }
        }
        text
    }
}

/// An opened image source.
#[derive(Debug)]
pub(crate) struct Opened {
    pub store: Store,
    pub format: Format,
    /// Keeps the temp folder of a `docker save` alive.
    pub _temp: Option<tempfile::TempDir>,
}

impl Opened {
    /// Opens `source`, saving engine images to a temp file first; every read
    /// from it stays within `limits`.
    pub fn open(source: &ImageSource, limits: Limits) -> Result<Opened> {
        let (path, temp) = match source {
            ImageSource::Path(path) => (path.clone(), None),
            ImageSource::Docker(reference) => {
                let docker = Docker::find()?;
                let temp = tempfile::Builder::new()
                    .prefix("gopack-verify-")
                    .tempdir()
                    .at(
                        std::env::temp_dir().to_string_lossy().as_ref(),
                        "create a temp folder",
                    )?;
                let dir = Utf8PathBuf::from_path_buf(temp.path().to_path_buf()).map_err(|p| {
                    Error::Invalid {
                        path: p.display().to_string(),
                        message: "the temp folder's path is not UTF-8".into(),
                        help: "set TMPDIR to a UTF-8 path".into(),
                    }
                })?;
                let archive = dir.join("image.tar");
                docker
                    .cmd(["save", "-o"])
                    .arg(archive.as_str())
                    .arg(reference)
                    .help(format!(
                        "`{reference}` is not an image of the local docker engine: check the \
                         name with `docker images`, or build or load it first"
                    ))
                    .read()?;
                (archive, Some(temp))
            }
        };
        let store = Store::open(&path, Budget::new(limits))?;
        let format = if store.has("index.json") {
            match store.location {
                Location::Dir(_) => Format::OciLayout,
                Location::Tar { .. } if store.has("manifest.json") => Format::DockerArchive,
                Location::Tar { .. } => Format::OciArchive,
            }
        } else if store.has("manifest.json") {
            Format::DockerArchive
        } else {
            return Err(Error::Invalid {
                path: path.to_string(),
                message: "neither index.json (OCI) nor manifest.json (docker save) is there".into(),
                help: "pass an OCI layout folder, an OCI archive, a `docker save` archive, or \
                       docker:NAME for an image of the local engine"
                    .into(),
            });
        };
        Ok(Opened {
            store,
            format,
            _temp: temp,
        })
    }

    /// Every platform image the source holds.
    pub fn images(&self) -> Result<Vec<FoundImage>> {
        let images = if self.store.has("index.json") {
            let mut found = Vec::new();
            let mut seen = BTreeSet::new();
            let bytes = self.store.read_small("index.json")?;
            let index: Index = parse_json(&self.store, "index.json", &bytes)?;
            self.walk_index(&index, &[], &mut found, &mut seen, 0)?;
            found
        } else {
            self.docker_manifest()?
        };
        if images.is_empty() {
            return Err(Error::Invalid {
                path: self.store.path().to_string(),
                message: "the image has no manifest for any platform".into(),
                help: "write the image again; an empty index cannot run".into(),
            });
        }
        Ok(images)
    }

    /// Reads the manifests an index lists, at any depth; `above` are the
    /// problems of the indexes that led here, which every image below inherits.
    fn walk_index(
        &self,
        index: &Index,
        above: &[String],
        found: &mut Vec<FoundImage>,
        seen: &mut BTreeSet<String>,
        depth: usize,
    ) -> Result<()> {
        if depth > 4 {
            return Err(Error::Invalid {
                path: self.store.path().to_string(),
                message: "indexes nest too deep".into(),
                help: "an image index should point at manifests, or at most a few indexes".into(),
            });
        }
        for descriptor in &index.manifests {
            let annotations = descriptor.annotations.clone().unwrap_or_default();
            if annotations
                .get("vnd.docker.reference.type")
                .is_some_and(|t| t == "attestation-manifest")
            {
                continue;
            }
            let platform = descriptor.platform.as_ref().map(|p| {
                let mut text = format!("{}/{}", p.os, p.architecture);
                if let Some(v) = &p.variant {
                    text.push('/');
                    text.push_str(v);
                }
                text
            });
            if platform.as_deref() == Some("unknown/unknown") {
                continue;
            }
            let digest = descriptor.digest.clone();
            let names: Vec<String> = annotations
                .get("org.opencontainers.image.ref.name")
                .or_else(|| annotations.get("io.containerd.image.name"))
                .cloned()
                .into_iter()
                .collect();
            if !seen.insert(digest.clone()) {
                if let Some(image) = found
                    .iter_mut()
                    .find(|i| i.manifest_digest.as_deref() == Some(digest.as_str()))
                {
                    image.names.extend(names);
                }
                continue;
            }
            let name = blob_name(&digest);
            self.store
                .budget
                .entry()
                .map_err(|e| self.over_budget(&name, e))?;
            let bytes = self.store.read_small(&name)?;
            let mut problems = above.to_vec();
            let value: serde_json::Value = parse_json(&self.store, &name, &bytes)?;
            if value.get("manifests").is_some() {
                check_blob(
                    &bytes,
                    &digest,
                    Some(descriptor.size),
                    "nested index",
                    &mut problems,
                );
                let nested: Index = parse_json(&self.store, &name, &bytes)?;
                self.walk_index(&nested, &problems, found, seen, depth + 1)?;
                continue;
            }
            check_blob(
                &bytes,
                &digest,
                Some(descriptor.size),
                "manifest",
                &mut problems,
            );
            // SBOMs, provenance and signatures (OCI 1.1 artifacts) are not platform images.
            if value.get("subject").is_some() || value.get("artifactType").is_some() {
                continue;
            }
            let manifest: Manifest = parse_json(&self.store, &name, &bytes)?;
            let mut image = self.read_manifest(&manifest, problems)?;
            image.manifest_digest = Some(digest);
            image.names = names;
            image.index_platform = platform;
            if found.len() == MAX_IMAGES {
                return Err(self.too_many_images(&name));
            }
            found.push(image);
        }
        Ok(())
    }

    fn too_many_images(&self, name: &str) -> Error {
        Error::Invalid {
            path: self.store.at(name),
            message: format!("the image lists more than {MAX_IMAGES} platform images"),
            help: "a multi-platform image holds one manifest per platform; this one is damaged \
                   or hostile"
                .into(),
        }
    }

    fn over_budget(&self, name: &str, e: std::io::Error) -> Error {
        Error::Invalid {
            path: self.store.at(name),
            message: e.to_string(),
            help: "verify reads images within fixed budgets; see `cargo xtask verify --help`"
                .into(),
        }
    }

    fn read_manifest(&self, manifest: &Manifest, mut problems: Vec<String>) -> Result<FoundImage> {
        let config_digest = manifest.config.digest.clone();
        let config_name = blob_name(&config_digest);
        let bytes = self.store.read_small(&config_name)?;
        check_blob(
            &bytes,
            &config_digest,
            Some(manifest.config.size),
            "config",
            &mut problems,
        );
        let config: ImageConfig = parse_json(&self.store, &config_name, &bytes)?;
        let diff_ids = config.rootfs.diff_ids.clone();
        let layers = manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| LayerRef {
                name: blob_name(&layer.digest),
                digest: Some(layer.digest.clone()),
                size: Some(layer.size),
                diff_id: diff_ids.get(i).cloned(),
            })
            .collect();
        if manifest.layers.len() != diff_ids.len() {
            problems.push(format!(
                "the manifest lists {} layers but the config's rootfs has {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            ));
        }
        Ok(FoundImage {
            manifest_digest: None,
            names: Vec::new(),
            index_platform: None,
            config,
            config_name,
            layers,
            problems,
            checked_blobs: 2,
        })
    }

    /// The classic `docker save` layout: `manifest.json` lists config and layer files.
    fn docker_manifest(&self) -> Result<Vec<FoundImage>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let bytes = self.store.read_small("manifest.json")?;
        let entries: Vec<Entry> = parse_json(&self.store, "manifest.json", &bytes)?;
        let mut found = Vec::new();
        if entries.len() > MAX_IMAGES {
            return Err(self.too_many_images("manifest.json"));
        }
        for entry in entries {
            let mut problems = Vec::new();
            let bytes = self.store.read_small(&entry.config)?;
            if let Some(digest) = digest_in_name(&entry.config) {
                check_blob(&bytes, &digest, None, "config", &mut problems);
            }
            let config: ImageConfig = parse_json(&self.store, &entry.config, &bytes)?;
            let diff_ids = config.rootfs.diff_ids.clone();
            if entry.layers.len() != diff_ids.len() {
                problems.push(format!(
                    "manifest.json lists {} layers but the config's rootfs has {} diff_ids",
                    entry.layers.len(),
                    diff_ids.len()
                ));
            }
            let layers = entry
                .layers
                .iter()
                .enumerate()
                .map(|(i, name)| LayerRef {
                    name: name.clone(),
                    digest: digest_in_name(name),
                    size: None,
                    diff_id: diff_ids.get(i).cloned(),
                })
                .collect();
            found.push(FoundImage {
                manifest_digest: None,
                names: entry.repo_tags.unwrap_or_default(),
                index_platform: None,
                config,
                config_name: entry.config.clone(),
                layers,
                problems,
                checked_blobs: 1,
            });
        }
        Ok(found)
    }
}

/// `blobs/sha256/<hex>` for `sha256:<hex>`.
pub(crate) fn blob_name(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("blobs/{algorithm}/{hex}"),
        None => format!("blobs/sha256/{digest}"),
    }
}

/// The digest a `docker save` file name carries (`<hex>.json`, `blobs/sha256/<hex>`).
fn digest_in_name(name: &str) -> Option<String> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    let is_hex = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hex && (name.starts_with("blobs/sha256/") || base.ends_with(".json")))
        .then(|| format!("sha256:{hex}"))
}

/// `sha256:<hex>` of bytes.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn check_blob(
    bytes: &[u8],
    digest: &str,
    size: Option<u64>,
    what: &str,
    problems: &mut Vec<String>,
) {
    let actual = match digest.split_once(':') {
        Some(("sha256", _)) => Some(sha256_digest(bytes)),
        Some(("sha512", _)) => Some(format!(
            "sha512:{}",
            hex::encode(sha2::Sha512::digest(bytes))
        )),
        _ => None,
    };
    match actual {
        Some(actual) if actual != digest => {
            problems.push(format!("{what} blob {digest} hashes to {actual}"))
        }
        Some(_) => {}
        None => problems.push(format!(
            "{what} blob {digest}: the digest's algorithm is not sha256 or sha512, so it cannot be checked"
        )),
    }
    if let Some(size) = size {
        if size != bytes.len() as u64 {
            problems.push(format!(
                "{what} blob {digest} has {} bytes, {size} expected",
                bytes.len()
            ));
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    name: &str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Invalid {
        path: store.at(name),
        message: format!("not a valid image document: {e}"),
        help: "the image is damaged or not an OCI/docker image; write it again".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::store::clean_name;
    use super::*;

    #[test]
    fn names() {
        assert_eq!(clean_name("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(clean_name("a/../b"), "b");
        assert_eq!(
            digest_in_name(&format!("{}.json", "a".repeat(64))),
            Some(format!("sha256:{}", "a".repeat(64)))
        );
        assert_eq!(digest_in_name("abc/layer.tar"), None);
        assert_eq!(
            ImageSource::parse("docker:api:1.0"),
            ImageSource::Docker("api:1.0".into())
        );
        assert_eq!(
            ImageSource::parse("out/oci"),
            ImageSource::Path("out/oci".into())
        );
    }
}
