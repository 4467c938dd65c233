//! `sbom = true | false | "spdx" | "cyclonedx"` and the media types of the
//! documents; `provenance` is a plain bool (see docs/supply-chain.md).

use super::BoolOrText;
use serde::{Deserialize, Serialize};

/// Media type and artifact type of SPDX JSON.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// Media type and artifact type of CycloneDX JSON.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// `sbom = true | false | "spdx" | "cyclonedx"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    #[default]
    Spdx,
    /// CycloneDX 1.5 JSON.
    Cyclonedx,
    /// No SBOM.
    Off,
}

impl<'de> Deserialize<'de> for SbomFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match BoolOrText::deserialize(deserializer)? {
            BoolOrText::Bool(true) => Ok(SbomFormat::Spdx),
            BoolOrText::Bool(false) => Ok(SbomFormat::Off),
            BoolOrText::Text(t) if t == "spdx" => Ok(SbomFormat::Spdx),
            BoolOrText::Text(t) if t == "cyclonedx" => Ok(SbomFormat::Cyclonedx),
            BoolOrText::Text(t) => Err(serde::de::Error::custom(format!(
                "`{t}` is not an SBOM format; write true, false, \"spdx\" or \"cyclonedx\""
            ))),
        }
    }
}

impl SbomFormat {
    /// The document's media type, `None` when off.
    pub fn media_type(self) -> Option<&'static str> {
        match self {
            SbomFormat::Spdx => Some(SPDX_MEDIA_TYPE),
            SbomFormat::Cyclonedx => Some(CYCLONEDX_MEDIA_TYPE),
            SbomFormat::Off => None,
        }
    }
}
