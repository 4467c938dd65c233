//! Tidy tests, in the manner of rust-analyzer's: facts about the source tree
//! that keep it as it was meant to be — docs that match the code, and rules
//! about where things live.

mod support;

use gopack_core::config::{AppConfig, Config, Limits, Policy, RunPolicy, UserConfig};
use gopack_core::verify::CheckId;
use std::collections::BTreeSet;

fn read(path: &str) -> String {
    let path = support::repo_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The keys a config table accepts, as serde names them: the list
/// `deny_unknown_fields` gives when it refuses an unknown key.
fn keys<T: serde::de::DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
    let err = serde_json::from_str::<T>(r#"{"tidy-unknown-key": 0}"#).unwrap_err();
    let text = err.to_string();
    let list = text
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("no key list in: {text}"))
        .1;
    list.split(", ")
        .map(|k| k.trim_matches(|c: char| c == '`' || !c.is_ascii_graphic() || c == ','))
        .map(|k| k.split('`').next().unwrap().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

#[test]
fn every_config_key_is_documented() {
    let docs = read("docs/configuration.md");
    let verify_docs = read("docs/verify.md");
    let mut missing = Vec::new();
    for (table, keys, docs) in [
        ("[workspace.metadata.gopack]", keys::<Config>(), &docs),
        ("apps", keys::<AppConfig>(), &docs),
        ("user", keys::<UserConfig>(), &docs),
        ("verify", keys::<Policy>(), &verify_docs),
        ("verify.run", keys::<RunPolicy>(), &verify_docs),
        ("verify.limits", keys::<Limits>(), &verify_docs),
    ] {
        assert!(keys.len() >= 2, "{table}: {keys:?}");
        for key in keys {
            if !docs.contains(&format!("`{key}`")) && !docs.contains(&format!("{key} =")) {
                missing.push(format!("{table}.{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "config keys missing from docs/configuration.md or docs/verify.md: {missing:?}"
    );
}

#[test]
fn every_check_is_documented_and_every_documented_check_exists() {
    let docs = read("docs/verify.md");
    let documented: BTreeSet<String> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|rest| rest.split(" |").next())
        .filter_map(|cell| cell.rsplit("</a>").next())
        .map(|cell| cell.trim().trim_matches('`').to_string())
        .filter(|id| id.contains('.') && !id.contains(' '))
        .collect();
    let known: BTreeSet<String> = CheckId::ALL.iter().map(|id| id.to_string()).collect();
    let undocumented: Vec<_> = known.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&known).collect();
    assert!(
        undocumented.is_empty(),
        "checks missing from docs/verify.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/verify.md lists checks gopack does not have: {unknown:?}"
    );
    for id in CheckId::ALL {
        let anchor = format!("<a id=\"{}\"></a>", id.docs_anchor());
        assert!(
            docs.contains(&anchor),
            "docs/verify.md has no anchor {anchor} for {id}"
        );
    }
}

/// Every `.rs` file of gopack-core's sources: its path under `src/` and its text.
fn core_sources() -> Vec<(String, String)> {
    let src = support::repo_root().join("gopack-core/src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = camino::Utf8PathBuf::from_path_buf(entry.unwrap().path()).unwrap();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension() == Some("rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path.strip_prefix(&src).unwrap().to_string(), text));
            }
        }
    }
    assert!(
        files.len() > 20,
        "gopack-core/src has too few files: {}",
        files.len()
    );
    files
}

#[test]
fn only_process_rs_runs_processes() {
    let mut offenders = Vec::new();
    for (path, text) in core_sources() {
        if path.ends_with("process.rs") && !path.contains('/') {
            continue;
        }
        let code = text.split("#[cfg(test)]").next().unwrap();
        for needle in [
            "std::process::Command",
            "process::Command::new",
            "duct::cmd",
        ] {
            if code.contains(needle) {
                offenders.push(format!("{path} uses {needle}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "child processes run only through gopack-core/src/process.rs: {offenders:?}"
    );
}

#[test]
fn every_module_has_docs() {
    let undocumented: Vec<String> = core_sources()
        .into_iter()
        .filter(|(_, text)| !text.starts_with("//!"))
        .map(|(path, _)| path)
        .collect();
    assert!(
        undocumented.is_empty(),
        "modules without //! docs: {undocumented:?}"
    );
}

/// The fenced code blocks of a markdown text: (language, text), with the
/// fence's indentation (a block inside a list item) removed from each line.
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let Some(language) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut text = Vec::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            let unindented = line
                .get(indent..)
                .filter(|_| line[..indent].trim().is_empty());
            text.push(unindented.unwrap_or(line.trim_start()));
        }
        blocks.push((language.trim().to_string(), text.join("\n")));
    }
    blocks
}

#[test]
fn adopt_md_shows_what_examples_monorepo_contains() {
    let docs = read("docs/adopt.md");
    let example = support::repo_root().join("examples/monorepo");
    let mut files = Vec::new();
    let mut stack = vec![example.clone()];
    while let Some(dir) = stack.pop() {
        for entry in dir.read_dir_utf8().unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                if entry.file_name() != "target" {
                    stack.push(entry.path().to_path_buf());
                }
            } else {
                files.push(std::fs::read_to_string(entry.path()).unwrap());
            }
        }
    }
    let mut checked = 0;
    let mut missing = Vec::new();
    for (language, block) in code_blocks(&docs) {
        match language.as_str() {
            // Commands to type.
            "sh" => continue,
            // The example's tree: every path exists.
            "text" => {
                for path in block.lines().filter_map(|l| l.split_whitespace().next()) {
                    if !example.join(path).exists() {
                        missing.push(format!("the path {path}"));
                    }
                }
            }
            _ => {
                if !files.iter().any(|file| file.contains(&block)) {
                    missing.push(block);
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 8, "docs/adopt.md has only {checked} code blocks");
    assert!(
        missing.is_empty(),
        "docs/adopt.md shows what examples/monorepo does not contain (change one \
         to match the other):\n{}",
        missing.join("\n---\n")
    );
}

/// The `[profile...]` tables of a manifest, without comments and blank lines.
fn profile_tables(manifest: &str) -> Vec<String> {
    let start = manifest.find("\n[profile.").expect("no [profile.*] table");
    manifest[start..]
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn examples_monorepo_has_gopacks_profile_settings() {
    assert_eq!(
        profile_tables(&read("examples/monorepo/Cargo.toml")),
        profile_tables(&read("Cargo.toml")),
        "examples/monorepo/Cargo.toml and docs/adopt.md show gopack's profile settings: \
         copy the [profile.*] tables of Cargo.toml there"
    );
}
