//! Daemonless push to an OCI distribution registry: blobs (skipped when the
//! registry has them), then each platform's manifest by digest, then the
//! image (index or manifest) under every tag. No docker engine, no skopeo.
//!
//! Authentication: anonymous, HTTP basic, or bearer tokens from the
//! registry's token service, with credentials from `GOPACK_REGISTRY_USERNAME`
//! and `GOPACK_REGISTRY_PASSWORD` or from the docker config ([`super::credentials`]).
//!
//! Trust: only loopback hosts (`localhost`, 127.0.0.0/8, ::1) speak plain HTTP
//! unasked, and credentials go over plain HTTP to any other host only with
//! `--insecure-registry-credentials`. Every connection has connect and read
//! timeouts; connection resets and 5xx answers are retried a few times with backoff.
//!
//! The pull side ([`Pusher::manifest`], [`Pusher::fetch_blob`]) serves the cache
//! registry ([`crate::remote_cache`]): bounded reads, nothing allocated from a
//! length the registry sends.

use super::credentials::{self, Credentials};
use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::image::{Blob, Image};
use crate::report::{Event, Reporter};
use base64::Engine as _;
use std::io::Read;
use std::time::Duration;

/// How the connection to a registry behaves, beyond its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// `--insecure-registry-credentials`: send credentials over plain HTTP to a
    /// host that is not loopback.
    pub insecure_credentials: bool,
    /// `--registry-timeout`: the longest wait to connect, and for each read and write.
    pub timeout: Duration,
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            insecure_credentials: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The default connect and read timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts per request when the connection is reset or the registry answers 5xx.
const ATTEMPTS: u32 = 4;

/// Whether `host[:port]` (or `[v6]:port`) names this machine: exactly `localhost`,
/// an address in 127.0.0.0/8, or ::1. `localhost.example:5000` does not.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inner, port)) if port.is_empty() || is_port(port) => inner,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => {
                if !is_port(port) {
                    return false;
                }
                name
            }
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .unwrap_or(text)
        .parse::<u16>()
        .is_ok()
}

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
        let loopback = is_loopback(host);
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

    /// Whether the host is this machine.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.host)
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
    connection: Connection,
    credentials: Option<Credentials>,
    authorization: Option<String>,
    cache: Cache,
    reporter: &'a dyn Reporter,
    /// The token scope's actions: `pull,push`, or `pull` for a read-only cache.
    actions: &'static str,
    /// Attempts per request ([`ATTEMPTS`] for pushes).
    attempts: u32,
}

/// How a [`Pusher`] is used: what it asks the token service for, and how often
/// it tries a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Whether it pushes (`pull,push`) or only pulls (`pull`).
    pub push: bool,
    /// Attempts per request when the connection is reset or the registry answers 5xx.
    pub attempts: u32,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            push: true,
            attempts: ATTEMPTS,
        }
    }
}

impl<'a> Pusher<'a> {
    /// Connects to the registry and authenticates for pushing to the target.
    /// Credentials meant for a plain-HTTP host that is not loopback are refused
    /// before anything is sent, unless `connection.insecure_credentials`.
    pub fn connect(
        target: Target,
        connection: Connection,
        cache: &'a Cache,
        reporter: &'a dyn Reporter,
    ) -> Result<Self> {
        let credentials = credentials::lookup(&target.host)?;
        Pusher::with_credentials(target, connection, credentials, cache, reporter)
    }

    /// [`Pusher::connect`] with the credentials already looked up.
    pub fn with_credentials(
        target: Target,
        connection: Connection,
        credentials: Option<Credentials>,
        cache: &'a Cache,
        reporter: &'a dyn Reporter,
    ) -> Result<Self> {
        Pusher::with_access(
            target,
            connection,
            credentials,
            Access::default(),
            cache,
            reporter,
        )
    }

