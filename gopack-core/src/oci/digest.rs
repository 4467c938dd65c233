//! `sha256:<hex>` digests: the one place that formats and parses them.

use sha2::{Digest as _, Sha256};

/// The algorithm prefix of every digest gopack writes.
pub const PREFIX: &str = "sha256:";

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    from_hash(Sha256::digest(bytes).as_slice())
}

/// `sha256:<hex>` of a finished SHA-256 hash.
pub fn from_hash(hash: &[u8]) -> String {
    format!("{PREFIX}{}", hex::encode(hash))
}

/// The hex part of a `sha256:` digest (a blob's file name), or `None` when
/// `digest` is not exactly `sha256:` and 64 lower-case hex digits.
pub fn hex_part(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix(PREFIX)?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// The hex part of a digest gopack made itself (no check: its own digests
/// are always well formed).
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix(PREFIX).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = sha256(b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(hex_part(&d), Some(hex_of(&d)));
        assert_eq!(hex_part("sha256:../../etc/passwd"), None);
        assert_eq!(hex_part(&d.to_uppercase()), None);
        assert_eq!(hex_part("sha512:00"), None);
    }
}
