//! The OCI distribution registry client: `pack --push` and the cache registry
//! ([`crate::remote_cache`]) talk to registries only through it. No docker
//! engine, no skopeo.
//!
//! - [`client`]: the connection (timeouts, TLS roots from [`tls`]), retries of
//!   resets and 5xx answers, bounded reads of every body a registry sends, and
//!   error bodies drained (bounded) or their connection dropped before reuse.
//! - [`auth`]: anonymous, HTTP basic, or bearer tokens from the registry's
//!   token service, renewed once when the registry answers 401 to a token.
//! - [`push`]: blobs (skipped when the registry has them), manifests by
//!   digest, the image under every tag, SBOM and provenance artifacts.
//! - [`credentials`]: `GOPACK_REGISTRY_USERNAME`/`GOPACK_REGISTRY_PASSWORD` or
//!   the docker config; credential helpers only from PATH.
//!
//! Trust: only loopback hosts (`localhost`, 127.0.0.0/8, ::1) speak plain HTTP
//! unasked (an explicit `https://` prefix speaks TLS to them too), and
//! credentials go over plain HTTP to any other host, or to a token service
//! given as `http://` on another host, only with `--insecure-registry-credentials`.
//! Every connection has connect and read timeouts.
//!
//! The registry sits above the image in the module order: it takes images and
//! blobs, never an engine's or a publisher's types.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod pull;
pub mod push;
pub mod tls;

pub use crate::reference::is_loopback;
pub use client::{Access, Pusher};
pub use credentials::Credentials;

use crate::error::{Error, Result};
use crate::reference::{self, Scheme};
use camino::Utf8PathBuf;
use std::time::Duration;

/// How the connection to a registry behaves, beyond its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `--insecure-registry-credentials`: send credentials over plain HTTP to a
    /// host that is not loopback.
    pub insecure_credentials: bool,
    /// `--registry-timeout`: the longest wait to connect, and for each read and write.
    pub timeout: Duration,
    /// `--registry-ca-file` (`GOPACK_REGISTRY_CA_FILE`): PEM certificates trusted
    /// for TLS besides the system's roots.
    pub ca_file: Option<Utf8PathBuf>,
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            insecure_credentials: false,
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        }
    }
}

/// The default connect and read timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Loopback registries speak plain HTTP unless the prefix says `https://`;
    /// every registry does with `insecure` or an `http://` prefix.
    pub fn new(prefix: &str, name: &str, insecure: bool) -> Result<Target> {
        let parsed = reference::parse_prefix(prefix).map_err(|message| Error::Flag {
            flag: "--registry".into(),
            message,
            help: reference::PREFIX_HELP.into(),
        })?;
        let loopback = is_loopback(&parsed.host);
        let plain = match parsed.scheme {
            Scheme::Http => true,
            Scheme::Https => insecure,
            Scheme::Default => insecure || loopback,
        };
        let repository = if parsed.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", parsed.path)
        };
        Ok(Target {
            scheme: if plain { "http" } else { "https" },
            host: parsed.host,
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

    /// `scheme://host/v2/repository/path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!(
            "{}://{}/v2/{}/{path}",
            self.scheme, self.host, self.repository
        )
    }
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
        // An explicit https:// speaks TLS to a loopback registry too.
        assert_eq!(
            Target::new("https://127.0.0.1:5000", "api", false)
                .unwrap()
                .scheme,
            "https"
        );
        assert!(Target::new("ftp://x.io", "api", false).is_err());
        let t = Target::new("localhost.attacker.example:5000", "api", false).unwrap();
        assert_eq!(t.scheme, "https");
        assert_eq!(
            Target::new("localhost:5000", "api", false).unwrap().scheme,
            "http"
        );
    }
}
