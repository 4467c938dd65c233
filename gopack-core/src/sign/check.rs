//! Checks what a source holds about one manifest digest against a public key:
//! the `.sig` manifest must have a simple-signing layer whose signature
//! verifies with the key and whose payload names that digest; every layer of
//! the `.att` manifest (when there is one) must be a DSSE envelope signed by
//! the key whose statement names that digest. Where the manifests and blobs
//! come from (a layout, an archive, a registry) is the caller's [`Attachments`].

use super::cosign;
use crate::image::documents::Manifest;
use base64::Engine as _;
use camino::Utf8Path;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};

/// A public key and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key.
    pub key: VerifyingKey,
    /// Where it came from, for reports (`cosign.pub`).
    pub source: String,
}

impl PublicKey {
    /// The PEM public key in the file `path`.
    pub fn from_file(path: &Utf8Path) -> crate::Result<PublicKey> {
        let text = super::signer::read_key_file(path)?;
        let key = super::keys::public_key(&text)
            .map_err(|e| super::signer::key_error(path.as_str(), e))?;
        Ok(PublicKey {
            key,
            source: path.to_string(),
        })
    }
}

/// The public key of an app's `verify.key`, read from the workspace root.
pub fn configured_key(
    workspace_root: &Utf8Path,
    policy: &crate::config::Policy,
) -> crate::Result<Option<PublicKey>> {
    policy
        .key
        .as_ref()
        .map(|path| PublicKey::from_file(&workspace_root.join(path)))
        .transpose()
}

/// Where signature and attestation manifests and their blobs are read from.
pub trait Attachments {
    /// The manifest under `tag` (`sha256-<hex>.sig`), or `None` when there is none.
    fn tagged(&self, tag: &str) -> Result<Option<Vec<u8>>, String>;
    /// The blob `digest` (bounded by the source; checked against the digest here).
    fn blob(&self, digest: &str) -> Result<Vec<u8>, String>;
}

/// What verified for one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The repository the valid signature names.
    pub reference: String,
    /// The predicate types of the verified attestations.
    pub attestations: Vec<String>,
}

/// Checks the signature and attestations about `digest`; `Err` says why they fail.
pub fn check_digest(
    key: &VerifyingKey,
    store: &dyn Attachments,
    digest: &str,
) -> Result<Verified, String> {
    let sig_tag = cosign::tag(digest, "sig");
    let manifest = store
        .tagged(&sig_tag)?
        .ok_or_else(|| format!("{digest} has no signature ({sig_tag})"))?;
    let manifest: Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| format!("{sig_tag} is not an image manifest: {e}"))?;
    let mut problems = Vec::new();
    let mut reference = None;
    for (i, layer) in manifest.layers.iter().enumerate() {
        if layer.media_type != cosign::SIMPLESIGNING {
            continue;
        }
        let outcome = check_signature(key, store, layer, digest);
        match outcome {
            Ok(name) => {
                reference = Some(name);
                break;
            }
            Err(e) => problems.push(format!("{sig_tag} layer {i}: {e}")),
        }
    }
    let Some(reference) = reference else {
        if problems.is_empty() {
            problems.push(format!("{sig_tag} has no simple-signing layer"));
        }
        return Err(problems.join("; "));
    };
    let att_tag = cosign::tag(digest, "att");
    let mut attestations = Vec::new();
    if let Some(manifest) = store.tagged(&att_tag)? {
        let manifest: Manifest = serde_json::from_slice(&manifest)
            .map_err(|e| format!("{att_tag} is not an image manifest: {e}"))?;
        for (i, layer) in manifest.layers.iter().enumerate() {
            let predicate = check_attestation(key, store, &layer.digest, digest)
                .map_err(|e| format!("{att_tag} layer {i}: {e}"))?;
            attestations.push(predicate);
        }
    }
    Ok(Verified {
        reference,
        attestations,
    })
}

/// One simple-signing layer: signed by `key`, naming `digest`; returns the
/// repository it names.
fn check_signature(
    key: &VerifyingKey,
    store: &dyn Attachments,
    layer: &crate::image::documents::Descriptor,
    digest: &str,
) -> Result<String, String> {
    let payload = checked_blob(store, &layer.digest)?;
    let signature = layer
        .annotations
        .as_ref()
        .and_then(|a| a.get(cosign::SIGNATURE_ANNOTATION))
        .ok_or("it has no signature annotation")?;
    verify_b64(key, signature, &payload)?;
    let claims = cosign::read_payload(&payload)?;
    if claims.digest != digest {
        return Err(format!(
            "it signs {}, not this image's {digest} (a signature copied from another image)",
            claims.digest
        ));
    }
    Ok(claims.reference)
}

