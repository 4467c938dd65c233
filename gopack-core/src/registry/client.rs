//! The connection to one registry: an HTTP agent with timeouts and the TLS
//! roots of [`super::tls`], requests retried after resets and 5xx answers,
//! and every body read with a bound.
//!
//! Bodies: what gopack keeps is read up to a limit it chose (a manifest, a
//! token, a referrers index), never a length the registry sends; an answer
//! gopack does not want (an error, a retried 5xx, a 401 before a token renewal)
//! is drained up to [`DRAIN_LIMIT`] so its connection can carry the next
//! request, and when it is longer its connection is dropped, never reused with
//! bytes left in it.
//!
//! The pull side ([`Pusher::manifest`], [`Pusher::fetch_blob`]) serves the cache
//! registry ([`crate::remote_cache`]).

use super::credentials::{self, Credentials};
use super::{Connection, Target};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::report::{Event, Reporter};
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

/// Attempts per request when the connection is reset or the registry answers 5xx.
pub const ATTEMPTS: u32 = 4;

/// The most bytes of an unwanted answer read so its connection can be reused.
pub const DRAIN_LIMIT: u64 = 64 << 10;

/// The most bytes of an error answer shown in the error.
const SHOWN_LIMIT: u64 = 4096;

/// A response from the registry.
pub(crate) type Response = ureq::http::Response<ureq::Body>;

