//! Authentication with a registry: `GET /v2/` tells what it wants. Nothing
//! (200); HTTP basic (`WWW-Authenticate: Basic`), answered with the
//! credentials; or a bearer token (`Bearer realm=...,service=...`), fetched
//! from the token service at `realm` for the target repository's scope.
//!
//! A token that the registry refuses later (401, it expired during a long
//! push) is renewed once per refused request, with the realm, service and
//! scope of the new challenge (`Pusher::call` in [`super::client`]).
//!
//! Credentials never go over plain HTTP to a host that is not this machine,
//! neither to the registry nor to a token service whose realm is `http://`,
//! unless `--insecure-registry-credentials` says so; the refusal comes before
//! anything is sent.

use super::client::{header, Pusher};
use super::Connection;
use crate::error::{Error, Result};
use crate::reference::{is_loopback, url_host};
use base64::Engine as _;

/// The most bytes of a token service's answer gopack reads.
pub const TOKEN_LIMIT: u64 = 1 << 20;

impl Pusher<'_> {
    /// Asks `/v2/` what the registry wants and gets the authorization it needs.
    pub(super) fn authorize(&self) -> Result<()> {
        let url = format!("{}://{}/v2/", self.target.scheme, self.target.host);
        let response = self.send("GET", &url, || self.agent.get(&url).call())?;
        if response.status() != 401 {
            return self.expect(response, &[200], "GET", &url);
        }
        let challenge = header(&response, "www-authenticate");
        self.finish(response);
        if challenge.to_ascii_lowercase().starts_with("basic") {
            let Some(credentials) = &self.credentials else {
                return Err(self.auth_error("the registry asks for a user name and password"));
            };
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", credentials.user, credentials.secret));
            self.set_authorization(format!("Basic {token}"));
            return Ok(());
        }
        let token = self.token(&challenge, None)?;
        self.set_authorization(format!("Bearer {token}"));
        Ok(())
    }

    /// Replaces a refused bearer token with a new one, as `challenge` (the 401's
    /// `WWW-Authenticate`) says.
    pub(super) fn renew(&self, challenge: &str) -> Result<()> {
        if !challenge.to_ascii_lowercase().starts_with("bearer") {
            return Err(self.auth_error(&format!(
                "the registry refused the token and asks for `{challenge}` instead"
            )));
        }
        let scope = parse_challenge(challenge)
            .into_iter()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v);
        let token = self.token(challenge, scope)?;
        self.set_authorization(format!("Bearer {token}"));
        Ok(())
    }

    fn set_authorization(&self, value: String) {
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// A token from the service the bearer `challenge` names; `scope` when the
    /// challenge gives one, else the target repository's.
    fn token(&self, challenge: &str, scope: Option<String>) -> Result<String> {
        let params = parse_challenge(challenge);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                self.auth_error(&format!("unknown authentication challenge `{challenge}`"))
            })?;
        let Some(realm_host) = url_host(&realm) else {
            return Err(self.auth_error(&format!(
                "the token service `{realm}` is not an http:// or https:// address"
            )));
        };
        if self.credentials.is_some() && realm.starts_with("http://") && !is_loopback(realm_host) {
            check_plain_http_credentials(realm_host, &self.connection)?;
        }
        let scope = scope
            .unwrap_or_else(|| format!("repository:{}:{}", self.target.repository, self.actions));
        let service = params
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.clone());
        let basic = self.credentials.as_ref().map(|c| {
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.secret))
        });
        let response = self.send("GET", &realm, || {
            let mut request = self.agent.get(&realm).query("scope", &scope);
            if let Some(service) = &service {
                request = request.query("service", service);
            }
            if let Some(basic) = &basic {
                request = request.header("Authorization", format!("Basic {basic}"));
            }
            request.call()
        })?;
        if response.status() != 200 {
            let status = response.status();
            self.finish(response);
            return Err(self.auth_error(&format!("the token service at {realm} answered {status}")));
        }
        let bytes = self.read_limited(response, TOKEN_LIMIT, "GET", &realm, "the token")?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            .ok_or_else(|| self.auth_error("the token service sent no usable token"))
    }
}