    /// [`Pusher::with_credentials`] for the given [`Access`].
    pub fn with_access(
        target: Target,
        connection: Connection,
        credentials: Option<Credentials>,
        access: Access,
        cache: &Cache,
        reporter: &'a dyn Reporter,
    ) -> Result<Self> {
        if credentials.is_some() && target.scheme == "http" && !target.is_loopback() {
            check_plain_http_credentials(&target.host, &connection)?;
        }
        let timeout = Some(connection.timeout);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(timeout)
            .timeout_connect(timeout)
            .timeout_send_request(timeout)
            .timeout_recv_response(timeout)
            .timeout_per_read(timeout)
            .timeout_per_write(timeout)
            .build()
            .into();
        let mut pusher = Pusher {
            agent,
            target,
            connection,
            credentials,
            authorization: None,
            cache: cache.clone(),
            reporter,
            actions: if access.push { "pull,push" } else { "pull" },
            attempts: access.attempts.max(1),
        };
        pusher.authorize()?;
        Ok(pusher)
    }

    fn authorize(&mut self) -> Result<()> {
        let url = format!("{}://{}/v2/", self.target.scheme, self.target.host);
        let response = self.send("GET", &url, || self.agent.get(&url).call())?;
        if response.status() != 401 {
            return self.expect(response, &[200], "GET", &url);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let credentials = self
            .credentials
            .as_ref()
            .map(|c| (c.user.clone(), c.secret.clone()));
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
        if credentials.is_some() {
            if let Some(rest) = realm.strip_prefix("http://") {
                let host = rest.split(['/', '?']).next().unwrap_or_default();
                if !is_loopback(host) {
                    check_plain_http_credentials(host, &self.connection)?;
                }
            }
        }
        let scope = format!("repository:{}:{}", self.target.repository, self.actions);
        let service = params
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.clone());
        let mut response = self.send("GET", &realm, || {
            let mut request = self.agent.get(&realm).query("scope", &scope);
            if let Some(service) = &service {
                request = request.query("service", service);
            }
            if let Some((user, password)) = &credentials {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                request = request.header("Authorization", format!("Basic {token}"));
            }
            request.call()
        })?;
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
        let path = self
            .cache
            .entry_path(crate::cache::Kind::Blobs, manifest.key());
        let bytes = std::fs::read(&path).at(&path, "read")?;
        if self.put_manifest(&manifest.media_type, &bytes, &manifest.digest)? {
            return Ok(());
        }
        let tag = crate::image::artifact::fallback_tag(&artifact.subject);
        let url = self.target.url(&format!("manifests/{tag}"));
        let mut response = self.send("GET", &url, || {
            self.auth(self.agent.get(&url))
                .header("Accept", crate::image::documents::media_type::INDEX)
                .call()
        })?;
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
            let response = self.send("HEAD", &url, || self.auth(self.agent.head(&url)).call())?;
            if response.status() == 200 {
                return Ok(false);
            }
        }
        let start = self.target.url("blobs/uploads/");
        let response = self.send("POST", &start, || {
            self.auth(self.agent.post(&start)).send_empty()
        })?;
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
        let put = format!("{location}{separator}digest={digest}");
        // Opened before the first attempt, so a missing entry is an I/O error, not a retry.
        std::fs::File::open(path).at(path, "read")?;
        let response = self.send("PUT", &put, || {
            let file = std::fs::File::open(path)?;
            self.auth(self.agent.put(&put))
                .header("Content-Type", "application/octet-stream")
                .send(file)
        })?;
        self.expect(response, &[201, 204], "PUT", &put)?;
        Ok(true)
    }

    /// The manifest `reference` (a tag or digest), at most `limit` bytes; `None`
    /// when the registry has no such manifest.
    pub fn manifest(&self, reference: &str, accept: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let url = self.target.url(&format!("manifests/{reference}"));
        let mut response = self.send("GET", &url, || {
            self.auth(self.agent.get(&url))
                .header("Accept", accept)
                .call()
        })?;
        match response.status().as_u16() {
            404 => Ok(None),
            200 => {
                let mut bytes = Vec::new();
                response
                    .body_mut()
                    .as_reader()
                    .take(limit.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .map_err(|e| self.read_error("GET", &url, e))?;
                if bytes.len() as u64 > limit {
                    return Err(Error::Invalid {
                        path: url,
                        message: format!("the manifest is larger than {limit} bytes"),
                        help: "the cache registry holds something gopack did not write there"
                            .into(),
                    });
                }
                Ok(Some(bytes))
            }
            _ => self.expect(response, &[], "GET", &url).map(|()| None),
        }
    }

    /// Streams the blob `digest` into `out`, reading at most `limit + 1` bytes
    /// (the caller checks size and digest of what arrived); returns the bytes
    /// read, or `None` when the registry has no such blob.
    pub fn fetch_blob(
        &self,
        digest: &str,
        limit: u64,
        out: &mut dyn std::io::Write,
    ) -> Result<Option<u64>> {
        let url = self.target.url(&format!("blobs/{digest}"));
        let mut response = self.send("GET", &url, || self.auth(self.agent.get(&url)).call())?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            // `expect` with no accepted status always gives the error.
            _ => return self.expect(response, &[], "GET", &url).map(|()| None),
        }
        let mut reader = response
            .body_mut()
            .as_reader()
            .take(limit.saturating_add(1));
        std::io::copy(&mut reader, out)
            .map(Some)
            .map_err(|e| self.read_error("GET", &url, e))
    }

    /// The target this client talks to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn read_error(&self, method: &str, url: &str, err: std::io::Error) -> Error {
        Error::Command {
            command: format!("{method} {url}"),
            status: err.to_string(),
            output: String::new(),
            help: format!(
                "the registry {} stopped answering: check that it is up",
                self.target.host
            ),
        }
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
        let response = self.send("PUT", &url, || {
            self.auth(self.agent.put(&url))
                .header("Content-Type", media_type)
                .send(bytes)
        })?;
        let subject = response.headers().contains_key("oci-subject");
        self.expect(response, &[201, 204], "PUT", &url)?;
        Ok(subject)
    }

    /// Runs `request`, again after a backoff when the connection was reset or the
    /// registry answered 5xx, at most [`Access::attempts`] times; the last answer is returned.
    fn send(
        &self,
        method: &str,
        url: &str,
        request: impl Fn() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut attempt = 1;
        loop {
            let retry = match request() {
                Ok(response) if response.status().is_server_error() && attempt < self.attempts => {
                    format!("HTTP {}", response.status().as_u16())
                }
                Ok(response) => return Ok(response),
                Err(err) if attempt < self.attempts && is_transient(&err) => err.to_string(),
                Err(err) => return Err(self.http_error(method, url, err)),
            };
            self.reporter.report(Event::Note {
                message: format!(
                    "{method} {url}: {retry}; trying again ({attempt}/{})",
                    self.attempts
                ),
            });
            std::thread::sleep(Duration::from_millis(250 << attempt));
            attempt += 1;
        }
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
        let timed_out = matches!(err, ureq::Error::Timeout(_))
            || matches!(&err, ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut);
        Error::Command {
            command: format!("{method} {url}"),
            status: err.to_string(),
            output: String::new(),
            help: if timed_out {
                format!(
                    "the registry {} did not answer within {} s: check that it is up, or raise --registry-timeout",
                    self.target.host,
                    self.connection.timeout.as_secs_f64()
                )
            } else if self.target.scheme == "https" {
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
            help: "set GOPACK_REGISTRY_USERNAME and GOPACK_REGISTRY_PASSWORD, or `docker login` to the registry"
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

/// Connection resets and the like: worth another attempt.
fn is_transient(err: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match err {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Refuses credentials for plain-HTTP `host` unless the user said so explicitly.
fn check_plain_http_credentials(host: &str, connection: &Connection) -> Result<()> {
    if connection.insecure_credentials {
        return Ok(());
    }
    Err(Error::Flag {
        flag: "--insecure-registry".into(),
        message: format!(
            "credentials for {host} would go over plain HTTP to a host that is not this machine; nothing was sent"
        ),
        help: "give the registry TLS (drop --insecure-registry and `http://`), or, on a network you trust, \
               add --insecure-registry-credentials to send them anyway"
            .into(),
    })
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

    #[test]
    fn loopback_means_this_machine() {
        for host in [
            "localhost",
            "LOCALHOST:5000",
            "127.0.0.1",
            "127.8.9.10:5000",
            "[::1]",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "localhost.attacker.example:5000",
            "localhost.example",
            "127.0.0.1.nip.io",
            "127.example.com",
            "128.0.0.1",
            "[::2]:5000",
            "[::1]x",
            "localhost:notaport",
            "::1:5000x",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
        let t = Target::new("localhost.attacker.example:5000", "api", false).unwrap();
        assert_eq!(t.scheme, "https");
        assert_eq!(
            Target::new("localhost:5000", "api", false).unwrap().scheme,
            "http"
        );
    }

    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache =
            Cache::open(camino::Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
        (dir, cache)
    }

    #[test]
    fn credentials_never_go_over_plain_http_to_another_host_unasked() {
        let (_dir, cache) = cache();
        let creds = || {
            Some(Credentials {
                user: "ci".into(),
                secret: "s3cret".into(),
            })
        };
        let target = Target::new("localhost.example:5000", "api", true).unwrap();
        assert_eq!(target.scheme, "http");
        let quick = Connection {
            timeout: Duration::from_secs(2),
            ..Connection::default()
        };
        let err = Pusher::with_credentials(
            target.clone(),
            quick,
            creds(),
            &cache,
            &crate::report::Silent,
        )
        .err()
        .expect("refused");
        let text = err.to_string();
        assert!(
            text.contains("nothing was sent") && text.contains("--insecure-registry-credentials"),
            "{text}"
        );
        // With the explicit flag the check passes and the (unresolvable) host is tried.
        let allowed = Connection {
            insecure_credentials: true,
            ..quick
        };
        let text =
            Pusher::with_credentials(target, allowed, creds(), &cache, &crate::report::Silent)
                .err()
                .expect("no such host")
                .to_string();
        assert!(
            text.contains("GET http://localhost.example:5000/v2/"),
            "{text}"
        );
        assert!(!text.contains("nothing was sent"), "{text}");
    }

    #[test]
    fn a_registry_that_never_answers_times_out() {
        let (_dir, cache) = cache();
        // The kernel completes the handshake; nobody ever answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Target::new(&format!("127.0.0.1:{port}"), "api", false).unwrap();
        let connection = Connection {
            timeout: Duration::from_secs(1),
            ..Connection::default()
        };
        let text =
            Pusher::with_credentials(target, connection, None, &cache, &crate::report::Silent)
                .err()
                .expect("timed out")
                .to_string();
        assert!(text.contains("did not answer within 1 s"), "{text}");
        assert!(text.contains("--registry-timeout"), "{text}");
        drop(listener);
    }

    #[test]
    fn server_errors_are_retried_then_reported() {
        use std::io::Write;
        let (_dir, cache) = cache();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Two 503s, then 200: the push gets through on the third attempt.
        let server = std::thread::spawn(move || {
            for answer in [
                "503 Service Unavailable",
                "503 Service Unavailable",
                "200 OK",
            ] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer);
                write!(
                    stream,
                    "HTTP/1.1 {answer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .unwrap();
            }
        });
        let target = Target::new(&format!("127.0.0.1:{port}"), "api", false).unwrap();
        let recorder = crate::report::Recorder::default();
        Pusher::with_credentials(target, Connection::default(), None, &cache, &recorder).unwrap();
        server.join().unwrap();
        let retries = recorder
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::Note { message } if message.contains("HTTP 503")))
            .count();
        assert_eq!(retries, 2);
    }
}
