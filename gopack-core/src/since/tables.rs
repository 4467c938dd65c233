//! What changed in `[workspace.metadata.gopack]` between a revision and now,
//! compared as parsed tables (the same serde types the config is read with),
//! never as text: a comment, a reordered key or another crate's section
//! changes nothing; a default written out equals the default left out.

use crate::config::{AppConfig, Config};
use serde_json::Value;
use std::collections::BTreeMap;

/// Workspace-wide keys that change no image: the cache's place and its registry.
const NO_IMAGE_KEYS: &[&str] = &["cache-dir", "cache-registry", "cache-registry-mode"];

/// The gopack table of a Cargo.toml's text, parsed as the config is;
/// `Err` says why it cannot be used (then every app counts as changed).
pub fn config_of(manifest_text: &str) -> Result<Option<Config>, String> {
    let document: toml::Table = toml::from_str(manifest_text).map_err(|e| e.to_string())?;
    let Some(table) = document
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("gopack"))
    else {
        return Ok(None);
    };
    let value = serde_json::to_value(table).map_err(|e| e.to_string())?;
    serde_json::from_value::<Config>(value)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// How the workspace-wide keys changed: the keys that changed, and whether
/// they reach every app or only the apps with `files`.
#[derive(Debug, Default)]
pub struct WideChanges {
    /// Changed keys every app uses (e.g. `registry`, `sign-key`).
    pub all: Vec<String>,
    /// Changed keys only apps with `files` use (`files-root`).
    pub files: Vec<String>,
}

/// The workspace-wide keys (all but `apps`) that differ.
pub fn wide_changes(old: &Config, new: &Config) -> WideChanges {
    let old = wide_keys(old);
    let new = wide_keys(new);
    let mut changes = WideChanges::default();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        if old.get(key) == new.get(key) || NO_IMAGE_KEYS.contains(&key.as_str()) {
            continue;
        }
        if key == "files-root" {
            changes.files.push(key.clone());
        } else {
            changes.all.push(key.clone());
        }
    }
    changes
}

fn wide_keys(config: &Config) -> BTreeMap<String, Value> {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    let mut keys = BTreeMap::new();
    if let Value::Object(map) = &mut value {
        map.remove("apps");
        keys.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    keys
}

/// The keys of an app's table that differ between `old` and `new` (parsed,
/// defaults filled in).
pub fn app_changes(old: &AppConfig, new: &AppConfig) -> Vec<String> {
    let as_map = |app: &AppConfig| match serde_json::to_value(app) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .cloned()
        .collect()
}

/// The version of the `gopack-core` package a Cargo.lock pins (with its
/// source and checksum), if it has one.
pub fn locked_gopack(lock_text: &str) -> Option<String> {
    let mut found = None;
    for block in lock_text.split("[[package]]") {
        let field = |name: &str| {
            block.lines().find_map(|line| {
                let rest = line.trim().strip_prefix(name)?.trim_start();
                Some(rest.strip_prefix('=')?.trim().trim_matches('"').to_string())
            })
        };
        if field("name").as_deref() == Some("gopack-core") {
            let mut text = field("version").unwrap_or_default();
            for extra in [field("source"), field("checksum")].into_iter().flatten() {
                text.push(' ');
                text.push_str(&extra);
            }
            found = Some(text);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"
[workspace]
members = ["x"]
[workspace.metadata.gopack]
registry = "ghcr.io/acme"
cache-dir = "c1"
[[workspace.metadata.gopack.apps]]
name = "api"
path = "services/api"
labels = { team = "a" }
[[workspace.metadata.gopack.apps]]
name = "web"
path = "services/web"
"#;

    #[test]
    fn tables_compare_parsed_not_as_text() {
        let before = config_of(BEFORE).unwrap().unwrap();
        // Comments, order and a written-out default change nothing.
        let same = BEFORE
            .replace("cache-dir = \"c1\"", "cache-dir = \"c2\"  # moved")
            .replace("name = \"web\"", "# the site\nname = \"web\"\ncerts = true");
        let after = config_of(&same).unwrap().unwrap();
        assert!(wide_changes(&before, &after).all.is_empty());
        assert!(app_changes(&before.apps[1], &after.apps[1]).is_empty());
        let changed = BEFORE.replace("team = \"a\"", "team = \"b\"");
        let after = config_of(&changed).unwrap().unwrap();
        assert_eq!(app_changes(&before.apps[0], &after.apps[0]), ["labels"]);
        assert!(app_changes(&before.apps[1], &after.apps[1]).is_empty());
        let moved = BEFORE.replace("ghcr.io/acme", "ghcr.io/other");
        let after = config_of(&moved).unwrap().unwrap();
        assert_eq!(wide_changes(&before, &after).all, ["registry"]);
        assert!(config_of("[package]\nname = \"x\"\n").unwrap().is_none());
        assert!(config_of("not toml [").is_err());
    }

    #[test]
    fn the_locked_gopack_version_is_read_from_its_block() {
        let lock = "[[package]]\nname = \"gopack-core\"\nversion = \"0.1.0\"\nsource = \"registry+x\"\n\n[[package]]\nname = \"other\"\nversion = \"9.9.9\"\n";
        assert_eq!(locked_gopack(lock).as_deref(), Some("0.1.0 registry+x"));
        assert_eq!(locked_gopack("[[package]]\nname = \"x\"\n"), None);
    }
}