/// `Bearer realm="https://x/token",service="x"` → `[(realm, ...), (service, ...)]`.
pub fn parse_challenge(challenge: &str) -> Vec<(String, String)> {
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

/// Refuses credentials for plain-HTTP `host` unless the user said so explicitly.
pub(super) fn check_plain_http_credentials(host: &str, connection: &Connection) -> Result<()> {
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
    use super::super::client::tests::{cache, read_request};
    use super::super::{Credentials, Target};
    use super::*;
    use std::io::{BufReader, Write};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

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

    fn creds() -> Option<Credentials> {
        Some(Credentials {
            user: "ci".into(),
            secret: "s3cret".into(),
        })
    }

    #[test]
    fn credentials_never_go_over_plain_http_to_another_host_unasked() {
        let (_dir, cache) = cache();
        let target = Target::new("localhost.example:5000", "api", true).unwrap();
        assert_eq!(target.scheme, "http");
        let quick = Connection {
            timeout: Duration::from_secs(2),
            ..Connection::default()
        };
        let err = Pusher::with_credentials(
            target.clone(),
            quick.clone(),
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

    /// A registry with a token service on one port. Tokens are `t1`, `t2`, ...
    /// in the order they are asked for; a token works for `uses` requests, then
    /// the registry answers 401 with a challenge whose scope is `scope`.
    /// Returns the address and the log of the token requests (their query).
    fn expiring_registry(uses: usize, scope: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let realm = format!("http://{address}/token");
        std::thread::spawn(move || {
            let used = Arc::new(Mutex::new(std::collections::HashMap::<String, usize>::new()));
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, used, realm) = (log.clone(), used.clone(), realm.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    while let Some((line, headers)) = read_request(&mut reader) {
                        let target = line.split_whitespace().nth(1).unwrap_or_default();
                        let auth = headers
                            .iter()
                            .find(|(n, _)| n == "authorization")
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default();
                        let challenge =
                            format!("Bearer realm=\"{realm}\",service=\"test\",scope=\"{scope}\"");
                        let (status, extra, body) =
                            if let Some(query) = target.strip_prefix("/token?") {
                                let mut log = log.lock().unwrap();
                                log.push(format!("{query} {auth}"));
                                let token = format!("t{}", log.len());
                                (
                                    "200 OK",
                                    String::new(),
                                    format!("{{\"token\":\"{token}\"}}"),
                                )
                            } else {
                                let token = auth.strip_prefix("Bearer ").unwrap_or_default();
                                let mut used = used.lock().unwrap();
                                let count = used.entry(token.to_string()).or_default();
                                *count += 1;
                                if token.is_empty() || *count > uses {
                                    (
                                        "401 Unauthorized",
                                        format!("www-authenticate: {challenge}\r\n"),
                                        "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}".to_string(),
                                    )
                                } else {
                                    ("200 OK", String::new(), "{}".to_string())
                                }
                            };
                        let answer = format!(
                            "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (address, asked)
    }

    #[test]
    fn an_expired_token_is_renewed_once_with_the_new_challenge() {
        let (_dir, cache) = cache();
        // Every token works for two requests.
        let (address, asked) = expiring_registry(2, "repository:api:pull");
        let target = Target::new(&address, "api", false).unwrap();
        let recorder = crate::report::Recorder::default();
        let client =
            Pusher::with_credentials(target, Connection::default(), creds(), &cache, &recorder)
                .unwrap();
        for _ in 0..3 {
            assert_eq!(
                client.manifest("latest", "*/*", 1024).unwrap().as_deref(),
                Some(&b"{}"[..])
            );
        }
        let asked = asked.lock().unwrap().clone();
        // The first token for the push scope, then renewals with the challenge's scope,
        // each with the credentials.
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(
            asked[0].contains("scope=repository%3Aapi%3Apull%2Cpush"),
            "{asked:?}"
        );
        assert!(
            asked[1].contains("scope=repository%3Aapi%3Apull&") && asked[1].contains("Basic "),
            "{asked:?}"
        );
        assert!(recorder.events().iter().any(
            |e| matches!(e, crate::report::Event::Note { message } if message.contains("refused the token"))
        ));
    }

    #[test]
    fn a_new_token_that_is_refused_too_is_an_error_not_a_loop() {
        let (_dir, cache) = cache();
        // No token is ever accepted.
        let (address, asked) = expiring_registry(0, "repository:api:pull");
        let target = Target::new(&address, "api", false).unwrap();
        let client = Pusher::with_credentials(
            target,
            Connection::default(),
            None,
            &cache,
            &crate::report::Silent,
        )
        .unwrap();
        let err = client.manifest("x", "*/*", 1024).unwrap_err().to_string();
        assert!(err.contains("HTTP 401"), "{err}");
        // The first token, and one renewal.
        assert_eq!(asked.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_plain_http_realm_on_another_host_gets_no_credentials() {
        let (_dir, cache) = cache();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            read_request(&mut reader).unwrap();
            let answer = "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"http://auth.example.invalid/token\",service=\"x\"\r\ncontent-length: 0\r\n\r\n";
            reader.get_mut().write_all(answer.as_bytes()).unwrap();
        });
        let target = Target::new(&address, "api", false).unwrap();
        let text = Pusher::with_credentials(
            target,
            Connection::default(),
            creds(),
            &cache,
            &crate::report::Silent,
        )
        .err()
        .expect("refused")
        .to_string();
        server.join().unwrap();
        assert!(
            text.contains("auth.example.invalid") && text.contains("nothing was sent"),
            "{text}"
        );
    }
}
