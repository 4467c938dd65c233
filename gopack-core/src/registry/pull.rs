//! A registry image copied into an OCI layout folder, so that every reader of
//! layouts (`diff`, verify's readers) can read it: the top manifest or index,
//! each platform manifest, its config and its layers. Every blob is checked
//! against its digest and size as it streams to disk (a blob that does not
//! match is an error, and nothing of it stays); documents are bounded; the
//! whole copy is bounded by a byte budget. Nothing is unpacked.

use super::Pusher;
use crate::error::{Error, IoContext, Result};
use crate::oci::digest;
use crate::oci::documents::{media_type, Descriptor, Index, Manifest};
use camino::Utf8Path;
use sha2::{Digest as _, Sha256};
use std::io::Write;

/// The media types a pull asks for, OCI first.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";
/// The most a manifest or an index may weigh.
const MAX_DOCUMENT: u64 = 4 << 20;
/// The most platform manifests one index may name.
const MAX_MANIFESTS: usize = 256;

/// Copies the image `version` (a tag or `sha256:` digest) of the client's
/// repository into the layout folder `dir` (created), at most `budget` bytes
/// of blobs in all; returns the image's digest.
pub fn pull_to_layout(
    client: &Pusher,
    version: &str,
    dir: &Utf8Path,
    budget: u64,
) -> Result<String> {
    let reference = client.target().reference(version);
    let top = client
        .manifest(version, ACCEPT, MAX_DOCUMENT)?
        .ok_or_else(|| Error::Invalid {
            path: reference.clone(),
            message: "the registry has no such image".into(),
            help: "check the repository and the tag or digest (`skopeo inspect docker://...`)"
                .into(),
        })?;
    let top_digest = digest::sha256(&top);
    if version.starts_with("sha256:") && version != top_digest {
        return Err(Error::Invalid {
            path: reference,
            message: format!("the registry answered a manifest whose digest is {top_digest}"),
            help: "the registry is not serving the image asked for; do not trust it".into(),
        });
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).at(&blobs, "create")?;
    let mut copy = Copy {
        client,
        dir,
        left: budget,
        reference: &reference,
    };
    copy.write_blob(&top_digest, &top)?;
    let top_type = document_type(&top);
    let manifests: Vec<Descriptor> = if is_index(&top_type) {
        let index: Index = parse(&top, &reference)?;
        if index.manifests.len() > MAX_MANIFESTS {
            return Err(Error::Invalid {
                path: reference,
                message: format!(
                    "the index names {} manifests, more than {MAX_MANIFESTS}",
                    index.manifests.len()
                ),
                help: "diff an image with fewer platforms".into(),
            });
        }
        index.manifests
    } else {
        Vec::new()
    };
    let mut images = Vec::new();
    if manifests.is_empty() {
        images.push(top.clone());
    }
    for descriptor in &manifests {
        if is_index(&descriptor.media_type) {
            continue;
        }
        let bytes = client
            .manifest(&descriptor.digest, ACCEPT, MAX_DOCUMENT)?
            .ok_or_else(|| missing(&reference, &descriptor.digest))?;
        copy.check(&descriptor.digest, descriptor.size, &bytes)?;
        copy.write_blob(&descriptor.digest, &bytes)?;
        images.push(bytes);
    }
    for bytes in &images {
        let manifest: Manifest = parse(bytes, &reference)?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            copy.fetch(blob)?;
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::INDEX,
        "manifests": [{
            "mediaType": if top_type.is_empty() { media_type::MANIFEST.to_string() } else { top_type },
            "digest": top_digest,
            "size": top.len(),
        }],
    });
    let index_path = dir.join("index.json");
    std::fs::write(&index_path, index.to_string()).at(&index_path, "write")?;
    let layout = dir.join("oci-layout");
    std::fs::write(&layout, r#"{"imageLayoutVersion":"1.0.0"}"#).at(&layout, "write")?;
    Ok(top_digest)
}

struct Copy<'a> {
    client: &'a Pusher<'a>,
    dir: &'a Utf8Path,
    left: u64,
    reference: &'a str,
}

impl Copy<'_> {
    fn path(&self, digest: &str) -> Result<camino::Utf8PathBuf> {
        let hex = digest::hex_part(digest).ok_or_else(|| Error::Invalid {
            path: self.reference.to_string(),
            message: format!("`{digest}` is not a sha256 digest"),
            help: "the registry's documents name blobs gopack cannot check".into(),
        })?;
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    fn check(&self, digest: &str, size: u64, bytes: &[u8]) -> Result<()> {
        if digest::sha256(bytes) != digest || bytes.len() as u64 != size {
            return Err(Error::Invalid {
                path: self.reference.to_string(),
                message: format!("the registry sent other bytes for {digest}"),
                help: "the registry is not serving the image asked for; do not trust it".into(),
            });
        }
        Ok(())
    }

    fn write_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(digest)?;
        std::fs::write(&path, bytes).at(&path, "write")
    }

    /// Streams the blob into the layout, hashing as it goes.
    fn fetch(&mut self, blob: &Descriptor) -> Result<()> {
        let path = self.path(&blob.digest)?;
        if path.is_file() {
            return Ok(());
        }
        if blob.size > self.left {
            return Err(Error::Invalid {
                path: self.reference.to_string(),
                message: format!(
                    "the image is larger than the {} bytes a copy may take (blob {} of {} bytes)",
                    self.left, blob.digest, blob.size
                ),
                help: "raise verify's `max-unpacked-size` limit, or compare a smaller image".into(),
            });
        }
        let temp = path.with_extension("part");
        let file = std::fs::File::create(&temp).at(&temp, "create")?;
        let mut out = Hashing {
            file: std::io::BufWriter::new(file),
            hasher: Sha256::new(),
        };
        let got = self
            .client
            .fetch_blob(&blob.digest, blob.size, &mut out)?
            .ok_or_else(|| missing(self.reference, &blob.digest))?;
        out.file.flush().at(&temp, "write")?;
        let actual = digest::from_hash(&out.hasher.finalize());
        if got != blob.size || actual != blob.digest {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::Invalid {
                path: self.reference.to_string(),
                message: format!(
                    "the registry sent {got} bytes with digest {actual} for {} ({} bytes)",
                    blob.digest, blob.size
                ),
                help: "the registry is not serving the image asked for; do not trust it".into(),
            });
        }
        std::fs::rename(&temp, &path).at(&path, "write")?;
        self.left -= blob.size;
        Ok(())
    }
}

struct Hashing<W> {
    file: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn missing(reference: &str, digest: &str) -> Error {
    Error::Invalid {
        path: reference.to_string(),
        message: format!("the registry has no blob {digest} the image names"),
        help: "the image in the registry is incomplete; push it again".into(),
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == media_type::INDEX
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// A document's own `mediaType`, or empty.
fn document_type(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(String::from))
        .or_else(|| {
            // An OCI index without mediaType still has `manifests`.
            serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .filter(|v| v["manifests"].is_array())
                .map(|_| media_type::INDEX.to_string())
        })
        .unwrap_or_default()
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], reference: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Invalid {
        path: reference.to_string(),
        message: format!("the registry sent a document gopack cannot read: {e}"),
        help: "check the image with `skopeo inspect --raw docker://...`".into(),
    })
}
