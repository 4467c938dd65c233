//! The CA bundle check: present when the app needs it, and every PEM block a
//! certificate.

use super::super::elf;
use super::super::layers::{FileBytes, Kind, Node, Tree};
use super::{Check, CheckId, Expectations, CA_BUNDLE};
use base64::Engine as _;

/// Counts PEM `CERTIFICATE` blocks whose body decodes to DER; returns (good, bad).
pub(super) fn count_certificates(text: &str) -> (usize, usize) {
    let (mut good, mut bad) = (0, 0);
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b) = body.take() {
                match base64::engine::general_purpose::STANDARD.decode(&b) {
                    Ok(der) if der_sequence_ok(&der) => good += 1,
                    _ => bad += 1,
                }
            }
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    (good, bad)
}

/// A DER SEQUENCE whose length covers exactly the bytes given.
pub(super) fn der_sequence_ok(der: &[u8]) -> bool {
    if der.len() < 2 || der[0] != 0x30 {
        return false;
    }
    let (length, header) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => match der.get(2) {
            Some(&n) => (usize::from(n), 3),
            None => return false,
        },
        0x82 => match (der.get(2), der.get(3)) {
            (Some(&a), Some(&b)) => ((usize::from(a) << 8) | usize::from(b), 4),
            _ => return false,
        },
        0x83 => match (der.get(2), der.get(3), der.get(4)) {
            (Some(&a), Some(&b), Some(&c)) => (
                (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c),
                5,
            ),
            _ => return false,
        },
        _ => return false,
    };
    header + length == der.len()
}

pub(super) fn certs_check(
    tree: &Tree,
    binary: Option<&[u8]>,
    expect: &Expectations,
    content: &dyn Fn(&Node) -> Result<FileBytes, String>,
) -> Check {
    let uses_x509 = binary.is_some_and(|b| elf::contains(b, b"crypto/x509."));
    let why = match (expect.certs, uses_x509) {
        (Some(true), _) => Some("the app's config asks for certs"),
        (_, true) => Some("the binary uses crypto/x509"),
        _ => None,
    };
    let bundle = tree
        .resolve(CA_BUNDLE)
        .filter(|(_, n)| n.kind == Kind::File)
        .map(|(_, n)| content(n));
    match (bundle, why) {
        (None, None) => Check::skip(
            CheckId::CertsBundle,
            "no CA bundle, and none needed: the binary does not use crypto/x509",
        ),
        (None, Some(_)) if expect.certs == Some(false) => Check::warn(
            CheckId::CertsBundle,
            "no CA bundle, as configured (certs = false), though the binary uses crypto/x509: outgoing TLS connections will fail; fine for a server that makes none",
        )
        .remedy("set certs = true if the app calls TLS services"),
        (None, Some(why)) => Check::fail(
            CheckId::CertsBundle,
            format!("no CA bundle at {CA_BUNDLE}, but {why}: TLS connections will fail with `x509: certificate signed by unknown authority`"),
        )
        .remedy(format!("copy a CA bundle to {CA_BUNDLE} (gopack: certs = true; Dockerfile: COPY --from=builder {CA_BUNDLE} {CA_BUNDLE})")),
        (Some(Err(e)), _) => Check::fail(CheckId::CertsBundle, format!("{CA_BUNDLE} cannot be read: {e}")),
        (Some(Ok(bytes)), why) => {
            let (good, bad) = count_certificates(&String::from_utf8_lossy(&bytes));
            let reason = why.map(|w| format!(" ({w})")).unwrap_or_default();
            if good == 0 {
                Check::fail(CheckId::CertsBundle, format!("{CA_BUNDLE} holds no certificate{reason}"))
                    .remedy("copy a real CA bundle (update-ca-certificates writes one)")
            } else if bad > 0 {
                Check::warn(CheckId::CertsBundle, format!("{CA_BUNDLE}: {good} certificates and {bad} PEM blocks that do not decode{reason}"))
                    .remedy("regenerate the bundle with update-ca-certificates")
            } else {
                Check::pass(CheckId::CertsBundle, format!("{CA_BUNDLE}: {good} certificates{reason}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_counted() {
        let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt");
        if let Ok(bundle) = bundle {
            let (good, bad) = count_certificates(&bundle);
            assert!(good > 50, "{good}");
            assert_eq!(bad, 0);
        }
        let (good, bad) = count_certificates(
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        );
        assert_eq!((good, bad), (1, 1));
    }
}
