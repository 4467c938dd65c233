//! Keys: ECDSA P-256 private keys as PEM (PKCS#8 `PRIVATE KEY` as `openssl
//! genpkey` writes it, SEC1 `EC PRIVATE KEY`, and cosign's own `ENCRYPTED
//! SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY`, opened with
//! `COSIGN_PASSWORD`), and public keys as PEM `PUBLIC KEY` (SPKI).
//!
//! cosign's encrypted format (go-securesystemslib's `encrypted` package) is a
//! PEM whose body is JSON: `{"kdf":{"name":"scrypt","params":{"N","r","p"},
//! "salt"},"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}`, the
//! byte strings in standard base64. The key is scrypt(password, salt, N, r,
//! p, 32 bytes); the plaintext, sealed with XSalsa20-Poly1305, is the PKCS#8
//! DER of the private key. The scrypt cost read from the file is bounded, so a
//! hostile key file cannot make gopack allocate without limit.

use base64::Engine as _;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde::Deserialize;

/// The largest key file read (a PEM key is well under 1 KiB).
pub const MAX_KEY_FILE: u64 = 64 << 10;
/// The largest scrypt cost accepted from an encrypted key: N = 2^20 (with r = 8,
/// 1 GiB of memory); cosign writes N = 2^15.
const MAX_LOG_N: u8 = 20;
const MAX_R: u32 = 32;
const MAX_P: u32 = 16;

/// Why a key was refused, and how to make one that is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// What is wrong with it.
    pub message: String,
    /// What to do instead.
    pub help: String,
}

fn refuse(message: impl Into<String>, help: impl Into<String>) -> KeyError {
    KeyError {
        message: message.into(),
        help: help.into(),
    }
}

const MAKE_KEY: &str = "make one with `openssl genpkey -algorithm EC -pkeyopt \
     ec_paramgen_curve:P-256 -out cosign.key` or `cosign generate-key-pair` (see docs/signing.md)";

/// The label and DER bytes of the first PEM block of `text`.
pub fn pem_block(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| refuse("it is not PEM (no -----BEGIN line)", MAKE_KEY))?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest
        .split_once("-----")
        .ok_or_else(|| refuse("its -----BEGIN line is not closed", MAKE_KEY))?;
    let end = format!("-----END {label}-----");
    let body = rest
        .find(&end)
        .map(|at| &rest[..at])
        .ok_or_else(|| refuse(format!("it has no `{end}` line"), MAKE_KEY))?;
    // PEM headers (`Proc-Type: ...`) come before a blank line; gopack reads none.
    if body.contains(':') {
        return Err(refuse(
            "the PEM block has headers (a key encrypted by openssl?)",
            "write the key unencrypted (`openssl pkey -in KEY -out plain.key`) and keep it in \
             a secret, or use cosign's encrypted format with COSIGN_PASSWORD",
        ));
    }
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| refuse(format!("its base64 does not decode: {e}"), MAKE_KEY))?;
    Ok((label.to_string(), der))
}

/// The signing key in `text` (a PEM file's content); `password` opens cosign's
/// encrypted keys (`COSIGN_PASSWORD`; an empty one is a password too).
pub fn private_key(text: &str, password: Option<&[u8]>) -> Result<SigningKey, KeyError> {
    let (label, der) = pem_block(text)?;
    let not_p256 = |e: String| {
        refuse(
            format!("it is not an ECDSA P-256 private key: {e}"),
            MAKE_KEY,
        )
    };
    match label.as_str() {
        "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der).map_err(|e| not_p256(e.to_string())),
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
            .map(SigningKey::from)
            .map_err(|e| not_p256(e.to_string())),
        "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
            let password = password.ok_or_else(|| {
                refuse(
                    "it is a cosign encrypted key and COSIGN_PASSWORD is not set",
                    "set COSIGN_PASSWORD to the key's password (gopack never prompts)",
                )
            })?;
            let plain = decrypt(&der, password)?;
            SigningKey::from_pkcs8_der(&plain).map_err(|e| not_p256(e.to_string()))
        }
        "ENCRYPTED PRIVATE KEY" => Err(refuse(
            "it is a password-protected PKCS#8 key, which gopack does not open",
            "decrypt it (`openssl pkey -in KEY -out plain.key`) into a secret, or use \
             cosign's encrypted format with COSIGN_PASSWORD",
        )),
        "PUBLIC KEY" => Err(refuse(
            "it is a public key; signing needs the private key",
            "pass the private key to sign, the public key to `verify --key`",
        )),
        other => Err(refuse(
            format!("a `{other}` PEM block is not a private key gopack reads"),
            MAKE_KEY,
        )),
    }
}

