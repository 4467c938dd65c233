//! The names of verify's checks: a leaf module that both the config (a policy's
//! `allow` list) and `verify` use, so neither depends on the other for them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// What part of an image a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// The image's documents and blobs: platforms, digests, layers, size.
    Blobs,
    /// The image config: entrypoint, environment.
    Config,
    /// The entrypoint binary: ELF facts and Go build info.
    Binary,
    /// The user the image runs as.
    User,
    /// The file tree: unsafe paths, shells, setuid, world-writable files.
    Fs,
    /// The CA bundle.
    Certs,
    /// Zoneinfo.
    Tz,
    /// The smoke run in a docker engine.
    Run,
    /// What is attached to the image: SBOM, provenance.
    Attached,
}

macro_rules! check_ids {
    ($($variant:ident = $id:literal, $family:ident, $reads_files:literal;)*) => {
        /// One check of `verify`, named by a stable id such as `elf.static`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CheckId {
            $(#[doc = concat!("`", $id, "`")] $variant,)*
        }

        impl CheckId {
            /// Every check, in report order.
            pub const ALL: &'static [CheckId] = &[$(CheckId::$variant,)*];

            /// The stable id, as configs, reports and docs spell it.
            pub fn as_str(self) -> &'static str {
                match self { $(CheckId::$variant => $id,)* }
            }

            /// The part of the image the check reads.
            pub fn family(self) -> Family {
                match self { $(CheckId::$variant => Family::$family,)* }
            }

            /// Whether the check reads files from the image's layers (it is
            /// skipped when the layers cannot be read to their end).
            pub fn reads_files(self) -> bool {
                match self { $(CheckId::$variant => $reads_files,)* }
            }
        }
    };
}

check_ids! {
    ImagePlatforms = "image.platforms", Blobs, false;
    BlobsDigest = "blobs.digest", Blobs, false;
    LayersCount = "layers.count", Blobs, false;
    ImageSize = "image.size", Blobs, false;
    ConfigEntrypoint = "config.entrypoint", Config, false;
    EntrypointExists = "entrypoint.exists", Binary, true;
    EntrypointPermissions = "entrypoint.permissions", Binary, true;
    ElfStatic = "elf.static", Binary, true;
    ElfLoadable = "elf.loadable", Binary, true;
    ElfMachine = "elf.machine", Binary, true;
    ElfStripped = "elf.stripped", Binary, true;
    GoBuildinfo = "go.buildinfo", Binary, true;
    GoCgo = "go.cgo", Binary, true;
    GoPlatform = "go.platform", Binary, true;
    GoTrimpath = "go.trimpath", Binary, true;
    GoRevision = "go.revision", Binary, true;
    UserNumeric = "user.numeric", User, true;
    UserRoot = "user.root", User, true;
    UserPasswd = "user.passwd", User, true;
    FsPaths = "fs.paths", Fs, true;
    FsShell = "fs.shell", Fs, true;
    FsSetuid = "fs.setuid", Fs, true;
    FsWorldWritable = "fs.world-writable", Fs, true;
    CertsBundle = "certs.bundle", Certs, true;
    TzZoneinfo = "tz.zoneinfo", Tz, true;
    ConfigEnv = "config.env", Config, false;
    RunSmoke = "run.smoke", Run, false;
    SbomPresent = "sbom.present", Attached, false;
    ProvenancePresent = "provenance.present", Attached, false;
    SignValid = "sign.valid", Attached, false;
}

impl CheckId {
    /// The check's section in docs/verify.md, as a URL fragment.
    pub fn docs_anchor(self) -> String {
        self.as_str().replace('.', "")
    }

    /// Every id, comma-separated, for help texts.
    pub fn list() -> String {
        CheckId::ALL
            .iter()
            .map(|id| id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CheckId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CheckId::ALL
            .iter()
            .copied()
            .find(|id| id.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a verify check; known checks: {}",
                    CheckId::list()
                )
            })
    }
}

impl PartialEq<&str> for CheckId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for id in CheckId::ALL {
            assert!(seen.insert(id.as_str()), "{id} twice");
            assert_eq!(id.as_str().parse::<CheckId>().unwrap(), *id);
        }
        assert!("elf.staticc"
            .parse::<CheckId>()
            .unwrap_err()
            .contains("elf.static"));
    }
}
