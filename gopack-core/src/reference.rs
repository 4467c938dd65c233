//! Registry references as users write them: a prefix `[http://|https://]host[:port][/path]`
//! (the config's `registry` and `cache-registry`, `--registry`,
//! `--cache-registry`), and whether a host is this machine.
//!
//! A leaf: it parses text and imports nothing of gopack.
//! The registry client ([`crate::registry`]) turns a parsed prefix into a
//! target; the config and the cache registry check values with it.

/// The help line of a refused `registry` / `--registry` prefix.
pub const PREFIX_HELP: &str =
    "write the host and an optional path, e.g. ghcr.io/acme or 127.0.0.1:5000";

/// The help line of a refused cache registry reference.
pub const REFERENCE_HELP: &str = "write a registry host and an optional repository path, e.g. \
    \"ghcr.io/acme/gopack-cache\" or \"127.0.0.1:5000/cache\" (lower case, no tag)";

/// The scheme a prefix asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// No scheme written: HTTPS, except for loopback hosts.
    Default,
    /// `http://`: plain HTTP.
    Http,
    /// `https://`: TLS, also for a loopback host.
    Https,
}

/// A parsed registry prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    /// The scheme written, if any.
    pub scheme: Scheme,
    /// `ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`.
    pub host: String,
    /// The repository path under the host, without slashes around it (may be empty).
    pub path: String,
}

/// Parses `[scheme://]host[:port][/path]`; the reason when it is not a prefix.
pub fn parse_prefix(prefix: &str) -> std::result::Result<Prefix, String> {
    let (scheme, rest) = match prefix.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((scheme, _)) => {
            return Err(format!(
                "`{prefix}`: registries speak http or https, not {scheme}"
            ))
        }
        None => (Scheme::Default, prefix),
    };
    let rest = rest.trim_end_matches('/');
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(format!("`{rest}` does not start with a registry host"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{rest}`: the host holds a space or control character"
        ));
    }
    Ok(Prefix {
        scheme,
        host: host.to_string(),
        path: path.to_string(),
    })
}

/// Checks a `cache-registry` value; the reason when it is unusable.
pub fn check_reference(reference: &str) -> std::result::Result<(), String> {
    if reference.trim().is_empty() {
        return Err("the value is empty".into());
    }
    let prefix = parse_prefix(reference)?;
    let path_ok = prefix.path.is_empty()
        || prefix.path.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        });
    if !path_ok || reference.contains('@') {
        return Err(format!(
            "`{reference}` is not a registry repository prefix (repository paths are lower-case \
             letters, digits, `.`, `_`, `-` and `/`)"
        ));
    }
    Ok(())
}

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

/// The host of an absolute `http://` or `https://` URL (`host[:port]`), without
/// user info; `None` for anything else.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = parse_prefix("ghcr.io/acme/").unwrap();
        assert_eq!(
            (p.scheme, p.host.as_str(), p.path.as_str()),
            (Scheme::Default, "ghcr.io", "acme")
        );
        assert_eq!(
            parse_prefix("https://127.0.0.1:5000").unwrap().scheme,
            Scheme::Https
        );
        assert_eq!(
            parse_prefix("http://registry.lan:5000/team")
                .unwrap()
                .scheme,
            Scheme::Http
        );
        for bad in ["acme", "", "ftp://x.io", "/x", "a b.io/x"] {
            assert!(parse_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_references_are_checked() {
        for good in [
            "ghcr.io/acme/gopack-cache",
            "127.0.0.1:5000",
            "127.0.0.1:5000/ci/cache",
            "http://registry.lan:5000/cache",
        ] {
            assert_eq!(check_reference(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "acme",
            "ghcr.io/Acme",
            "ghcr.io/acme//x",
            "ghcr.io/acme@sha256:00",
            "ftp://x.io/y",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
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
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("http://auth.example/token?x"),
            Some("auth.example")
        );
        assert_eq!(url_host("https://u:p@127.0.0.1:9/t"), Some("127.0.0.1:9"));
        assert_eq!(url_host("ftp://x"), None);
        assert_eq!(url_host("http:///x"), None);
    }
}