/// The public key in `text`: a PEM `PUBLIC KEY` (as `cosign generate-key-pair`
/// and `openssl pkey -pubout` write it).
pub fn public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let (label, der) = pem_block(text)?;
    let help = "pass the public key, e.g. cosign.pub or the output of \
                `openssl pkey -in cosign.key -pubout`";
    if label != "PUBLIC KEY" {
        return Err(refuse(
            format!("a `{label}` PEM block is not a public key"),
            help,
        ));
    }
    VerifyingKey::from_public_key_der(&der)
        .map_err(|e| refuse(format!("it is not an ECDSA P-256 public key: {e}"), help))
}

/// The JSON of cosign's encrypted key.
#[derive(Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct KdfParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn decrypt(json: &[u8], password: &[u8]) -> Result<Vec<u8>, KeyError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let help = "the key is damaged: write it again with `cosign generate-key-pair`";
    let encrypted: Encrypted = serde_json::from_slice(json)
        .map_err(|e| refuse(format!("its encrypted JSON does not parse: {e}"), help))?;
    if encrypted.kdf.name != "scrypt" || encrypted.cipher.name != "nacl/secretbox" {
        return Err(refuse(
            format!(
                "it is encrypted with {} and {}; gopack reads scrypt and nacl/secretbox",
                encrypted.kdf.name, encrypted.cipher.name
            ),
            help,
        ));
    }
    let b64 = |field: &str, text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| refuse(format!("its {field} is not base64: {e}"), help))
    };
    let salt = b64("salt", &encrypted.kdf.salt)?;
    let nonce = b64("nonce", &encrypted.cipher.nonce)?;
    let ciphertext = b64("ciphertext", &encrypted.ciphertext)?;
    let (n, r, p) = (
        encrypted.kdf.params.N,
        encrypted.kdf.params.r,
        encrypted.kdf.params.p,
    );
    if !n.is_power_of_two() || n < 2 || n.trailing_zeros() > u32::from(MAX_LOG_N) {
        return Err(refuse(
            format!("its scrypt N = {n} is not a power of two up to 2^{MAX_LOG_N}"),
            help,
        ));
    }
    if r == 0 || r > MAX_R || p == 0 || p > MAX_P {
        return Err(refuse(
            format!("its scrypt r = {r}, p = {p} are outside 1..={MAX_R} and 1..={MAX_P}"),
            help,
        ));
    }
    if nonce.len() != 24 {
        return Err(refuse(
            format!("its nonce has {} bytes, not 24", nonce.len()),
            help,
        ));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32)
        .map_err(|e| refuse(format!("its scrypt parameters are refused: {e}"), help))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, &salt, &params, &mut key)
        .map_err(|e| refuse(format!("scrypt failed: {e}"), help))?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| {
            refuse(
                "it does not open with COSIGN_PASSWORD",
                "set COSIGN_PASSWORD to the password the key was made with",
            )
        })
}

