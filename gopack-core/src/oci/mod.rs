//! OCI primitives: digests ([`digest`]), the documents that tie an image
//! together ([`documents`]), the one deterministic tar header ([`tar`]),
//! layer trees ([`tree`]) and layers written from them ([`layer`], gzip in
//! parallel blocks by [`pgzip`]), and [`Blob`], a blob stored by digest.

pub mod digest;
pub mod documents;
pub mod layer;
pub mod pgzip;
pub mod tar;
pub mod tree;

use documents::Descriptor;

/// A blob stored in the cache, ready to go into a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

impl Blob {
    /// Its descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, &self.digest, self.size)
    }

    /// Its file name in a layout or the cache: the digest's hex.
    pub fn key(&self) -> &str {
        digest::hex_of(&self.digest)
    }
}
