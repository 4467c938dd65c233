//! Target platforms: `os/arch[/variant]` as OCI and `docker --platform` spell them,
//! mapped to Go's GOOS/GOARCH/GOARM.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The architectures Go can build for Linux containers.
const ARCHES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64",
];

/// A target platform such as `linux/amd64` or `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// Always `linux` for container images.
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`, ...
    pub arch: String,
    /// `v7` for `linux/arm/v7`, `v8` for `linux/arm64/v8`.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the machine gopack runs on, as a Linux container platform.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "riscv64" => "riscv64",
            "s390x" => "s390x",
            "arm" => "arm",
            _ => "amd64",
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }

    /// The environment `go build` needs for this platform.
    pub fn go_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("GOOS", self.os.clone()), ("GOARCH", self.arch.clone())];
        if self.arch == "arm" {
            let version = self
                .variant
                .as_deref()
                .and_then(|v| v.strip_prefix('v'))
                .unwrap_or("7");
            env.push(("GOARM", version.to_string()));
        }
        env
    }

    /// A name usable in file paths: `linux_arm_v7`.
    pub fn slug(&self) -> String {
        self.to_string().replace('/', "_")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Why a platform string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError(pub String);

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlatformError {}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => {
                return Err(PlatformError(format!(
                    "`{text}` is not a platform; write os/arch, e.g. linux/amd64 or linux/arm/v7"
                )))
            }
        };
        if os != "linux" {
            return Err(PlatformError(format!(
                "`{text}`: container images are built for linux, not `{os}`; write linux/{arch}"
            )));
        }
        if !ARCHES.contains(&arch) {
            return Err(PlatformError(format!(
                "`{text}`: unknown architecture `{arch}`; use one of {}",
                ARCHES.join(", ")
            )));
        }
        let variant = match (arch, variant) {
            (_, None) => None,
            ("arm", Some(v @ ("v5" | "v6" | "v7"))) => Some(v.to_string()),
            ("arm64", Some("v8")) => None,
            (_, Some(v)) => {
                return Err(PlatformError(format!(
                    "`{text}`: variant `{v}` is not supported for {arch}; \
                     use linux/arm/v6 or linux/arm/v7 for 32-bit ARM, and no variant elsewhere"
                )))
            }
        };
        Ok(Platform {
            os: os.into(),
            arch: arch.into(),
            variant,
        })
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for text in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
            assert_eq!(text.parse::<Platform>().unwrap().to_string(), text);
        }
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64"
        );
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "linux",
            "amd64",
            "windows/amd64",
            "linux/x86_64",
            "linux/amd64/v9",
            "a/b/c/d",
        ] {
            assert!(text.parse::<Platform>().is_err(), "{text}");
        }
    }

    #[test]
    fn arm_variant_sets_goarm() {
        let p: Platform = "linux/arm/v6".parse().unwrap();
        assert!(p.go_env().contains(&("GOARM", "6".to_string())));
    }
}
