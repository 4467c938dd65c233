//! Daemonless push to an OCI distribution registry: blobs (skipped when the
//! registry has them), then each platform's manifest by digest, then the
//! image (index or manifest) under every tag. No docker engine, no skopeo.
//!
//! Authentication: anonymous, HTTP basic, or bearer tokens from the
//! registry's token service, with credentials from `GOPACK_REGISTRY_USERNAME`
//! and `GOPACK_REGISTRY_PASSWORD` or from `~/.docker/config.json`.

use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::image::{Blob, Image};
use crate::report::{Event, Reporter};
use base64::Engine as _;
use std::io::Read;

/// Where an image goes: `host[:port]` and the repository path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` or `http`.
    pub scheme: &'static str,
    /// `ghcr.io`, `127.0.0.1:5000`.
    pub host: String,
    /// `acme/api`.
    pub repository: String,
}

impl Target {
    /// `prefix` is the config's `registry` (`ghcr.io/acme`) and `name` the app's.
    /// Loopback registries speak plain HTTP, as do all with `insecure`.
    pub fn new(prefix: &str, name: &str, insecure: bool) -> Result<Target> {
        let (prefix, insecure) =
            match prefix.split_once("://") {
                Some(("http", rest)) => (rest, true),
                Some(("https", rest)) => (rest, insecure),
                Some((scheme, _)) => return Err(Error::Flag {
                    flag: "--registry".into(),
                    message: format!("`{prefix}`: registries speak http or https, not {scheme}"),
                    help:
                        "write the host and an optional path, e.g. ghcr.io/acme or 127.0.0.1:5000"
                            .into(),
                }),
                None => (prefix, insecure),
            };
        let prefix = prefix.trim_end_matches('/');
        let (host, path) = prefix.split_once('/').unwrap_or((prefix, ""));
        if host.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(Error::Flag {
                flag: "--registry".into(),
                message: format!("`{prefix}` does not start with a registry host"),
                help: "write the host and an optional path, e.g. ghcr.io/acme or 127.0.0.1:5000"
                    .into(),
            });
        }
        let loopback =
            host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
        let repository = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}/{name}")
        };
        Ok(Target {
            scheme: if insecure || loopback {
                "http"
            } else {
                "https"
            },
            host: host.to_string(),
            repository,
        })
    }

    /// `host/repository:tag`.
    pub fn reference(&self, tag: &str) -> String {
        format!("{}/{}:{tag}", self.host, self.repository)
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}://{}/v2/{}/{path}",
            self.scheme, self.host, self.repository
        )
    }
}

/// Pushes images to one target.
pub struct Pusher<'a> {
    agent: ureq::Agent,
    target: Target,
    authorization: Option<String>,
    cache: &'a Cache,
    reporter: &'a dyn Reporter,
}

