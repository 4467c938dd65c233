//! Tidy tests, in the manner of rust-analyzer's: facts about the source tree
//! that keep it as it was meant to be — docs that match the code, and rules
//! about where things live.

use gopack_core::config::{AppConfig, Config, Limits, Policy, RunPolicy, UserConfig};
use gopack_core::verify::CheckId;
use std::collections::BTreeSet;

fn read(path: &str) -> String {
    let path = crate::support::repo_root().join(path);
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
    let src = crate::support::repo_root().join("gopack-core/src");
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

/// The paths a line of code names that start a child process: std's
/// `Command` (however it is imported or renamed), duct, and cargo_metadata's
/// `MetadataCommand` (it runs cargo).
fn process_paths(line: &str, std_command_in_scope: bool) -> Vec<&'static str> {
    let mut found = Vec::new();
    let compact: String = line.split_whitespace().collect();
    if compact.contains("process::Command")
        || compact.contains("process::{") && compact.contains("Command")
    {
        found.push("std::process::Command");
    }
    if std_command_in_scope && compact.contains("Command::new(") {
        found.push("Command::new");
    }
    if compact.contains("duct::") || compact.starts_with("useduct") {
        found.push("duct");
    }
    if compact.contains("MetadataCommand") {
        found.push("cargo_metadata::MetadataCommand");
    }
    found
}

