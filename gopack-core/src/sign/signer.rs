//! Who signs: the [`Signer`] trait and its key-based provider, [`KeySigner`],
//! whose key comes from a file (`--sign-key`, `sign-key`) or from an
//! environment variable holding the PEM (`GOPACK_SIGN_KEY`, read at the CLI's
//! edge into [`crate::config::settings::Environment`]).
//!
//! Keyless signing (a Fulcio certificate for an OIDC identity, logged in
//! Rekor) and KMS keys are future providers of the same trait: a keyless
//! signer would also hand out its certificate chain for the signature layer's
//! `dev.sigstore.cosign/certificate` annotations. Neither is faked here: gopack
//! signs with a key it holds, or not at all.

use super::keys::{self, KeyError};
use crate::error::{Error, Result};
use camino::Utf8Path;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

/// Something that signs bytes with ECDSA P-256 over SHA-256.
pub trait Signer: Sync {
    /// Where the key comes from, for messages (`key file cosign.key`).
    fn describe(&self) -> String;
    /// The ASN.1 DER signature of `message`. The same message gives the same
    /// bytes (RFC 6979 nonces), so a re-pack signs identically.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    /// The public key that verifies the signatures, so a run can check what it
    /// signed before it ships it.
    fn public_key(&self) -> VerifyingKey;
}

/// A private key held in memory.
pub struct KeySigner {
    key: SigningKey,
    source: String,
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySigner")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl KeySigner {
    /// The key in the PEM file `path`; `password` opens cosign's encrypted keys.
    pub fn from_file(path: &Utf8Path, password: Option<&[u8]>) -> Result<KeySigner> {
        let text = read_key_file(path)?;
        let key = keys::private_key(&text, password).map_err(|e| key_error(path.as_str(), e))?;
        Ok(KeySigner {
            key,
            source: format!("key file {path}"),
        })
    }

    /// The key in `pem`, the value of the environment variable `variable`.
    pub fn from_env(variable: &str, pem: &str, password: Option<&[u8]>) -> Result<KeySigner> {
        let key = keys::private_key(pem, password).map_err(|e| key_error(variable, e))?;
        Ok(KeySigner {
            key,
            source: format!("the key in {variable}"),
        })
    }

    /// A signer over `key` (tests, and hosts that hold a key already).
    pub fn new(key: SigningKey, source: &str) -> KeySigner {
        KeySigner {
            key,
            source: source.to_string(),
        }
    }
}

impl Signer for KeySigner {
    fn describe(&self) -> String {
        self.source.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let signature: Signature = p256::ecdsa::signature::Signer::sign(&self.key, message);
        Ok(signature.to_der().as_bytes().to_vec())
    }

    fn public_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }
}

/// Reads a key file (private or public), at most [`keys::MAX_KEY_FILE`] bytes.
pub fn read_key_file(path: &Utf8Path) -> Result<String> {
    use crate::error::IoContext;
    use std::io::Read;
    let file = std::fs::File::open(path).at(path, "read the key")?;
    let mut text = String::new();
    file.take(keys::MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            key_error(
                path.as_str(),
                KeyError {
                    message: format!("it cannot be read as text: {e}"),
                    help: "pass a PEM key file".into(),
                },
            )
        })?;
    if text.len() as u64 > keys::MAX_KEY_FILE {
        return Err(key_error(
            path.as_str(),
            KeyError {
                message: format!("it is larger than {} bytes", keys::MAX_KEY_FILE),
                help: "pass a PEM key file".into(),
            },
        ));
    }
    Ok(text)
}

/// A refused key as gopack's error, naming where it came from.
pub fn key_error(source: &str, e: KeyError) -> Error {
    Error::Invalid {
        path: source.to_string(),
        message: e.message,
        help: e.help,
    }
}
