//! What is attached to an image: SBOMs and provenance stored as OCI 1.1
//! artifacts whose `subject` is a platform manifest (`sbom.present`,
//! `provenance.present`). Information unless the policy's `require` asks for them.

use super::report::Check;
use super::source::{blob_name, sha256_digest, FoundImage, Opened};
use super::Expectations;
use crate::check_id::CheckId;
use crate::config::Attachment;
use serde_json::Value;

/// SBOM artifact types gopack and other tools attach.
const SBOM_TYPES: &[&str] = &[
    "application/spdx+json",
    "application/vnd.cyclonedx+json",
    "text/spdx",
];
/// Provenance artifact types.
const PROVENANCE_TYPES: &[&str] = &["application/vnd.in-toto+json"];

/// An artifact found in the source: its type, subject and whether its document is intact.
#[derive(Debug, Clone)]
struct Found {
    artifact_type: String,
    subject: String,
    document: Result<(String, usize), String>,
}

/// The artifacts listed in the source's `index.json` (none for other formats).
fn artifacts(opened: &Opened) -> Vec<Found> {
    if !opened.store.has("index.json") {
        return Vec::new();
    }
    let Ok(index) = opened
        .store
        .read_small("index.json")
        .map(|b| serde_json::from_slice::<Value>(&b).unwrap_or_default())
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for descriptor in index["manifests"].as_array().into_iter().flatten() {
        let (Some(artifact_type), Some(digest)) = (
            descriptor["artifactType"].as_str(),
            descriptor["digest"].as_str(),
        ) else {
            continue;
        };
        let Ok(bytes) = opened.store.read_small(&blob_name(digest)) else {
            continue;
        };
        let manifest: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let Some(subject) = manifest["subject"]["digest"].as_str() else {
            continue;
        };
        let document = document(opened, &manifest, digest, &bytes);
        found.push(Found {
            artifact_type: artifact_type.to_string(),
            subject: subject.to_string(),
            document,
        });
    }
    found
}

/// The document layer's digest and size, checked against its bytes.
fn document(
    opened: &Opened,
    manifest: &Value,
    digest: &str,
    bytes: &[u8],
) -> Result<(String, usize), String> {
    if sha256_digest(bytes) != digest {
        return Err(format!("the artifact manifest does not match {digest}"));
    }
    let layer = &manifest["layers"][0];
    let digest = layer["digest"]
        .as_str()
        .ok_or("the artifact manifest has no layer")?;
    let bytes = opened
        .store
        .read_small(&blob_name(digest))
        .map_err(|e| format!("its document {digest} cannot be read: {e}"))?;
    if sha256_digest(&bytes) != digest {
        return Err(format!("its document does not match {digest}"));
    }
    Ok((digest.to_string(), bytes.len()))
}

/// `sbom.present` and `provenance.present` for one platform image.
pub(crate) fn checks(opened: &Opened, image: &FoundImage, expect: &Expectations) -> Vec<Check> {
    let found = artifacts(opened);
    let mine: Vec<&Found> = match &image.manifest_digest {
        Some(digest) => found.iter().filter(|f| &f.subject == digest).collect(),
        None => Vec::new(),
    };
    [
        (
            CheckId::SbomPresent,
            Attachment::Sbom,
            "SBOM",
            SBOM_TYPES,
            "an SBOM",
            "set `sbom = true` (or \"cyclonedx\") and pack again",
        ),
        (
            CheckId::ProvenancePresent,
            Attachment::Provenance,
            "provenance",
            PROVENANCE_TYPES,
            "a provenance statement",
            "set `provenance = true` and pack again",
        ),
    ]
    .into_iter()
    .map(|(id, attachment, kind, types, what, remedy)| {
        let required = expect.policy.require.contains(&attachment);
        let hits: Vec<&&Found> = mine
            .iter()
            .filter(|f| types.contains(&f.artifact_type.as_str()))
            .collect();
        let broken: Vec<String> = hits
            .iter()
            .filter_map(|f| f.document.as_ref().err().cloned())
            .collect();
        if !broken.is_empty() {
            return Check::fail(id, format!("{what} is attached, but {}", broken.join("; ")))
                .remedy("pack the image again");
        }
        if let Some(hit) = hits.first() {
            let (digest, size) = hit.document.clone().unwrap_or_default();
            return Check::pass(
                id,
                format!("{} ({size} bytes, {digest})", hit.artifact_type),
            );
        }
        let message = format!("no {kind} is attached to this platform's manifest");
        if required {
            Check::fail(id, message).remedy(format!("verify.require asks for it: {remedy}"))
        } else {
            Check::skip(id, message)
        }
    })
    .collect()
}
