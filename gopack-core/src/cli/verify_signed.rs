//! `verify --key PUB --image registry://HOST[:PORT]/REPO@sha256:...` (or
//! `:TAG`): an image in a registry, checked for its cosign signatures and
//! attestations only (`sign.valid` for the index and each platform manifest),
//! read where cosign keeps them (`sha256-<hex>.sig`, `.att`), without pulling
//! a layer. The other checks read layers: verify the layout or archive for them.

use crate::error::{Error, Result};
use crate::image::documents::{media_type, Index};
// The registry client (`crate::registry` once it moves there).
use crate::registry::credentials;
use crate::registry::pull::ACCEPT;
use crate::registry::{Access, Connection, Pusher, Target};
use crate::report::Reporter;
use crate::sign::{check_digest, Attachments, PublicKey};
use crate::verify::{Check, CheckId, PlatformReport, Report};

/// The prefix that names a registry image for `verify --image`.
pub const PREFIX: &str = "registry://";
/// The most a manifest, an index or a signature blob may weigh.
const MAX_DOCUMENT: u64 = 4 << 20;

/// The registry as [`Attachments`]: tags and blobs fetched with a pull-only client.
struct Remote<'a>(&'a Pusher<'a>);

impl Attachments for Remote<'_> {
    fn tagged(&self, tag: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        self.0
            .manifest(tag, media_type::MANIFEST, MAX_DOCUMENT)
            .map_err(|e| e.to_string())
    }

    fn blob(&self, digest: &str) -> std::result::Result<Vec<u8>, String> {
        if crate::image::digest::hex_part(digest).is_none() {
            return Err(format!("`{digest}` is not a sha256 digest"));
        }
        let mut bytes = Vec::new();
        match self.0.fetch_blob(digest, MAX_DOCUMENT, &mut bytes) {
            Ok(Some(_)) if bytes.len() as u64 <= MAX_DOCUMENT => Ok(bytes),
            Ok(Some(_)) => Err(format!("{digest} is larger than {MAX_DOCUMENT} bytes")),
            Ok(None) => Err(format!("the registry has no blob {digest}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `registry://HOST/REPO@DIGEST` → (target, digest or tag).
pub(super) fn parse(reference: &str, insecure: bool) -> Result<(Target, String)> {
    let bad = |message: &str| {
        Error::Flag {
        flag: "--image".into(),
        message: format!("`{reference}`: {message}"),
        help: "write registry://HOST[:PORT]/REPOSITORY@sha256:<hex> or registry://HOST[:PORT]/REPOSITORY:TAG".into(),
    }
    };
    let rest = reference.strip_prefix(PREFIX).unwrap_or(reference);
    let (name, version) = match rest.split_once('@') {
        Some((name, digest)) => {
            if crate::image::digest::hex_part(digest).is_none() {
                return Err(bad("the digest is not sha256:<64 hex digits>"));
            }
            (name, digest.to_string())
        }
        None => match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') && !tag.is_empty() => (name, tag.to_string()),
            _ => return Err(bad("it names no digest or tag")),
        },
    };
    let (prefix, last) = name
        .rsplit_once('/')
        .ok_or_else(|| bad("it names no repository"))?;
    Ok((Target::new(prefix, last, insecure)?, version))
}

/// The report of `sign.valid` for the registry image `reference`.
pub(super) fn report(
    reference: &str,
    key: &PublicKey,
    insecure: bool,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let (target, version) = parse(reference, insecure)?;
    let credentials = credentials::lookup(&target.host)?;
    let scratch = tempfile::Builder::new()
        .prefix("gopack-verify-")
        .tempdir()
        .map_err(|e| Error::Invalid {
            path: std::env::temp_dir().display().to_string(),
            message: format!("a temporary folder cannot be made: {e}"),
            help: "set TMPDIR to a writable folder".into(),
        })?;
    let cache = crate::cache::Cache::open(
        camino::Utf8PathBuf::from_path_buf(scratch.path().to_path_buf()).map_err(|p| {
            Error::Invalid {
                path: p.display().to_string(),
                message: "the temp folder's path is not UTF-8".into(),
                help: "set TMPDIR to a UTF-8 path".into(),
            }
        })?,
    )?;
    let access = Access {
        push: false,
        ..Access::default()
    };
    let client = Pusher::with_access(
        target,
        Connection::default(),
        credentials,
        access,
        &cache,
        reporter,
    )?;
    let top = client
        .manifest(&version, ACCEPT, MAX_DOCUMENT)?
        .ok_or_else(|| Error::Invalid {
            path: reference.to_string(),
            message: "the registry has no such image".into(),
            help: "check the repository and the digest or tag (`skopeo inspect`)".into(),
        })?;
    let digest = crate::image::digest::sha256(&top);
    if version.starts_with("sha256:") && version != digest {
        return Err(Error::Invalid {
            path: reference.to_string(),
            message: format!("the registry answered a manifest whose digest is {digest}"),
            help: "the registry is not serving the image asked for; do not trust it".into(),
        });
    }
    let store = Remote(&client);
    let check = |digest: &str| match check_digest(&key.key, &store, digest) {
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
            "sign the image with the private key of {}",
            key.source
        )),
    };
    let index: Option<Index> = serde_json::from_slice::<serde_json::Value>(&top)
        .ok()
        .filter(|v| v.get("manifests").is_some())
        .and_then(|_| serde_json::from_slice(&top).ok());
    let (checks, platforms) = match index {
        Some(index) => (
            vec![check(&digest)],
            index
                .manifests
                .iter()
                .filter(|d| d.platform.as_ref().is_some_and(|p| p.os != "unknown"))
                .map(|d| PlatformReport {
                    platform: d
                        .platform
                        .as_ref()
                        .map(|p| format!("{}/{}", p.os, p.architecture))
                        .unwrap_or_default(),
                    manifest: Some(d.digest.clone()),
                    names: Vec::new(),
                    checks: vec![check(&d.digest)],
                })
                .collect(),
        ),
        None => (
            Vec::new(),
            vec![PlatformReport {
                platform: String::new(),
                manifest: Some(digest.clone()),
                names: Vec::new(),
                checks: vec![check(&digest)],
            }],
        ),
    };
    let mut report = Report {
        source: reference.to_string(),
        format: "registry".into(),
        app: None,
        passed: false,
        checks,
        platforms,
    };
    report.passed = report.passed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let (target, version) = parse(
            &format!("registry://127.0.0.1:5000/acme/api@{digest}"),
            false,
        )
        .unwrap();
        assert_eq!(target.host, "127.0.0.1:5000");
        assert_eq!(target.repository, "acme/api");
        assert_eq!(version, digest);
        let (target, version) = parse("registry://ghcr.io/acme/api:1.0", false).unwrap();
        assert_eq!(
            (target.repository.as_str(), version.as_str()),
            ("acme/api", "1.0")
        );
        assert!(parse("registry://ghcr.io/api", false).is_err());
        assert!(parse("registry://ghcr.io/acme/api@sha256:../x", false).is_err());
    }
}