#[test]
fn only_process_rs_runs_processes() {
    let mut offenders = Vec::new();
    for (path, text) in core_sources() {
        if path == "process.rs" || path.starts_with("process/") {
            continue;
        }
        let code = code_outside_tests(&text);
        let imports_std_command = code.iter().any(|line| {
            let compact: String = line.split_whitespace().collect();
            compact.starts_with("usestd::process::") && compact.contains("Command")
        });
        for (n, line) in code.iter().enumerate() {
            for what in process_paths(line, imports_std_command) {
                offenders.push(format!("gopack-core/src/{path}:{} uses {what}", n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "child processes run only through gopack-core/src/process.rs: {offenders:?}"
    );
}

#[test]
fn the_process_check_sees_imports_however_written() {
    assert!(!process_paths("use std::process::{Command, Stdio};", false).is_empty());
    assert!(!process_paths("let c = std::process::Command::new(\"x\");", false).is_empty());
    assert!(!process_paths("Command::new(x)", true).is_empty());
    assert!(process_paths("Cmd::new(x)", true).is_empty());
    assert!(!process_paths("let m = cargo_metadata::MetadataCommand::new();", false).is_empty());
    assert!(!process_paths("use duct::cmd;", false).is_empty());
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
    let example = crate::support::repo_root().join("examples/monorepo");
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

/// The `[profile.dev.package.*]` tables of a manifest (what gopack asks of
/// its dependencies), without comments and blank lines. Other profile tables
/// are a workspace's own business.
fn profile_tables(manifest: &str) -> Vec<String> {
    let mut tables = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line.starts_with("[profile.dev.package.");
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            tables.push(line.to_string());
        }
    }
    assert!(!tables.is_empty(), "no [profile.dev.package.*] table");
    tables
}

#[test]
fn examples_monorepo_has_gopacks_profile_settings() {
    assert_eq!(
        profile_tables(&read("examples/monorepo/Cargo.toml")),
        profile_tables(&read("Cargo.toml")),
        "examples/monorepo/Cargo.toml and docs/adopt.md show gopack's profile settings: \
         copy the [profile.dev.package.*] tables of Cargo.toml there"
    );
}

/// The module order of docs/architecture.md ("The order of modules"), bottom
/// first: each row's module name.
fn module_order() -> Vec<String> {
    let docs = read("docs/architecture.md");
    let section = docs
        .split("## The order of modules")
        .nth(1)
        .expect("docs/architecture.md has no \"## The order of modules\" section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix('|'))
        .filter_map(|rest| {
            let mut cells = rest.split('|').map(str::trim);
            let number = cells.next()?;
            let module = cells.next()?;
            number.parse::<usize>().ok()?;
            Some(module.trim_matches('`').to_string())
        })
        .collect()
}

/// `text` without its `#[cfg(test)] mod ... { ... }` blocks, comments and
/// string contents, line numbers kept (removed text becomes blank lines).
fn code_outside_tests(text: &str) -> Vec<String> {
    // Blank string literals, char literals and comments first, so that
    // braces in them do not count.
    let mut code = String::with_capacity(text.len());
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < bytes.len() && bytes[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '"' {
            // A raw string r"..." or r#"..."#: the hashes before the quote.
            let mut hashes = 0;
            let mut j = i;
            while j > 0 && bytes[j - 1] == '#' {
                hashes += 1;
                j -= 1;
            }
            let raw = j > 0 && bytes[j - 1] == 'r';
            code.push('"');
            i += 1;
            while i < bytes.len() {
                if !raw && bytes[i] == '\\' {
                    i += 2;
                    continue;
                }
                if bytes[i] == '"' && (0..hashes).all(|k| bytes.get(i + 1 + k) == Some(&'#')) {
                    break;
                }
                if bytes[i] == '\n' {
                    code.push('\n');
                }
                i += 1;
            }
            code.push('"');
            i += 1;
            continue;
        }
        if c == '\'' && bytes.get(i + 2) == Some(&'\'') {
            code.push_str("' '");
            i += 3;
            continue;
        }
        if c == '\'' && next == Some('\\') {
            while i < bytes.len() && !(bytes[i] == '\'' && bytes[i - 1] != '\\' && i > 0) {
                i += 1;
            }
            i += 1;
            code.push_str("' '");
            continue;
        }
        code.push(c);
        i += 1;
    }
    let mut lines: Vec<String> = code.lines().map(String::from).collect();
    let mut n = 0;
    while n < lines.len() {
        if lines[n].trim() == "#[cfg(test)]" {
            let item = (n + 1..lines.len()).find(|&k| !lines[k].trim().is_empty());
            if let Some(k) = item.filter(|&k| {
                let t = lines[k].trim_start();
                t.starts_with("mod ")
                    || t.starts_with("pub(crate) mod ")
                    || t.starts_with("pub mod ")
            }) {
                let mut depth = 0i32;
                let mut end = k;
                'scan: for (m, line) in lines.iter().enumerate().skip(k) {
                    for ch in line.chars() {
                        match ch {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    end = m;
                                    break 'scan;
                                }
                            }
                            ';' if depth == 0 => {
                                end = m;
                                break 'scan;
                            }
                            _ => {}
                        }
                    }
                    end = m;
                }
                for line in &mut lines[n..=end] {
                    line.clear();
                }
                n = end;
            }
        }
        n += 1;
    }
    lines
}

/// The top-level modules a line of code names: `crate::a`, `crate::{a, b::c}`,
/// and `super::` paths that climb to the crate root from `depth` (the number
/// of module names in the file's own path).
fn modules_named(line: &str, depth: usize) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut roots = Vec::new();
    while let Some(at) = rest.find("crate::") {
        roots.push(rest[at + "crate::".len()..].to_string());
        rest = &rest[at + 1..];
    }
    let supers = format!("{}::", vec!["super"; depth].join("::"));
    if depth > 0 {
        let mut rest = line;
        while let Some(at) = rest.find(&supers) {
            let after = &rest[at + supers.len()..];
            if !after.starts_with("super::") {
                roots.push(after.to_string());
            }
            rest = &rest[at + 1..];
        }
    }
    for root in roots {
        if let Some(group) = root.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            found.extend(group.split(',').map(|p| ident(p.trim())));
        } else {
            found.push(ident(&root));
        }
    }
    found
        .into_iter()
        .filter(|m| m.starts_with(|c: char| c.is_ascii_lowercase()))
        .collect()
}