/// A client for one target: pushes images, reads manifests and blobs.
pub struct Pusher<'a> {
    pub(super) agent: ureq::Agent,
    pub(super) target: Target,
    pub(super) connection: Connection,
    pub(super) credentials: Option<Credentials>,
    /// The `Authorization` header value: `Basic ...` or `Bearer ...`; renewed
    /// (bearer) while requests run, hence the lock.
    pub(super) authorization: Mutex<Option<String>>,
    pub(super) cache: Cache,
    pub(super) reporter: &'a dyn Reporter,
    /// The token scope's actions: `pull,push`, or `pull` for a read-only cache.
    pub(super) actions: &'static str,
    /// Attempts per request ([`ATTEMPTS`] for pushes).
    pub(super) attempts: u32,
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
            super::auth::check_plain_http_credentials(&target.host, &connection)?;
        }
        let timeout = Some(connection.timeout);
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(super::tls::root_certs(&connection)?)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_resolve(timeout)
            .timeout_connect(timeout)
            .timeout_send_request(timeout)
            .timeout_recv_response(timeout)
            .timeout_per_read(timeout)
            .timeout_per_write(timeout)
            .build()
            .into();
        let pusher = Pusher {
            agent,
            target,
            connection,
            credentials,
            authorization: Mutex::new(None),
            cache: cache.clone(),
            reporter,
            actions: if access.push { "pull,push" } else { "pull" },
            attempts: access.attempts.max(1),
        };
        pusher.authorize()?;
        Ok(pusher)
    }

    /// The target this client talks to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The manifest `reference` (a tag or digest), at most `limit` bytes; `None`
    /// when the registry has no such manifest.
    pub fn manifest(&self, reference: &str, accept: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let url = self.target.url(&format!("manifests/{reference}"));
        let response = self.call("GET", &url, || {
            self.auth(self.agent.get(&url))
                .header("Accept", accept)
                .call()
        })?;
        match response.status().as_u16() {
            404 => {
                self.finish(response);
                Ok(None)
            }
            200 => self
                .read_limited(response, limit, "GET", &url, "the manifest")
                .map(Some),
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
        let mut response = self.call("GET", &url, || self.auth(self.agent.get(&url)).call())?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                self.finish(response);
                return Ok(None);
            }
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

    /// Runs a request to the registry with [`Pusher::send`]; when a bearer token
    /// is refused (401, the token expired), asks the token service for a new one
    /// as the new challenge says and runs the request once more.
    pub(super) fn call(
        &self,
        method: &str,
        url: &str,
        request: impl Fn() -> std::result::Result<Response, ureq::Error>,
    ) -> Result<Response> {
        let response = self.send(method, url, &request)?;
        if response.status() != 401 || !self.has_bearer() {
            return Ok(response);
        }
        let challenge = header(&response, "www-authenticate");
        self.finish(response);
        self.reporter.report(Event::Note {
            message: format!(
                "{method} {url}: the registry refused the token; asking {} for a new one",
                self.target.host
            ),
        });
        self.renew(&challenge)?;
        self.send(method, url, &request)
    }

    /// Runs `request`, again after a backoff when the connection was reset or the
    /// registry answered 5xx, at most [`Access::attempts`] times; the last answer is returned.
    pub(super) fn send(
        &self,
        method: &str,
        url: &str,
        request: impl Fn() -> std::result::Result<Response, ureq::Error>,
    ) -> Result<Response> {
        let mut attempt = 1;
        loop {
            let retry = match request() {
                Ok(response) if response.status().is_server_error() && attempt < self.attempts => {
                    let status = response.status().as_u16();
                    self.finish(response);
                    format!("HTTP {status}")
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

    /// Adds the `Authorization` header, if the registry asked for one.
    pub(super) fn auth<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &*self.authorization.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        }
    }

    fn has_bearer(&self) -> bool {
        self.authorization
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))
    }

    /// Ends an answer gopack does not read: drains at most [`DRAIN_LIMIT`] bytes
    /// so the connection can be reused; a longer body drops the connection
    /// (the client reuses a connection only once its body was read to the end).
    pub(super) fn finish(&self, mut response: Response) {
        let mut reader = response.body_mut().as_reader().take(DRAIN_LIMIT);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    }

    /// The whole body, at most `limit` bytes; more is an error naming the limit.
    pub(super) fn read_limited(
        &self,
        mut response: Response,
        limit: u64,
        method: &str,
        url: &str,
        what: &str,
    ) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.read_error(method, url, e))?;
        if bytes.len() as u64 > limit {
            return Err(Error::Invalid {
                path: url.to_string(),
                message: format!("{what} is larger than {limit} bytes, the most gopack reads"),
                help: format!(
                    "the registry {} sent something gopack did not ask for: check its address",
                    self.target.host
                ),
            });
        }
        Ok(bytes)
    }

    /// `Ok` when the status is one of `ok` (the body drained); else the error,
    /// with the start of the registry's answer.
    pub(super) fn expect(
        &self,
        mut response: Response,
        ok: &[u16],
        method: &str,
        url: &str,
    ) -> Result<()> {
        let status = response.status().as_u16();
        if ok.contains(&status) {
            self.finish(response);
            return Ok(());
        }
        let mut shown = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(SHOWN_LIMIT)
            .read_to_end(&mut shown);
        self.finish(response);
        Err(Error::Command {
            command: format!("{method} {url}"),
            status: format!("HTTP {status}"),
            output: String::from_utf8_lossy(&shown).into_owned(),
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

    pub(super) fn read_error(&self, method: &str, url: &str, err: std::io::Error) -> Error {
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

    pub(super) fn http_error(&self, method: &str, url: &str, err: ureq::Error) -> Error {
        let timed_out = matches!(err, ureq::Error::Timeout(_))
            || matches!(&err, ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut);
        let text = err.to_string();
        let untrusted = text.contains("certificate") || text.contains("UnknownIssuer");
        Error::Command {
            command: format!("{method} {url}"),
            status: text,
            output: String::new(),
            help: if timed_out {
                format!(
                    "the registry {} did not answer within {} s: check that it is up, or raise --registry-timeout",
                    self.target.host,
                    self.connection.timeout.as_secs_f64()
                )
            } else if untrusted {
                format!(
                    "the registry {} shows a certificate no trusted CA signed: give its CA's PEM \
                     file with --registry-ca-file (or GOPACK_REGISTRY_CA_FILE), or add it to the \
                     system's CA bundle (SSL_CERT_FILE names another bundle)",
                    self.target.host
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

    pub(super) fn auth_error(&self, message: &str) -> Error {
        Error::Invalid {
            path: self.target.host.clone(),
            message: message.to_string(),
            help: "set GOPACK_REGISTRY_USERNAME and GOPACK_REGISTRY_PASSWORD, or `docker login` to the registry"
                .into(),
        }
    }
}

/// A header's value as text (empty when absent or not text).
pub(super) fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    pub(in crate::registry) fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache =
            Cache::open(camino::Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
        (dir, cache)
    }

    /// One request read from a connection: its request line and headers
    /// (names lower case); `None` when the client closed the connection.
    pub(in crate::registry) fn read_request(
        reader: &mut BufReader<std::net::TcpStream>,
    ) -> Option<(String, Vec<(String, String)>)> {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        Some((line.trim_end().to_string(), headers))
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

    /// A keep-alive server: `/v2/` answers 200; each `GET /v2/api/manifests/<n>`
    /// answers 404 with an error body of `n` bytes (`x`), and `.../ok` answers
    /// `{}`. Returns the address and the number of connections accepted.
    fn keep_alive_registry() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    while let Some((line, _)) = read_request(&mut reader) {
                        let path = line.split_whitespace().nth(1).unwrap_or_default();
                        let (status, body) = match path.rsplit('/').next().unwrap_or_default() {
                            "" => ("200 OK", b"{}".to_vec()),
                            "ok" => ("200 OK", b"{}".to_vec()),
                            n => ("404 Not Found", vec![b'x'; n.parse().unwrap_or(0)]),
                        };
                        let stream = reader.get_mut();
                        let head = format!(
                            "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        if stream.write_all(head.as_bytes()).is_err()
                            || stream.write_all(&body).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        (address, connections)
    }

    #[test]
    fn error_bodies_are_drained_or_their_connection_dropped() {
        use std::sync::atomic::Ordering;
        let (_dir, cache) = cache();
        let (address, connections) = keep_alive_registry();
        let target = Target::new(&address, "api", false).unwrap();
        let client = Pusher::with_credentials(
            target,
            Connection::default(),
            None,
            &cache,
            &crate::report::Silent,
        )
        .unwrap();
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        // A short error body is drained: the next request reuses the connection
        // and reads its own answer, not the rest of the last one.
        assert_eq!(client.manifest("1000", "*/*", 1024).unwrap(), None);
        assert_eq!(
            client.manifest("ok", "*/*", 1024).unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        // A body longer than the drain limit drops its connection.
        let long = (DRAIN_LIMIT * 4).to_string();
        assert_eq!(client.manifest(&long, "*/*", 1024).unwrap(), None);
        assert_eq!(
            client.manifest("ok", "*/*", 1024).unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        // A manifest over the caller's limit is an error naming the limit.
        let (address, _) = keep_alive_registry();
        let target = Target::new(&address, "api", false).unwrap();
        let client = Pusher::with_credentials(
            target,
            Connection::default(),
            None,
            &cache,
            &crate::report::Silent,
        )
        .unwrap();
        let err = client.manifest("ok", "*/*", 1).unwrap_err().to_string();
        assert!(err.contains("larger than 1 bytes"), "{err}");
    }
}
