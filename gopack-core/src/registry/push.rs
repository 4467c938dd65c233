//! Pushing: blobs (skipped when the registry has them), then each platform's
//! manifest by digest, then the image (index or manifest) under every tag, then
//! its SBOM and provenance artifacts (referrers API, tag fallback).
//!
//! Blobs and manifests are read from the local cache by the digests the image
//! names; an upload location on another host than the registry's gets no
//! credentials.

use super::client::{header, Pusher};
use crate::error::{IoContext, Result};
use crate::image::artifact::{fallback_tag, merge_referrers, Artifact};
use crate::image::documents::media_type;
use crate::image::{Blob, Image};
use crate::reference::url_host;
use crate::report::Event;

/// The largest referrers index (fallback tag) gopack reads back.
pub const INDEX_LIMIT: u64 = 4 << 20;

impl Pusher<'_> {
    /// Pushes `image` under each of its tags; returns the references.
    pub fn push(&self, app: &str, image: &Image) -> Result<Vec<String>> {
        for blob in image
            .platforms
            .iter()
            .flat_map(|p| std::iter::once(&p.config).chain(&p.layers))
        {
            self.push_blob(blob)?;
        }
        if image.index.is_some() {
            for platform in &image.platforms {
                self.push_manifest(&platform.manifest, &platform.manifest.digest)?;
            }
        }
        let mut references = Vec::new();
        for tag in &image.tags {
            self.push_manifest(image.top(), tag)?;
            let reference = self.target.reference(tag);
            self.reporter.report(Event::Pushed {
                app: app.to_string(),
                reference: format!("{reference}@{}", image.digest()),
            });
            references.push(reference);
        }
        for artifact in &image.artifacts {
            self.push_artifact(artifact)?;
        }
        Ok(references)
    }

    /// Pushes an SBOM or provenance artifact by digest. A registry without the
    /// referrers API (no `OCI-Subject` in its answer) gets the fallback tag: an
    /// index of the subject's referrers, under `sha256-<hex>`.
    fn push_artifact(&self, artifact: &Artifact) -> Result<()> {
        for blob in &artifact.blobs {
            self.push_blob(blob)?;
        }
        // cosign's signatures and attestations go under their own tag.
        if let Some(tag) = &artifact.tag {
            return self.push_manifest(&artifact.manifest, tag);
        }
        let manifest = &artifact.manifest;
        let path = self
            .cache
            .entry_path(crate::cache::Kind::Blobs, manifest.key());
        let bytes = std::fs::read(&path).at(&path, "read")?;
        if self.put_manifest(&manifest.media_type, &bytes, &manifest.digest)? {
            return Ok(());
        }
        let tag = fallback_tag(&artifact.subject);
        let url = self.target.url(&format!("manifests/{tag}"));
        let response = self.call("GET", &url, || {
            self.auth(self.agent.get(&url))
                .header("Accept", media_type::INDEX)
                .call()
        })?;
        let existing = match response.status().as_u16() {
            404 => {
                self.finish(response);
                None
            }
            200 => Some(self.read_limited(
                response,
                INDEX_LIMIT,
                "GET",
                &url,
                "the referrers index",
            )?),
            _ => return self.expect(response, &[200, 404], "GET", &url),
        };
        let index = merge_referrers(existing.as_deref(), artifact);
        if existing.as_deref() != Some(&index[..]) {
            self.put_manifest(media_type::INDEX, &index, &tag)?;
        }
        Ok(())
    }

    fn push_blob(&self, blob: &Blob) -> Result<()> {
        self.push_file(
            &blob.digest,
            &self.cache.entry_path(crate::cache::Kind::Blobs, blob.key()),
            true,
        )
        .map(|_| ())
    }

    /// Pushes the file at `path` as the blob `digest`, unless `skip_existing` and
    /// the registry has it. Returns whether it was sent.
    pub fn push_file(
        &self,
        digest: &str,
        path: &camino::Utf8Path,
        skip_existing: bool,
    ) -> Result<bool> {
        if skip_existing {
            let url = self.target.url(&format!("blobs/{digest}"));
            let response = self.call("HEAD", &url, || self.auth(self.agent.head(&url)).call())?;
            let found = response.status() == 200;
            self.finish(response);
            if found {
                return Ok(false);
            }
        }
        let start = self.target.url("blobs/uploads/");
        let response = self.call("POST", &start, || {
            self.auth(self.agent.post(&start)).send_empty()
        })?;
        let location = header(&response, "location");
        self.expect(response, &[202], "POST", &start)?;
        if location.is_empty() {
            return Err(self.auth_error("the registry gave no upload location"));
        }
        let location = if location.starts_with('/') {
            format!("{}://{}{location}", self.target.scheme, self.target.host)
        } else {
            location
        };
        // Credentials are for the registry's host, not wherever it points.
        let same_host = url_host(&location) == Some(self.target.host.as_str());
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={digest}");
        // Opened before the first attempt, so a missing entry is an I/O error, not a retry.
        std::fs::File::open(path).at(path, "read")?;
        let response = self.call("PUT", &put, || {
            let file = std::fs::File::open(path)?;
            let request = self.agent.put(&put);
            let request = if same_host {
                self.auth(request)
            } else {
                request
            };
            request
                .header("Content-Type", "application/octet-stream")
                .send(file)
        })?;
        self.expect(response, &[201, 204], "PUT", &put)?;
        Ok(true)
    }

    fn push_manifest(&self, blob: &Blob, reference: &str) -> Result<()> {
        let path = self.cache.entry_path(crate::cache::Kind::Blobs, blob.key());
        let bytes = std::fs::read(&path).at(&path, "read")?;
        self.put_manifest(&blob.media_type, &bytes, reference)
            .map(|_| ())
    }

    /// PUTs a manifest; true when the registry answered with `OCI-Subject`
    /// (it indexes referrers itself).
    pub fn put_manifest(&self, media_type: &str, bytes: &[u8], reference: &str) -> Result<bool> {
        let url = self.target.url(&format!("manifests/{reference}"));
        let response = self.call("PUT", &url, || {
            self.auth(self.agent.put(&url))
                .header("Content-Type", media_type)
                .send(bytes)
        })?;
        let subject = response.headers().contains_key("oci-subject");
        self.expect(response, &[201, 204], "PUT", &url)?;
        Ok(subject)
    }
}
