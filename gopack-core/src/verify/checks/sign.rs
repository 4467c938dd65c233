//! `sign.valid`: with a public key (`verify --key`, `verify.key`), every
//! manifest of the image — each platform's and the index's — has a cosign
//! signature (`sha256-<hex>.sig`, found by its `ref.name` in the layout's or
//! archive's `index.json`) that verifies with the key and signs that digest,
//! and every attestation (`.att`) verifies too and is about that digest.
//! The checking itself is [`crate::sign::check`]'s; this file reads the source.

use super::super::report::Check;
use super::super::source::{blob_name, FoundImage, Opened};
use crate::check_id::CheckId;
use crate::image::documents::{media_type, Index};
use crate::image::REF_NAME;
use crate::sign::{check_digest, Attachments, PublicKey};

/// A layout or archive as [`Attachments`]: tags from `index.json`'s `ref.name`.
struct Source<'a> {
    opened: &'a Opened,
    index: Option<Index>,
}

impl<'a> Source<'a> {
    fn new(opened: &'a Opened) -> Source<'a> {
        let index = opened
            .store
            .has("index.json")
            .then(|| opened.store.read_small("index.json").ok())
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        Source { opened, index }
    }
}

impl Attachments for Source<'_> {
    fn tagged(&self, tag: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(descriptor) = self.index.iter().flat_map(|i| &i.manifests).find(|d| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|name| name == tag)
        }) else {
            return Ok(None);
        };
        let bytes = self.blob(&descriptor.digest)?;
        if crate::image::digest::sha256(&bytes) != descriptor.digest {
            return Err(format!(
                "{tag} does not match its digest {}",
                descriptor.digest
            ));
        }
        Ok(Some(bytes))
    }

    fn blob(&self, digest: &str) -> Result<Vec<u8>, String> {
        if crate::image::digest::hex_part(digest).is_none() {
            return Err(format!("`{digest}` is not a sha256 digest"));
        }
        self.opened
            .store
            .read_small(&blob_name(digest))
            .map_err(|e| e.to_string())
    }
}

/// `sign.valid` for one platform image.
pub(crate) fn check_platform(opened: &Opened, image: &FoundImage, key: &PublicKey) -> Check {
    match &image.manifest_digest {
        Some(digest) => check(&Source::new(opened), digest, key),
        None => Check::fail(
            CheckId::SignValid,
            "the source has no manifest digest to check a signature against (a `docker save` \
             archive of an old engine)",
        )
        .remedy("verify the OCI layout or archive gopack wrote, or the image in its registry"),
    }
}

/// `sign.valid` for each index the source tags (a multi-platform image's top).
pub(crate) fn check_indexes(opened: &Opened, key: &PublicKey) -> Vec<Check> {
    let source = Source::new(opened);
    let mut digests: Vec<String> = source
        .index
        .iter()
        .flat_map(|i| &i.manifests)
        .filter(|d| d.media_type == media_type::INDEX || d.media_type == media_type::DOCKER_LIST)
        .map(|d| d.digest.clone())
        .collect();
    digests.sort();
    digests.dedup();
    digests
        .iter()
        .map(|digest| check(&source, digest, key))
        .collect()
}

fn check(source: &Source<'_>, digest: &str, key: &PublicKey) -> Check {
    match check_digest(&key.key, source, digest) {
        Ok(verified) => {
            let attested = if verified.attestations.is_empty() {
                String::new()
            } else {
                format!(", attested: {}", verified.attestations.join(", "))
            };
            Check::pass(
                CheckId::SignValid,
                format!(
                    "{digest} signed for {} with {}{attested}",
                    verified.reference, key.source
                ),
            )
        }
        Err(reason) => Check::fail(CheckId::SignValid, reason).remedy(format!(
            "sign the image with the private key of {} (`pack --sign-key`, see docs/signing.md), \
             or pass the public key it was signed with",
            key.source
        )),
    }
}
