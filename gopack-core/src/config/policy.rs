//! The per-app verify policy, `[workspace.metadata.gopack.apps.verify]`:
//! size and layer budgets, checks allowed to fail, and the smoke run of `--run`.

use super::limits::Limits;
use crate::check_id::CheckId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Per-app verify policy.
///
/// ```toml
/// verify = { max-size = "20MiB", max-layers = 3, allow = ["go.trimpath"],
///            run = { args = ["--version"], expect-exit = 0, expect-output = "hello" } }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Policy {
    /// The most the image's layers may weigh, compressed (`"20MiB"`, `"5MB"` or bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<ByteSize>,
    /// The most layers an image may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_layers: Option<usize>,
    /// Checks whose failures are only warnings for this app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<CheckId>,
    /// The smoke run of `verify --run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunPolicy>,
    /// What must be attached to every platform image: `"sbom"`, `"provenance"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<Attachment>,
    /// How much verify reads at most (file size, unpacked bytes, entries, time).
    #[serde(default, skip_serializing_if = "is_default_limits")]
    pub limits: Limits,
    /// The PEM public key every signature and attestation must verify with
    /// (`sign.valid`); relative paths are from the workspace root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<camino::Utf8PathBuf>,
}

fn is_default_limits(limits: &Limits) -> bool {
    *limits == Limits::default()
}

/// What `require` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attachment {
    /// An SBOM (SPDX or CycloneDX).
    Sbom,
    /// An in-toto provenance statement.
    Provenance,
}

impl Policy {
    /// Whether a failure of `id` is allowed (turned into a warning).
    pub fn allows(&self, id: CheckId) -> bool {
        self.allow.contains(&id)
    }
}

/// How `verify --run` runs the image: `docker run --rm --network none IMAGE ARGS...`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunPolicy {
    /// Arguments after the entrypoint (default: none, the image's Cmd).
    #[serde(default)]
    pub args: Vec<String>,
    /// The exit code the run must end with (default 0).
    #[serde(default)]
    pub expect_exit: i32,
    /// Text the run must print (stdout or stderr).
    #[serde(default)]
    pub expect_output: Option<String>,
    /// Seconds before the container is killed and the run fails (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

impl Default for RunPolicy {
    fn default() -> Self {
        RunPolicy {
            args: Vec::new(),
            expect_exit: 0,
            expect_output: None,
            timeout_seconds: default_timeout(),
        }
    }
}

fn default_timeout() -> u64 {
    30
}

/// A size in bytes, written as a number or as text with a unit (`"20MiB"`, `"1.5 GB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"20MiB"`, `"20 MB"`, `"512k"`, `"1000"`.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size; write bytes or e.g. \"20MiB\""))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1 << 10,
            "m" | "mb" => 1000 * 1000,
            "mib" => 1 << 20,
            "g" | "gb" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "`{other}` is not a size unit; use B, kB, KiB, MB, MiB, GB or GiB"
                ))
            }
        };
        Ok(ByteSize((number * factor as f64).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0 as f64;
        if self.0 >= 1 << 20 {
            write!(f, "{:.1} MiB", bytes / (1u64 << 20) as f64)
        } else if self.0 >= 1 << 10 {
            write!(f, "{:.1} KiB", bytes / 1024.0)
        } else {
            write!(f, "{} B", self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("20MiB").unwrap().0, 20 << 20);
        assert_eq!(ByteSize::parse("5 MB").unwrap().0, 5_000_000);
        assert_eq!(ByteSize::parse("1.5KiB").unwrap().0, 1536);
        assert_eq!(ByteSize::parse("100").unwrap().0, 100);
        assert!(ByteSize::parse("lots").is_err());
        assert!(ByteSize::parse("3 parsecs").is_err());
    }

    #[test]
    fn policy_from_json() {
        let policy: Policy = serde_json::from_value(json!({
            "max-size": "20MiB", "max-layers": 3, "allow": ["go.trimpath"],
            "run": {"args": ["-v"], "expect-output": "hi"}
        }))
        .unwrap();
        assert_eq!(policy.max_size, Some(ByteSize(20 << 20)));
        assert!(policy.allows(CheckId::GoTrimpath));
        assert_eq!(policy.run.unwrap().timeout_seconds, 30);
        let err = serde_json::from_value::<Policy>(json!({"allow": ["elf.staticc"]})).unwrap_err();
        assert!(err.to_string().contains("elf.static"), "{err}");
        assert!(serde_json::from_value::<Policy>(json!({"colour": 1})).is_err());
    }
}