impl<'a> Pusher<'a> {
    /// Connects to the registry and authenticates for pushing to the target.
    pub fn connect(target: Target, cache: &'a Cache, reporter: &'a dyn Reporter) -> Result<Self> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut pusher = Pusher {
            agent,
            target,
            authorization: None,
            cache,
            reporter,
        };
        pusher.authorize()?;
        Ok(pusher)
    }

    fn authorize(&mut self) -> Result<()> {
        let url = format!("{}://{}/v2/", self.target.scheme, self.target.host);
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| self.http_error("GET", &url, e))?;
        if response.status() != 401 {
            return self.expect(response, &[200], "GET", &url);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let credentials = credentials(&self.target.host);
        if challenge.to_ascii_lowercase().starts_with("basic") {
            let (user, password) = credentials
                .ok_or_else(|| self.auth_error("the registry asks for a user name and password"))?;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            self.authorization = Some(format!("Basic {token}"));
            return Ok(());
        }
        let params = parse_challenge(&challenge);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                self.auth_error(&format!("unknown authentication challenge `{challenge}`"))
            })?;
        let mut request = self.agent.get(&realm).query(
            "scope",
            format!("repository:{}:pull,push", self.target.repository),
        );
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            request = request.query("service", service);
        }
        if let Some((user, password)) = &credentials {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header("Authorization", format!("Basic {token}"));
        }
        let mut response = request
            .call()
            .map_err(|e| self.http_error("GET", &realm, e))?;
        if response.status() != 200 {
            return Err(self.auth_error(&format!(
                "the token service at {realm} answered {}",
                response.status()
            )));
        }
        let bytes = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| self.http_error("GET", &realm, e))?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or_else(|| self.auth_error("the token service sent no token"))?;
        self.authorization = Some(format!("Bearer {token}"));
        Ok(())
    }

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
    fn push_artifact(&self, artifact: &crate::image::artifact::Artifact) -> Result<()> {
        for blob in &artifact.blobs {
            self.push_blob(blob)?;
        }
        let manifest = &artifact.manifest;
        let path = self.cache.entry_path("blobs", manifest.key());
        let bytes = std::fs::read(&path).at(&path, "read")?;
        if self.put_manifest(&manifest.media_type, &bytes, &manifest.digest)? {
            return Ok(());
        }
        let tag = crate::image::artifact::fallback_tag(&artifact.subject);
        let url = self.target.url(&format!("manifests/{tag}"));
        let mut response = self
            .auth(self.agent.get(&url))
            .header("Accept", crate::image::documents::media_type::INDEX)
            .call()
            .map_err(|e| self.http_error("GET", &url, e))?;
        let existing = match response.status().as_u16() {
            404 => None,
            200 => Some(
                response
                    .body_mut()
                    .with_config()
                    .limit(4 << 20)
                    .read_to_vec()
                    .map_err(|e| self.http_error("GET", &url, e))?,
            ),
            _ => return self.expect(response, &[200, 404], "GET", &url),
        };
        let index = crate::image::artifact::merge_referrers(existing.as_deref(), artifact);
        if existing.as_deref() != Some(&index[..]) {
            self.put_manifest(crate::image::documents::media_type::INDEX, &index, &tag)?;
        }
        Ok(())
    }

    fn push_blob(&self, blob: &Blob) -> Result<()> {
        let url = self.target.url(&format!("blobs/{}", blob.digest));
        let response = self
            .auth(self.agent.head(&url))
            .call()
            .map_err(|e| self.http_error("HEAD", &url, e))?;
        if response.status() == 200 {
            return Ok(());
        }
        let start = self.target.url("blobs/uploads/");
        let response = self
            .auth(self.agent.post(&start))
            .send_empty()
            .map_err(|e| self.http_error("POST", &start, e))?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.expect(response, &[202], "POST", &start)?;
        let location =
            location.ok_or_else(|| self.auth_error("the registry gave no upload location"))?;
        let location = if location.starts_with('/') {
            format!("{}://{}{location}", self.target.scheme, self.target.host)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={}", blob.digest);
        let path = self.cache.entry_path("blobs", blob.key());
        let file = std::fs::File::open(&path).at(&path, "read")?;
        let response = self
            .auth(self.agent.put(&put))
            .header("Content-Type", "application/octet-stream")
            .send(file)
            .map_err(|e| self.http_error("PUT", &put, e))?;
        self.expect(response, &[201, 204], "PUT", &put)
    }

    fn push_manifest(&self, blob: &Blob, reference: &str) -> Result<()> {
        let path = self.cache.entry_path("blobs", blob.key());
        let bytes = std::fs::read(&path).at(&path, "read")?;
        self.put_manifest(&blob.media_type, &bytes, reference)
            .map(|_| ())
    }

    /// PUTs a manifest; true when the registry answered with `OCI-Subject`
    /// (it indexes referrers itself).
    fn put_manifest(&self, media_type: &str, bytes: &[u8], reference: &str) -> Result<bool> {
        let url = self.target.url(&format!("manifests/{reference}"));
        let response = self
            .auth(self.agent.put(&url))
            .header("Content-Type", media_type)
            .send(bytes)
            .map_err(|e| self.http_error("PUT", &url, e))?;
        let subject = response.headers().contains_key("oci-subject");
        self.expect(response, &[201, 204], "PUT", &url)?;
        Ok(subject)
    }

    fn auth<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        }
    }

    fn expect(
        &self,
        mut response: ureq::http::Response<ureq::Body>,
        ok: &[u16],
        method: &str,
        url: &str,
    ) -> Result<()> {
        let status = response.status().as_u16();
        if ok.contains(&status) {
            return Ok(());
        }
        let mut body = String::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(4096)
            .read_to_string(&mut body);
        Err(Error::Command {
            command: format!("{method} {url}"),
            status: format!("HTTP {status}"),
            output: body,
            help: match status {
                401 | 403 => {
                    "the registry refused the credentials: set GOPACK_REGISTRY_USERNAME and \
                              GOPACK_REGISTRY_PASSWORD, or `docker login` to the registry"
                        .into()
                }
                _ => "check the registry's address and that it accepts pushes".into(),
            },
        })
    }

    fn http_error(&self, method: &str, url: &str, err: ureq::Error) -> Error {
        Error::Command {
            command: format!("{method} {url}"),
            status: err.to_string(),
            output: String::new(),
            help: if self.target.scheme == "https" {
                format!(
                    "check that the registry {} is reachable; a registry without TLS needs --insecure-registry",
                    self.target.host
                )
            } else {
                format!(
                    "check that the registry {} is running and reachable",
                    self.target.host
                )
            },
        }
    }

    fn auth_error(&self, message: &str) -> Error {
        Error::Invalid {
            path: self.target.host.clone(),
            message: message.to_string(),
            help: "set GOPACK_REGISTRY_USERNAME and GOPACK_REGISTRY_PASSWORD, or `docker login` to the registry \
                   (credentials stored by a credential helper are not read)"
                .into(),
        }
    }
}

