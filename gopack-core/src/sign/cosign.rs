//! cosign's formats, as `cosign sign` and `cosign attest` store them and
//! containers/image (skopeo, podman) reads them:
//!
//! - a simple-signing payload per manifest digest (`critical.identity
//!   .docker-reference`, `critical.image.docker-manifest-digest`,
//!   `critical.type`, `optional: null`);
//! - an image manifest tagged `sha256-<hex>.sig` whose layers are payloads
//!   (`application/vnd.dev.cosign.simplesigning.v1+json`) with the base64
//!   signature in the annotation `dev.cosignproject.cosign/signature`;
//! - in-toto statements in DSSE envelopes (`application/vnd.dsse.envelope.v1+json`,
//!   the signature over DSSE's pre-authentication encoding), the layers of a
//!   manifest tagged `sha256-<hex>.att`, each annotated with its `predicateType`.
//!
//! Every document is canonical JSON and every signature deterministic, so the
//! same image and key give the same bytes.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The media type of a simple-signing payload layer.
pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The annotation naming an attestation's predicate type.
pub const PREDICATE_ANNOTATION: &str = "predicateType";
/// The media type of a DSSE envelope layer.
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// The payload type of an in-toto statement in an envelope.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// `critical.type` of a simple-signing payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The artifact type gopack gives signature manifests (as cosign does for OCI 1.1
/// signatures); containers/image and cosign read the layers, not this field,
/// and verify does not take the manifest for a platform image.
pub const SIG_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The artifact type of attestation manifests.
pub const ATT_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.att.v1+json";
/// The in-toto statement type gopack writes for SBOMs.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// `sha256-<hex>.sig` or `.att`: where cosign keeps what is about `digest`.
pub fn tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

/// The simple-signing payload for `digest` under `reference` (the repository, no tag).
pub fn payload(reference: &str, digest: &str) -> Vec<u8> {
    crate::image::documents::canonical_json(&json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    }))
}

/// What a payload says, read leniently enough for cosign's own (which may carry
/// `optional` annotations) and strictly where it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadClaims {
    /// `critical.identity.docker-reference`.
    pub reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub digest: String,
}

/// Reads a payload; `Err` says what is wrong with it.
pub fn read_payload(bytes: &[u8]) -> Result<PayloadClaims, String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let critical = &value["critical"];
    if critical["type"] != SIGNATURE_TYPE {
        return Err(format!(
            "the payload's critical.type is {}, not \"{SIGNATURE_TYPE}\"",
            critical["type"]
        ));
    }
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("the payload has no {what}"))
    };
    Ok(PayloadClaims {
        reference: text(
            &critical["identity"]["docker-reference"],
            "critical.identity.docker-reference",
        )?,
        digest: text(
            &critical["image"]["docker-manifest-digest"],
            "critical.image.docker-manifest-digest",
        )?,
    })
}

/// The config of a signature or attestation manifest, as cosign writes it:
/// an image config whose diff_ids are the layers' digests, at the zero time.
pub fn config(layer_digests: &[String]) -> Vec<u8> {
    crate::image::documents::canonical_json(&json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
    }))
}

/// DSSE's pre-authentication encoding: what an envelope's signature signs.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// The statement, base64.
    pub payload: String,
    /// The signatures over [`pae`].
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The key's id; cosign leaves it empty for keys.
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64 (ASN.1 DER).
    pub sig: String,
}

/// The predicate type of an SBOM or provenance document of `media_type`.
pub fn predicate_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        "application/spdx+json" => Some("https://spdx.dev/Document"),
        "application/vnd.cyclonedx+json" => Some("https://cyclonedx.org/bom"),
        crate::image::provenance::MEDIA_TYPE => Some(crate::image::provenance::PREDICATE_TYPE),
        _ => None,
    }
}

/// The in-toto statement about `digest` (named `name`) whose predicate is `document`.
/// A document that is a statement already (the provenance) is used as it is.
pub fn statement(name: &str, digest: &str, predicate_type: &str, document: &[u8]) -> Vec<u8> {
    let predicate: Value = serde_json::from_slice(document).unwrap_or(Value::Null);
    if predicate["_type"]
        .as_str()
        .is_some_and(|t| t.starts_with("https://in-toto.io/Statement/"))
    {
        return document.to_vec();
    }
    crate::image::documents::canonical_json(&json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": crate::image::digest::hex_of(digest)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
}

/// The sha256 digests a statement names as its subjects.
pub fn statement_subjects(statement: &[u8]) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_slice(statement)
        .map_err(|e| format!("the attested statement is not JSON: {e}"))?;
    let subjects = value["subject"]
        .as_array()
        .ok_or("the attested statement has no subject")?;
    Ok(subjects
        .iter()
        .filter_map(|s| s["digest"]["sha256"].as_str())
        .map(|hex| format!("sha256:{hex}"))
        .collect())
}

/// The annotations of a signature layer.
pub fn signature_annotations(signature_b64: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature_b64.to_string())])
}

/// The annotations of an attestation layer.
pub fn attestation_annotations(predicate_type: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (SIGNATURE_ANNOTATION.to_string(), String::new()),
        (PREDICATE_ANNOTATION.to_string(), predicate_type.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosigns() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let bytes = payload("127.0.0.1:5000/hello", &digest);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/hello\"}},\
                 \"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\
                 \"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
        let claims = read_payload(&bytes).unwrap();
        assert_eq!(claims.digest, digest);
        assert_eq!(claims.reference, "127.0.0.1:5000/hello");
        assert!(read_payload(b"{\"critical\":{}}").is_err());
        assert_eq!(
            tag(&digest, "sig"),
            format!("sha256-{}.sig", "a".repeat(64))
        );
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("application/vnd.in-toto+json", b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
        );
    }

    #[test]
    fn statements_wrap_sboms_and_keep_statements() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let wrapped = statement(
            "hello",
            &digest,
            "https://spdx.dev/Document",
            b"{\"spdxVersion\":\"SPDX-2.3\"}",
        );
        assert_eq!(statement_subjects(&wrapped).unwrap(), vec![digest.clone()]);
        let value: Value = serde_json::from_slice(&wrapped).unwrap();
        assert_eq!(value["predicate"]["spdxVersion"], "SPDX-2.3");
        assert_eq!(statement("hello", &digest, "x", &wrapped), wrapped);
    }
}