/// One DSSE layer: signed by `key`, about `digest`; returns its predicate type.
fn check_attestation(
    key: &VerifyingKey,
    store: &dyn Attachments,
    layer: &str,
    digest: &str,
) -> Result<String, String> {
    let bytes = checked_blob(store, layer)?;
    let envelope: cosign::Envelope =
        serde_json::from_slice(&bytes).map_err(|e| format!("it is not a DSSE envelope: {e}"))?;
    let statement = base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .map_err(|e| format!("its payload is not base64: {e}"))?;
    let pae = cosign::pae(&envelope.payload_type, &statement);
    let mut failures = Vec::new();
    if !envelope
        .signatures
        .iter()
        .any(|s| match verify_b64(key, &s.sig, &pae) {
            Ok(()) => true,
            Err(e) => {
                failures.push(e);
                false
            }
        })
    {
        return Err(if failures.is_empty() {
            "the envelope has no signature".into()
        } else {
            failures.join("; ")
        });
    }
    let subjects = cosign::statement_subjects(&statement)?;
    if !subjects.iter().any(|s| s == digest) {
        return Err(format!(
            "the statement is about {}, not this image's {digest}",
            subjects.join(", ")
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&statement).unwrap_or_default();
    Ok(value["predicateType"].as_str().unwrap_or("").to_string())
}

fn checked_blob(store: &dyn Attachments, digest: &str) -> Result<Vec<u8>, String> {
    let bytes = store.blob(digest)?;
    if crate::image::digest::sha256(&bytes) != digest {
        return Err(format!("its blob does not match {digest}"));
    }
    Ok(bytes)
}

fn verify_b64(key: &VerifyingKey, signature: &str, message: &[u8]) -> Result<(), String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|e| format!("its signature is not base64: {e}"))?;
    let signature = Signature::from_der(&der)
        .map_err(|_| "its signature is not ASN.1 DER ECDSA".to_string())?;
    key.verify(message, &signature)
        .map_err(|_| "the signature does not verify with the key".to_string())
}

#[cfg(test)]
mod tests {
    use super::super::{sign_image, KeySigner, Signer};
    use super::*;
    use crate::cache::Cache;
    use crate::image::{store_blob, Image, PlatformImage};
    use std::collections::BTreeMap;

    /// Tags and blobs of a layout, in memory.
    struct Memory {
        tags: BTreeMap<String, String>,
        cache: Cache,
    }

    impl Attachments for Memory {
        fn tagged(&self, tag: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.tags.get(tag).map(|d| self.blob(d).unwrap()))
        }
        fn blob(&self, digest: &str) -> Result<Vec<u8>, String> {
            let path = self
                .cache
                .get(
                    crate::cache::Kind::Blobs,
                    crate::oci::digest::hex_of(digest),
                )
                .ok_or("missing")?;
            std::fs::read(path).map_err(|e| e.to_string())
        }
    }

    fn signer(seed: u8) -> KeySigner {
        KeySigner::new(
            p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
            "test",
        )
    }

    fn make_image(cache: &Cache, marker: &[u8]) -> Image {
        let config = store_blob(cache, marker, "application/vnd.oci.image.config.v1+json").unwrap();
        let manifest = store_blob(
            cache,
            &crate::image::manifest_json(&config, &[]),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .unwrap();
        let platform = PlatformImage {
            platform: "linux/amd64".parse().unwrap(),
            manifest,
            config,
            layers: vec![],
        };
        let sbom = crate::image::artifact::attach(
            cache,
            &platform,
            "application/spdx+json",
            b"{\"spdxVersion\":\"SPDX-2.3\"}",
            "2024-01-01T00:00:00Z",
        )
        .unwrap();
        Image {
            name: "hello".into(),
            tags: vec!["1.0".into()],
            platforms: vec![platform],
            index: None,
            artifacts: vec![sbom],
        }
    }

    fn memory(cache: &Cache, signed: &[crate::image::artifact::Artifact]) -> Memory {
        Memory {
            tags: signed
                .iter()
                .map(|a| (a.tag.clone().unwrap(), a.manifest.digest.clone()))
                .collect(),
            cache: cache.clone(),
        }
    }

    #[test]
    fn signs_deterministically_and_verifies_only_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(camino::Utf8Path::from_path(dir.path()).unwrap()).unwrap();
        let image = make_image(&cache, b"{\"a\":1}");
        let digest = image.digest().to_string();
        let signed = sign_image(&cache, &signer(1), "127.0.0.1:5000/hello", &image).unwrap();
        assert_eq!(signed.len(), 2, "a .sig and an .att");
        let again = sign_image(&cache, &signer(1), "127.0.0.1:5000/hello", &image).unwrap();
        assert_eq!(signed, again, "the same image and key give the same bytes");
        let store = memory(&cache, &signed);
        let verified = check_digest(&signer(1).public_key(), &store, &digest).unwrap();
        assert_eq!(verified.reference, "127.0.0.1:5000/hello");
        assert_eq!(verified.attestations, ["https://spdx.dev/Document"]);
        let wrong = check_digest(&signer(2).public_key(), &store, &digest).unwrap_err();
        assert!(wrong.contains("does not verify with the key"), "{wrong}");
        // Another image's signature put under this image's tag.
        let other = make_image(&cache, b"{\"a\":2}");
        let other_signed = sign_image(&cache, &signer(1), "x/hello", &other).unwrap();
        let mut copied = memory(&cache, &signed);
        copied.tags.insert(
            cosign::tag(&digest, "sig"),
            other_signed[0].manifest.digest.clone(),
        );
        let err = check_digest(&signer(1).public_key(), &copied, &digest).unwrap_err();
        assert!(err.contains("copied from another image"), "{err}");
        let none = check_digest(&signer(1).public_key(), &memory(&cache, &[]), &digest);
        assert!(none.unwrap_err().contains("has no signature"));
    }
}