/// `Bearer realm="https://x/token",service="x"` → `[(realm, ...), (service, ...)]`.
fn parse_challenge(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.split_once(' ').map(|(_, r)| r).unwrap_or("");
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .take_while(|&c| c != '=')
            .collect::<String>()
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.push((key.to_ascii_lowercase(), value));
    }
    params
}

/// Credentials for `host`: the environment, else `~/.docker/config.json`.
fn credentials(host: &str) -> Option<(String, String)> {
    if let (Ok(user), Ok(password)) = (
        std::env::var("GOPACK_REGISTRY_USERNAME"),
        std::env::var("GOPACK_REGISTRY_PASSWORD"),
    ) {
        return Some((user, password));
    }
    let config = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?
        .join("config.json");
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(config).ok()?).ok()?;
    let auths = value["auths"].as_object()?;
    let entry = auths.iter().find(|(key, _)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        key == host || key.split('/').next() == Some(host)
    })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.1["auth"].as_str()?)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::new("ghcr.io/acme", "api", false).unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.repository.as_str()),
            ("https", "ghcr.io", "acme/api")
        );
        assert_eq!(t.reference("1.0"), "ghcr.io/acme/api:1.0");
        let t = Target::new("127.0.0.1:5000", "api", false).unwrap();
        assert_eq!((t.scheme, t.repository.as_str()), ("http", "api"));
        assert!(Target::new("acme", "api", false).is_err());
        let t = Target::new("http://registry.lan:5000/team/", "api", false).unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.repository.as_str()),
            ("http", "registry.lan:5000", "team/api")
        );
        assert_eq!(
            Target::new("https://ghcr.io/acme", "api", false)
                .unwrap()
                .scheme,
            "https"
        );
        assert!(Target::new("ftp://x.io", "api", false).is_err());
    }

    #[test]
    fn challenges() {
        let params = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a:pull""#,
        );
        assert_eq!(
            params[0],
            ("realm".into(), "https://auth.example.com/token".into())
        );
        assert_eq!(params[1], ("service".into(), "registry.example.com".into()));
        assert_eq!(params.len(), 3);
    }
}
