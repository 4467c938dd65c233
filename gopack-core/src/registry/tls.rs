//! Which CAs a registry's certificate may chain to: the system's CA bundle
//! (the file `SSL_CERT_FILE` names, else the first of [`SYSTEM_BUNDLES`] that
//! exists), plus the certificates of `--registry-ca-file`
//! (`GOPACK_REGISTRY_CA_FILE`). On a machine with no system bundle, gopack's
//! bundled Mozilla roots (webpki-roots) stand in for it, unless a CA file is
//! given: then that file is trusted alone.
//!
//! Every file is read with a bound ([`PEM_LIMIT`]); a CA file or an
//! `SSL_CERT_FILE` that cannot be read or holds no certificate is an error
//! naming it, never a silent fallback.

use super::Connection;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;
use ureq::tls::{Certificate, PemItem, RootCerts};

/// Where Linux distributions (and macOS) keep the system's CA bundle, in the
/// order Go's crypto/x509 looks.
pub const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The largest CA bundle gopack reads.
pub const PEM_LIMIT: u64 = 16 << 20;

/// The roots for `connection`.
pub fn root_certs(connection: &Connection) -> Result<RootCerts> {
    let mut roots = system_roots()?;
    let Some(ca_file) = &connection.ca_file else {
        return Ok(match roots {
            Some(roots) => RootCerts::from(roots),
            None => RootCerts::WebPki,
        });
    };
    let extra = read_certificates(ca_file.as_std_path()).map_err(|message| Error::Flag {
        flag: "--registry-ca-file (GOPACK_REGISTRY_CA_FILE)".into(),
        message: format!("{ca_file}: {message}"),
        help: "name a PEM file with the certificate of the CA that signed the registry's \
               certificate (-----BEGIN CERTIFICATE-----)"
            .into(),
    })?;
    let mut all = roots.take().unwrap_or_default();
    all.extend(extra);
    Ok(RootCerts::from(all))
}

/// The system bundle's certificates; `None` when the machine has none.
fn system_roots() -> Result<Option<Vec<Certificate<'static>>>> {
    if let Some(file) = crate::environment::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        let path = Path::new(&file);
        return read_certificates(path)
            .map(Some)
            .map_err(|message| Error::Invalid {
                path: format!("SSL_CERT_FILE={}", path.display()),
                message,
                help: "point SSL_CERT_FILE at a PEM bundle of CA certificates, or unset it to use \
                       the system's bundle"
                    .into(),
            });
    }
    Ok(SYSTEM_BUNDLES
        .iter()
        .map(Path::new)
        .filter(|path| path.is_file())
        .find_map(|path| read_certificates(path).ok()))
}

/// The certificates in a PEM file; why not, when it cannot be read or holds none.
pub fn read_certificates(path: &Path) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PEM_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > PEM_LIMIT {
        return Err(format!("larger than {PEM_LIMIT} bytes"));
    }
    let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(&bytes)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(certificate)) => Some(certificate),
            _ => None,
        })
        .collect();
    if certificates.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        for path in [&empty, &key, &dir.path().join("absent.pem")] {
            let connection = Connection {
                ca_file: Some(camino::Utf8PathBuf::from_path_buf(path.clone()).unwrap()),
                ..Connection::default()
            };
            let Err(err) = root_certs(&connection) else {
                panic!("{} accepted", path.display());
            };
            let err = err.to_string();
            assert!(
                err.contains("--registry-ca-file") && err.contains(&*path.to_string_lossy()),
                "{err}"
            );
        }
        assert!(read_certificates(dir.path()).is_err());
    }

    #[test]
    fn the_system_bundle_is_read() {
        let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) else {
            panic!("no system CA bundle: install ca-certificates (.ci/setup does)");
        };
        assert!(read_certificates(bundle).unwrap().len() > 10);
    }
}