#[test]
fn imports_run_down_the_module_order() {
    let order = module_order();
    assert!(
        order.len() > 20,
        "the order lists too few modules: {order:?}"
    );
    let rank = |module: &str| order.iter().position(|m| m == module);
    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    for (path, text) in core_sources() {
        if path == "lib.rs" {
            continue;
        }
        let parts: Vec<&str> = path.trim_end_matches(".rs").split('/').collect();
        let own: Vec<&str> = parts.iter().copied().filter(|p| *p != "mod").collect();
        let top = own[0].to_string();
        modules.insert(top.clone());
        let Some(own_rank) = rank(&top) else {
            continue;
        };
        for (n, line) in code_outside_tests(&text).iter().enumerate() {
            for used in modules_named(line, own.len()) {
                if used == top || used == "self" {
                    continue;
                }
                match rank(&used) {
                    Some(r) if r < own_rank => {}
                    Some(r) => problems.push(format!(
                        "gopack-core/src/{path}:{}: `{top}` (row {}) uses `{used}` (row {}), \
                         which comes after it",
                        n + 1,
                        own_rank + 1,
                        r + 1
                    )),
                    None => problems.push(format!(
                        "gopack-core/src/{path}:{}: `{used}` is not in the order",
                        n + 1
                    )),
                }
            }
        }
    }
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    let unlisted: Vec<_> = modules.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&modules).collect();
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "docs/architecture.md's order of modules does not match gopack-core/src: \
         missing there {unlisted:?}, no such module {gone:?}"
    );
    assert!(
        problems.is_empty(),
        "imports must run down the order of docs/architecture.md (move the shared item \
         into a lower module, or change the order there on purpose):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_order_check_sees_every_kind_of_path() {
    assert_eq!(modules_named("use crate::config::App;", 1), ["config"]);
    assert_eq!(
        modules_named("use crate::{cache::Cache, error::Result};", 1),
        ["cache", "error"]
    );
    assert_eq!(
        modules_named("let x = crate::vcs::revision(a);", 2),
        ["vcs"]
    );
    assert_eq!(
        modules_named("use super::super::image::Tree;", 2),
        ["image"]
    );
    assert_eq!(
        modules_named("use super::layers::Tree;", 2),
        Vec::<String>::new()
    );
    let code = code_outside_tests(
        "use crate::a::B;\n// crate::c\nlet s = \"crate::d {\";\n#[cfg(test)]\nmod tests {\n    use crate::e;\n    fn f() { let g = '{'; }\n}\nuse crate::h;\n",
    );
    let named: Vec<String> = code.iter().flat_map(|l| modules_named(l, 1)).collect();
    assert_eq!(named, ["a", "h"]);
}

#[test]
fn the_environment_is_read_in_one_place_and_documented() {
    let mut offenders = Vec::new();
    for (path, text) in core_sources() {
        if path == "environment.rs" {
            continue;
        }
        for (n, line) in code_outside_tests(&text).iter().enumerate() {
            for needle in ["env::var(", "env::var_os(", "env::vars(", "env::vars_os("] {
                if line.contains(needle) {
                    offenders.push(format!("gopack-core/src/{path}:{}", n + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read environment variables through gopack_core::environment (and list them there): \
         {offenders:?}"
    );
    let docs = read("docs/configuration.md");
    let undocumented: Vec<&str> = gopack_core::environment::VARIABLES
        .iter()
        .chain(gopack_core::environment::GO_BUILD)
        .copied()
        .filter(|name| !docs.contains(&format!("`{name}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "environment variables missing from docs/configuration.md: {undocumented:?}"
    );
}

/// The files docs/architecture.md's module tree lists, as paths under `gopack-core/src/`.
fn architecture_tree() -> BTreeSet<String> {
    let text = read("docs/architecture.md");
    let section = text
        .split("## Modules of `gopack-core`, as the pipeline")
        .nth(1)
        .expect("architecture.md has the module tree");
    let block = section
        .split("```\n")
        .nth(1)
        .expect("the module tree is a code block");
    let mut folders: Vec<String> = Vec::new();
    let mut files = BTreeSet::new();
    for line in block.lines().skip(1) {
        let indent = line.len() - line.trim_start().len();
        let Some(word) = line.split_whitespace().next() else {
            continue;
        };
        // Folders and files start at two spaces per level; deeper text continues a description.
        if indent % 2 != 0 || indent / 2 > folders.len() + 1 || indent == 0 {
            continue;
        }
        let depth = indent / 2 - 1;
        if depth > folders.len() {
            continue;
        }
        if let Some(folder) = word.strip_suffix('/') {
            folders.truncate(depth);
            folders.push(folder.to_string());
        } else if word.ends_with(".rs") {
            folders.truncate(depth);
            let mut path = folders.join("/");
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(word);
            files.insert(path);
        }
    }
    files
}

#[test]
fn architecture_lists_every_module_file() {
    let listed = architecture_tree();
    let present: BTreeSet<String> = core_sources().into_iter().map(|(path, _)| path).collect();
    let missing: Vec<&String> = present.difference(&listed).collect();
    let gone: Vec<&String> = listed.difference(&present).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "docs/architecture.md's module tree: missing {missing:?}, listed but not in gopack-core/src {gone:?}"
    );
}

#[test]
fn no_source_file_is_over_700_lines() {
    let long: Vec<String> = core_sources()
        .into_iter()
        .filter(|(_, text)| text.lines().count() > 700)
        .map(|(path, text)| format!("gopack-core/src/{path}: {} lines", text.lines().count()))
        .collect();
    assert!(
        long.is_empty(),
        "split these along their seams (docs/architecture.md lists the modules): {long:?}"
    );
}
