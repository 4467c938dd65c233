//! Content fingerprints of a Go module: what a cached binary depends on.
//!
//! The module folder is walked (hidden folders, nested modules and gopack's
//! own output skipped; `_test.go` files ignored since they never reach a
//! binary), plus every other folder the build reads: local `replace` targets
//! and the modules a go.work uses (see [`crate::gomod`]). Every other file
//! counts, so `//go:embed` assets and vendor/ do too.

use crate::cache::stat::StatCache;
use crate::cache::KeyHasher;
use crate::error::{IoContext, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::os::unix::fs::PermissionsExt;

/// Hashes the sources of the module in `module_dir` and of the `other`
/// folders it is built from into `hasher`. Paths under `skip` (gopack's
/// target folder) are left out. File contents come through `stats`, read
/// only when a file's identity changed.
pub fn hash_module_sources(
    module_dir: &Utf8Path,
    other: &[Utf8PathBuf],
    skip: &Utf8Path,
    hasher: &mut KeyHasher,
    stats: &mut StatCache,
) -> Result<()> {
    let mut roots = vec![(String::from("."), module_dir.to_path_buf())];
    for folder in other {
        let label = match folder.strip_prefix(module_dir.parent().unwrap_or(module_dir)) {
            Ok(rest) => format!("../{rest}"),
            Err(_) => folder.to_string(),
        };
        roots.push((format!("folder:{label}"), folder.clone()));
    }
    for (label, root) in roots {
        hasher.text("root", &label);
        let mut files = Vec::new();
        collect_files(&root, &root, skip, &mut files)?;
        files.sort();
        for relative in files {
            let path = root.join(&relative);
            let meta = std::fs::symlink_metadata(&path).at(&path, "read")?;
            hasher.text("file", relative.as_str());
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).at(&path, "read the link")?;
                hasher.text("link", &target.to_string_lossy());
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                hasher.field("exec", &[exec as u8]);
                hasher.field("sha256", &stats.content_hash(&path, &meta)?);
            }
        }
    }
    Ok(())
}

/// Folders that go.mod's `replace` directives point at (`=> ../lib`).
pub fn local_replacements(go_mod: &str) -> Vec<String> {
    go_mod
        .lines()
        .filter_map(|line| {
            let line = line.split("//").next()?.trim();
            let (_, target) = line.split_once("=>")?;
            let target = target.split_whitespace().next()?;
            (target.starts_with("./") || target.starts_with("../") || target.starts_with('/'))
                .then(|| target.to_string())
        })
        .collect()
}

fn collect_files(
    root: &Utf8Path,
    dir: &Utf8Path,
    skip: &Utf8Path,
    files: &mut Vec<Utf8PathBuf>,
) -> Result<()> {
    let entries = dir.read_dir_utf8().at(dir, "list")?;
    for entry in entries {
        let entry = entry.at(dir, "list")?;
        let path = entry.path();
        let name = entry.file_name();
        let kind = entry.file_type().at(path, "read")?;
        if kind.is_dir() {
            if name.starts_with('.') || path == skip || path.join("go.mod").is_file() {
                continue;
            }
            collect_files(root, path, skip, files)?;
        } else if !name.ends_with("_test.go") {
            let relative = path.strip_prefix(root).unwrap_or(path);
            files.push(relative.to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_local_replacements() {
        let go_mod = "module x\n\nreplace example.com/a => ../a\nreplace (\n\texample.com/b v1.0.0 => ./b // local\n\texample.com/c => example.com/d v1.2.0\n)\n";
        assert_eq!(local_replacements(go_mod), vec!["../a", "./b"]);
    }

    #[test]
    fn content_changes_change_the_hash_and_tests_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().into()).unwrap();
        std::fs::write(root.join("go.mod"), "module x\n").unwrap();
        std::fs::write(root.join("main.go"), "package main\n").unwrap();
        std::fs::create_dir(root.join(".git")).unwrap();
        let cache = crate::cache::Cache::open(root.join("target/cache")).unwrap();
        let hash = || {
            let mut h = KeyHasher::new("t");
            let mut stats = StatCache::open(&cache, "t");
            hash_module_sources(&root, &[], &root.join("target"), &mut h, &mut stats).unwrap();
            stats.save(&cache);
            h.finish()
        };
        let first = hash();
        std::fs::write(root.join("main_test.go"), "package main\n").unwrap();
        std::fs::write(root.join(".git/HEAD"), "x").unwrap();
        assert_eq!(hash(), first);
        std::fs::write(root.join("main.go"), "package main\n\n").unwrap();
        assert_ne!(hash(), first);
    }
}
