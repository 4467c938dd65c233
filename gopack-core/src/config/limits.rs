//! `verify = { limits = { ... } }`: the budgets `verify` reads an image within
//! (see docs/verify.md, "Budgets"); `verify --limit NAME=VALUE` sets them for
//! one run.

use super::ByteSize;
use serde::{Deserialize, Serialize};

/// How much verify reads at most, per run.
///
/// ```toml
/// verify = { limits = { max-file-size = "1GiB", max-entries = 2000000 } }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Limits {
    /// The largest file verify reads whole (the entrypoint, `/etc/passwd`, the CA bundle, ...).
    pub max_file_size: ByteSize,
    /// Uncompressed layer bytes read in all, over every platform (a repeated layer counts once).
    pub max_unpacked_size: ByteSize,
    /// Tar entries read in all: files of every layer, and entries of an archive.
    pub max_entries: u64,
    /// Seconds spent reading the image's blobs.
    pub max_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: ByteSize(512 << 20),
            max_unpacked_size: ByteSize(8 << 30),
            max_entries: 500_000,
            max_seconds: 300,
        }
    }
}

/// The names `--limit` and the policy take, in the order shown in messages.
pub const LIMIT_NAMES: &[&str] = &[
    "max-file-size",
    "max-unpacked-size",
    "max-entries",
    "max-seconds",
];

impl Limits {
    /// Sets one limit from `NAME=VALUE` (as `--limit` takes it).
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("`{assignment}` is not NAME=VALUE"))?;
        let number = |value: &str| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("`{value}` is not a whole number"))
        };
        match name.trim() {
            "max-file-size" => self.max_file_size = ByteSize::parse(value)?,
            "max-unpacked-size" => self.max_unpacked_size = ByteSize::parse(value)?,
            "max-entries" => self.max_entries = number(value)?,
            "max-seconds" => self.max_seconds = number(value)?,
            other => {
                return Err(format!(
                    "`{other}` is not a verify limit; known limits: {}",
                    LIMIT_NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_set_by_name() {
        let mut limits = Limits::default();
        limits.set("max-entries=7").unwrap();
        limits.set("max-file-size=1GiB").unwrap();
        assert_eq!(limits.max_entries, 7);
        assert_eq!(limits.max_file_size, ByteSize(1 << 30));
        let err = limits.set("max-files=1").unwrap_err();
        assert!(err.contains("max-entries"), "{err}");
        assert!(limits.set("max-seconds").is_err());
        let parsed: Limits = serde_json::from_str(r#"{"max-seconds": 5}"#).unwrap();
        assert_eq!(parsed.max_seconds, 5);
        assert_eq!(parsed.max_entries, Limits::default().max_entries);
    }
}