/// cosign's encrypted key for `key` (tests and tools; gopack itself only reads them).
#[cfg(test)]
pub(crate) fn encrypt_for_test(key: &SigningKey, password: &[u8], log_n: u8) -> String {
    use crypto_secretbox::aead::{Aead, KeyInit};
    use p256::pkcs8::EncodePrivateKey;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let salt = [7u8; 32];
    let nonce = [9u8; 24];
    let params = scrypt::Params::new(log_n, 8, 1, 32).unwrap();
    let mut secret = [0u8; 32];
    scrypt::scrypt(password, &salt, &params, &mut secret).unwrap();
    let der = p256::SecretKey::from(key).to_pkcs8_der().unwrap();
    let sealed = crypto_secretbox::XSalsa20Poly1305::new(&secret.into())
        .encrypt(&nonce.into(), der.as_bytes())
        .unwrap();
    let json = serde_json::json!({
        "kdf": {"name": "scrypt", "params": {"N": 1u64 << log_n, "r": 8, "p": 1}, "salt": b64(&salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(&nonce)},
        "ciphertext": b64(&sealed),
    });
    pem(
        "ENCRYPTED SIGSTORE PRIVATE KEY",
        json.to_string().as_bytes(),
    )
}

/// `bytes` as a PEM block with `label`, 64 characters a line.
pub fn pem(label: &str, bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The PEM `PUBLIC KEY` of `key`.
pub fn public_pem(key: &VerifyingKey) -> String {
    // SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } then the uncompressed point.
    const SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    let mut der = hex::decode(SPKI_PREFIX).expect("the prefix is hex");
    der.extend_from_slice(key.to_encoded_point(false).as_bytes());
    pem("PUBLIC KEY", &der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePrivateKey;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[0x11; 32]).unwrap()
    }

    #[test]
    fn reads_pkcs8_and_sec1_and_public_keys() {
        let key = key();
        let pkcs8 = pem(
            "PRIVATE KEY",
            p256::SecretKey::from(&key)
                .to_pkcs8_der()
                .unwrap()
                .as_bytes(),
        );
        assert_eq!(private_key(&pkcs8, None).unwrap(), key);
        let sec1 = p256::SecretKey::from(&key).to_sec1_der().unwrap();
        assert_eq!(
            private_key(&pem("EC PRIVATE KEY", &sec1), None).unwrap(),
            key
        );
        let public = public_pem(key.verifying_key());
        assert_eq!(&public_key(&public).unwrap(), key.verifying_key());
        assert!(private_key(&public, None)
            .unwrap_err()
            .message
            .contains("public key"));
        assert!(public_key(&pkcs8)
            .unwrap_err()
            .message
            .contains("not a public key"));
        assert!(private_key("hello", None)
            .unwrap_err()
            .message
            .contains("not PEM"));
    }

    #[test]
    fn opens_cosign_encrypted_keys_with_the_password_only() {
        let key = key();
        let encrypted = encrypt_for_test(&key, b"s3cret", 10);
        assert_eq!(private_key(&encrypted, Some(b"s3cret")).unwrap(), key);
        let wrong = private_key(&encrypted, Some(b"other")).unwrap_err();
        assert!(wrong.message.contains("COSIGN_PASSWORD"), "{wrong:?}");
        let unset = private_key(&encrypted, None).unwrap_err();
        assert!(unset.message.contains("not set"), "{unset:?}");
        let old_label = encrypted.replace("SIGSTORE", "COSIGN");
        assert_eq!(private_key(&old_label, Some(b"s3cret")).unwrap(), key);
    }

    #[test]
    fn hostile_scrypt_costs_are_refused_before_any_work() {
        let key = key();
        let encrypted = encrypt_for_test(&key, b"", 10);
        let (_, json) = pem_block(&encrypted).unwrap();
        let text = String::from_utf8(json)
            .unwrap()
            .replace("1024", "1099511627776");
        let hostile = pem("ENCRYPTED SIGSTORE PRIVATE KEY", text.as_bytes());
        let err = private_key(&hostile, Some(b"")).unwrap_err();
        assert!(err.message.contains("scrypt N"), "{err:?}");
    }
}
