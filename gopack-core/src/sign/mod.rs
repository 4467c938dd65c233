//! Signatures and attestations in cosign's format, made before anything is
//! published and checked by `verify --key` (see docs/signing.md).
//!
//! For the image's index and each platform manifest, [`sign_image`] makes a
//! simple-signing payload signed with ECDSA P-256 (RFC 6979: the same image and
//! key give the same bytes), stored as cosign's `sha256-<hex>.sig` manifest;
//! each platform's SBOM and provenance become in-toto statements in DSSE
//! envelopes under `sha256-<hex>.att`, as `cosign attest` stores them. They
//! are [`Artifact`]s with a tag: the layout and the archive list them in
//! `index.json` under that tag, and a push puts them under it in the registry,
//! where cosign and containers/image (skopeo, podman) look for them.
//!
//! Who signs is a [`Signer`]; [`check`] verifies what a source holds against a
//! public key. This module reads image primitives only (no verify, engine,
//! publish, plan or cli).

pub mod check;
pub mod cosign;
pub mod keys;
pub mod signer;

pub use check::{check_digest, configured_key, Attachments, PublicKey, Verified};
pub use signer::{KeySigner, Signer};

use crate::cache::Cache;
use crate::error::{IoContext, Result};
use crate::image::artifact::Artifact;
use crate::image::documents::{canonical_json, media_type, Manifest};
use crate::image::{cached_blob, store_blob, Blob, Image};
use base64::Engine as _;
use std::collections::BTreeMap;

/// The environment variable that holds a signing key's PEM (for CI secrets).
pub const KEY_ENV: &str = "GOPACK_SIGN_KEY";
/// The environment variable that opens cosign's encrypted keys.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// What a run signs with: the signer, and the registry prefix the image goes
/// to (`--registry`, `registry`), which names the repository in signatures.
pub struct Signing<'a> {
    /// Who signs.
    pub signer: &'a dyn Signer,
    /// `host[/path]`, or `None` to name the image by its name alone.
    pub registry: Option<String>,
}

/// The repository a signature names (`critical.identity.docker-reference`):
/// `host[/path]/<name>` for the registry prefix the image goes to, else the
/// image's name. containers/image matches it against the reference it pulls.
pub fn identity(registry_prefix: Option<&str>, name: &str) -> String {
    let Some(prefix) = registry_prefix else {
        return name.to_string();
    };
    let prefix = prefix
        .split_once("://")
        .map_or(prefix, |(_, rest)| rest)
        .trim_end_matches('/');
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Signs `image` (the index and every platform manifest) and attests each
/// platform's SBOM and provenance; returns the `.sig` and `.att` artifacts, to
/// be added to the image's artifacts. `reference` is the repository the
/// signatures name ([`identity`]).
pub fn sign_image(
    cache: &Cache,
    signer: &dyn Signer,
    reference: &str,
    image: &Image,
) -> Result<Vec<Artifact>> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut digests: Vec<&str> = image.index.iter().map(|i| i.digest.as_str()).collect();
    digests.extend(image.platforms.iter().map(|p| p.manifest.digest.as_str()));
    let mut signed = Vec::new();
    for digest in &digests {
        let payload = cosign::payload(reference, digest);
        let signature = signer.sign(&payload)?;
        let layer = store_blob(cache, &payload, cosign::SIMPLESIGNING)?;
        let annotations = cosign::signature_annotations(&b64(&signature));
        signed.push(tagged(
            cache,
            cosign::SIG_ARTIFACT_TYPE,
            digest,
            "sig",
            vec![(layer, annotations)],
        )?);
    }
    for platform in &image.platforms {
        let digest = &platform.manifest.digest;
        let mut layers = Vec::new();
        for artifact in image
            .artifacts
            .iter()
            .filter(|a| &a.subject == digest && a.tag.is_none())
        {
            let Some(predicate_type) = cosign::predicate_type(&artifact.artifact_type) else {
                continue;
            };
            let path = cached_blob(cache, artifact.document())?;
            let document = std::fs::read(&path).at(&path, "read")?;
            let statement = cosign::statement(&image.name, digest, predicate_type, &document);
            let signature = signer.sign(&cosign::pae(cosign::IN_TOTO, &statement))?;
            let envelope = canonical_json(&cosign::Envelope {
                payload_type: cosign::IN_TOTO.into(),
                payload: b64(&statement),
                signatures: vec![cosign::EnvelopeSignature {
                    keyid: String::new(),
                    sig: b64(&signature),
                }],
            });
            let layer = store_blob(cache, &envelope, cosign::DSSE)?;
            layers.push((layer, cosign::attestation_annotations(predicate_type)));
        }
        if !layers.is_empty() {
            signed.push(tagged(
                cache,
                cosign::ATT_ARTIFACT_TYPE,
                digest,
                "att",
                layers,
            )?);
        }
    }
    Ok(signed)
}

/// A cosign manifest over `layers` (each with its annotations), tagged
/// `sha256-<hex of subject>.<suffix>`.
fn tagged(
    cache: &Cache,
    artifact_type: &str,
    subject: &str,
    suffix: &str,
    layers: Vec<(Blob, BTreeMap<String, String>)>,
) -> Result<Artifact> {
    let diff_ids: Vec<String> = layers.iter().map(|(b, _)| b.digest.clone()).collect();
    let config = store_blob(cache, &cosign::config(&diff_ids), media_type::CONFIG)?;
    let manifest = canonical_json(&Manifest {
        schema_version: 2,
        media_type: Some(media_type::MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: config.descriptor(),
        layers: layers
            .iter()
            .map(|(blob, annotations)| crate::image::documents::Descriptor {
                annotations: Some(annotations.clone()),
                ..blob.descriptor()
            })
            .collect(),
        subject: None,
        annotations: None,
    });
    let manifest = store_blob(cache, &manifest, media_type::MANIFEST)?;
    let mut blobs = vec![config];
    blobs.extend(layers.into_iter().map(|(b, _)| b));
    Ok(Artifact {
        artifact_type: artifact_type.into(),
        manifest,
        blobs,
        subject: subject.to_string(),
        annotations: BTreeMap::new(),
        tag: Some(cosign::tag(subject, suffix)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        assert_eq!(identity(None, "hello"), "hello");
        assert_eq!(
            identity(Some("127.0.0.1:5000/acme/"), "hello"),
            "127.0.0.1:5000/acme/hello"
        );
        assert_eq!(
            identity(Some("http://localhost:5000"), "hello"),
            "localhost:5000/hello"
        );
    }
}
