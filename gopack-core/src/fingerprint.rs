//! Content fingerprints of a Go module: what a cached binary depends on.
//!
//! Only what `go build` can read is hashed, so a large file the build never
//! opens (a data dump, a disk image) costs nothing, and a FIFO, socket or
//! device is never opened. In the module folder and every other folder the
//! build reads (local `replace` targets, the modules a go.work uses, see
//! [`crate::gomod`]):
//!
//! - package folders: every folder except those go ignores (names starting
//!   with `.` or `_`, `testdata`, nested modules, gopack's own output);
//! - in them, the files go compiles or links: `.go` (not `_test.go`, which
//!   never reach a binary; every build constraint counts), C, C++,
//!   Objective-C, Fortran, assembly, SWIG and `.syso` files;
//! - go.mod, go.sum and vendor/modules.txt;
//! - what the `//go:embed` patterns of those `.go` files can name, matched
//!   as go matches them (a folder counts with everything in it, names
//!   starting with `.` or `_` included, so `all:` needs no special case); a
//!   directive gopack cannot read counts the whole package folder;
//! - with cgo (a `.go` file that imports "C"), every file of the folder,
//!   since `#include` can name any file.
//!
//! The embed patterns of a file are remembered with its stat record, so a run
//! where nothing changed reads no file. A FIFO, socket or device among the
//! files go compiles is an error (go would block on it); elsewhere it is
//! skipped. A symlink counts by its target text and, when it leads to a
//! regular file, that file's content.

use crate::cache::stat::{Scan, StatCache};
use crate::cache::KeyHasher;
use crate::error::{Error, IoContext, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::os::unix::fs::PermissionsExt;

/// Extensions of the files go compiles or links in a package folder.
const COMPILED: &[&str] = &[
    "go", "c", "cc", "cpp", "cxx", "m", "h", "hh", "hpp", "hxx", "f", "F", "for", "f90", "s", "S",
    "sx", "swig", "swigcxx", "syso",
];

/// The longest `//go:embed` line read; a longer one counts the whole package folder.
const MAX_DIRECTIVE: usize = 64 * 1024;

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
        for found in build_files(&root, skip, stats)? {
            hasher.text("file", &found.relative);
            if let Some((exec, hash)) = found.known {
                hasher.field("exec", &[exec as u8]);
                hasher.field("sha256", &hash);
                continue;
            }
            let path = root.join(&found.relative);
            let meta = std::fs::symlink_metadata(&path).at(&path, "read")?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).at(&path, "read the link")?;
                hasher.text("link", &target.to_string_lossy());
                if let Ok(followed) = std::fs::metadata(&path) {
                    if followed.is_file() {
                        hasher.field("sha256", &stats.content_hash(&path, &followed)?);
                    }
                }
            } else if meta.is_file() {
                let exec = meta.permissions().mode() & 0o111 != 0;
                hasher.field("exec", &[exec as u8]);
                hasher.field("sha256", &stats.content_hash(&path, &meta)?);
            }
        }
    }
    Ok(())
}

/// A file go build can read, by its path relative to the root it was found
/// in; for a regular `.go` file, which the walk already stats and hashes (for
/// its directives), whether it is executable and its content hash.
struct Found {
    relative: String,
    known: Option<(bool, [u8; 32])>,
}

impl Found {
    fn named(relative: &Utf8Path) -> Found {
        Found {
            relative: relative.as_str().to_string(),
            known: None,
        }
    }
}

/// Sorts `files` in path order (component by component, as `Utf8Path`
/// compares: `a/b` before `a.b`) and drops repeats, keeping what the walk
/// learned of a file. A run's key depends on this order.
fn sorted(mut files: Vec<Found>) -> Vec<Found> {
    // '/' sorts below every other byte of a name: bytes then compare as components do.
    let mut keyed: Vec<(Vec<u8>, Found)> = files
        .drain(..)
        .map(|found| {
            let mut key = found.relative.as_bytes().to_vec();
            for byte in &mut key {
                if *byte == b'/' {
                    *byte = 0;
                }
            }
            (key, found)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<Found> = Vec::with_capacity(keyed.len());
    for (_, found) in keyed {
        match out.last_mut() {
            Some(last) if last.relative == found.relative => {
                if last.known.is_none() {
                    last.known = found.known;
                }
            }
            _ => out.push(found),
        }
    }
    out
}

/// The files of `root` that go build can read, relative, sorted.
fn build_files(root: &Utf8Path, skip: &Utf8Path, stats: &mut StatCache) -> Result<Vec<Found>> {
    let mut files = Vec::new();
    for name in ["go.mod", "go.sum", "vendor/modules.txt"] {
        if std::fs::symlink_metadata(root.join(name)).is_ok() {
            files.push(Found::named(Utf8Path::new(name)));
        }
    }
    let mut cgo = false;
    package_files(root, Utf8Path::new(""), skip, stats, &mut files, &mut cgo)?;
    if cgo {
        subtree(root, Utf8Path::new(""), skip, &mut files)?;
    }
    Ok(sorted(files))
}

/// The package folder `folder` (relative to `root`) and those below it, in
/// one listing each: the files go compiles, what their `//go:embed` lines
/// name, and whether any imports "C". Folders go ignores (names starting
/// with `.` or `_`, `testdata`, nested modules, `skip`) are not entered.
fn package_files(
    root: &Utf8Path,
    folder: &Utf8Path,
    skip: &Utf8Path,
    stats: &mut StatCache,
    files: &mut Vec<Found>,
    cgo: &mut bool,
) -> Result<()> {
    let dir = root.join(folder);
    let mut embeds = Vec::new();
    for entry in dir.read_dir_utf8().at(&dir, "list")? {
        let entry = entry.at(&dir, "list")?;
        let name = entry.file_name();
        let kind = entry.file_type().at(entry.path(), "read")?;
        if kind.is_dir() {
            let path = entry.path();
            let ignored = name.starts_with('.') || name.starts_with('_') || name == "testdata";
            if !ignored && path != skip && !path.join("go.mod").is_file() {
                package_files(root, &folder.join(name), skip, stats, files, cgo)?;
            }
            continue;
        }
        let compiled = name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| COMPILED.contains(&ext))
            && !name.ends_with("_test.go");
        if !compiled {
            continue;
        }
        if !kind.is_file() && !kind.is_symlink() {
            return Err(Error::Invalid {
                path: entry.path().to_string(),
                message: "is a FIFO, socket or device, and go build would read it".into(),
                help: "remove it, or rename it so that go does not compile it".into(),
            });
        }
        let mut found = Found::named(&folder.join(name));
        if name.ends_with(".go") {
            // A regular file's own stat, relative to the open folder; a
            // symlink's target is stat'ed through its path.
            let meta = if kind.is_file() {
                entry.metadata()
            } else {
                std::fs::metadata(entry.path())
            };
            let meta = meta.at(entry.path(), "read")?;
            if meta.is_file() {
                let (hash, note) =
                    stats.content_hash_scanned(entry.path(), &meta, &mut Directives::default())?;
                if kind.is_file() {
                    found.known = Some((meta.permissions().mode() & 0o111 != 0, hash));
                }
                for line in note.split('\u{1f}').filter(|l| !l.is_empty()) {
                    match line {
                        "cgo" => *cgo = true,
                        other => embeds.push(other.to_string()),
                    }
                }
            }
        }
        files.push(found);
    }
    for pattern in embeds {
        let comps: Option<Vec<&str>> = pattern
            .strip_prefix("embed ")
            .map(|p| p.strip_prefix("all:").unwrap_or(p))
            .filter(|p| !p.is_empty() && !p.starts_with('/'))
            .map(|p| p.split('/').collect());
        match comps {
            Some(comps)
                if comps
                    .iter()
                    .all(|c| !c.is_empty() && *c != "." && *c != "..") =>
            {
                embedded(root, folder, &comps, skip, files)?
            }
            // go refuses such a pattern; nothing of it reaches a binary.
            Some(_) => {}
            None => subtree(root, folder, skip, files)?,
        }
    }
    Ok(())
}

/// The entries of `folder` matched by an embed pattern's components, as go
/// matches them (`path.Match` per component); a matched folder counts whole.
fn embedded(
    root: &Utf8Path,
    folder: &Utf8Path,
    comps: &[&str],
    skip: &Utf8Path,
    files: &mut Vec<Found>,
) -> Result<()> {
    let dir = root.join(folder);
    let Ok(entries) = dir.read_dir_utf8() else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.at(&dir, "list")?;
        let name = entry.file_name();
        if !glob_match(comps[0], name) {
            continue;
        }
        let kind = entry.file_type().at(entry.path(), "read")?;
        let relative = folder.join(name);
        if comps.len() == 1 {
            if kind.is_dir() {
                subtree(root, &relative, skip, files)?;
            } else {
                files.push(Found::named(&relative));
            }
        } else if kind.is_dir() {
            embedded(root, &relative, &comps[1..], skip, files)?;
        }
    }
    Ok(())
}

/// Every file under `folder` (relative to `root`), except nested modules and `skip`.
fn subtree(
    root: &Utf8Path,
    folder: &Utf8Path,
    skip: &Utf8Path,
    files: &mut Vec<Found>,
) -> Result<()> {
    let dir = root.join(folder);
    for entry in dir.read_dir_utf8().at(&dir, "list")? {
        let entry = entry.at(&dir, "list")?;
        let path = entry.path();
        let relative = folder.join(entry.file_name());
        if entry.file_type().at(path, "read")?.is_dir() {
            let hidden = entry.file_name().starts_with('.') && folder.as_str().is_empty();
            if path != skip && !path.join("go.mod").is_file() && !hidden {
                subtree(root, &relative, skip, files)?;
            }
        } else {
            files.push(Found::named(&relative));
        }
    }
    Ok(())
}

/// Go's `path.Match` for one component; a malformed pattern matches everything
/// (go refuses it, so counting more is harmless).
fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length consumed incl. ']').
        let mut i = 0;
        let negate = p.first() == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let &lo = p.get(i)?;
            if lo == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = if lo == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                lo
            };
            i += 1;
            let mut hi = lo;
            if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&h| h != ']') {
                hi = p[i + 1];
                if hi == '\\' {
                    hi = *p.get(i + 2)?;
                    i += 1;
                }
                i += 2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        }
    }
    fn go(p: &[char], n: &[char]) -> Option<bool> {
        match p.first() {
            None => Some(n.is_empty()),
            Some('*') => {
                for skip in 0..=n.len() {
                    if go(&p[1..], &n[skip..])? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            Some('?') => Some(!n.is_empty() && go(&p[1..], &n[1..])?),
            Some('[') => {
                let Some(&c) = n.first() else {
                    class(&p[1..], ' ')?;
                    return Some(false);
                };
                let (ok, len) = class(&p[1..], c)?;
                Some(ok && go(&p[1 + len..], &n[1..])?)
            }
            Some('\\') => {
                let &lit = p.get(1)?;
                Some(n.first() == Some(&lit) && go(&p[2..], &n[1..])?)
            }
            Some(&lit) => Some(n.first() == Some(&lit) && go(&p[1..], &n[1..])?),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n).unwrap_or(true)
}

/// Reads a Go file's `//go:embed` patterns and whether it imports "C", line by
/// line with bounded memory; the answer is one line, entries split by U+001F.
#[derive(Default)]
struct Directives {
    line: Vec<u8>,
    overflow: bool,
    found: Vec<String>,
}

impl Directives {
    fn end_line(&mut self) {
        let overflow = std::mem::take(&mut self.overflow);
        let line = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if let Some(args) = text.strip_prefix("//go:embed") {
            if overflow || !(args.is_empty() || args.starts_with([' ', '\t'])) {
                self.found.push("embed-unreadable".into());
                return;
            }
            match embed_args(args) {
                Some(patterns) => self
                    .found
                    .extend(patterns.into_iter().map(|p| format!("embed {p}"))),
                None => self.found.push("embed-unreadable".into()),
            }
        } else if overflow && text.starts_with("//go:emb") {
            self.found.push("embed-unreadable".into());
        } else if text == "\"C\"" || (text.starts_with("import") && text.contains("\"C\"")) {
            self.found.push("cgo".into());
        }
    }
}

impl Scan for Directives {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.end_line();
            } else if self.line.len() < MAX_DIRECTIVE {
                self.line.push(b);
            } else {
                self.overflow = true;
            }
        }
    }

    fn finish(&mut self) -> String {
        self.end_line();
        let mut found = std::mem::take(&mut self.found);
        found.sort();
        found.dedup();
        found.join("\u{1f}")
    }
}

/// The patterns of a `//go:embed` line: space-separated, or quoted with `"` or
/// `` ` ``; `None` when they cannot be read plainly (escapes, an open quote).
fn embed_args(args: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = args.trim();
    while !rest.is_empty() {
        let (word, after) = match rest.chars().next()? {
            q @ ('"' | '`') => {
                let end = rest[1..].find(q)? + 1;
                let word = &rest[1..end];
                if q == '"' && word.contains('\\') {
                    return None;
                }
                (word, &rest[end + 1..])
            }
            _ => match rest.find([' ', '\t']) {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            },
        };
        if word.contains('\u{1f}') {
            return None;
        }
        out.push(word.to_string());
        rest = after.trim_start();
    }
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_local_replacements() {
        let go_mod = "module x\n\nreplace example.com/a => ../a\nreplace (\n\texample.com/b v1.0.0 => ./b // local\n\texample.com/c => example.com/d v1.2.0\n)\n";
        assert_eq!(local_replacements(go_mod), vec!["../a", "./b"]);
    }

    fn hasher_for(root: &Utf8Path) -> impl Fn() -> Result<String> + '_ {
        move || {
            let cache = crate::cache::Cache::open(root.join("target/cache")).unwrap();
            let mut h = KeyHasher::new("t");
            let mut stats = StatCache::open(&cache, "t");
            hash_module_sources(root, &[], &root.join("target"), &mut h, &mut stats)?;
            stats.save(&cache);
            Ok(h.finish())
        }
    }

    fn mkfifo(path: &Utf8Path) {
        let c = std::ffi::CString::new(path.as_str()).unwrap();
        assert_eq!(
            unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
            0,
            "mkfifo {path}"
        );
    }

    #[test]
    fn content_changes_change_the_hash_and_tests_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().into()).unwrap();
        std::fs::write(root.join("go.mod"), "module x\n").unwrap();
        std::fs::write(root.join("main.go"), "package main\n").unwrap();
        std::fs::create_dir(root.join(".git")).unwrap();
        let hash = hasher_for(&root);
        let first = hash().unwrap();
        std::fs::write(root.join("main_test.go"), "package main\n").unwrap();
        std::fs::write(root.join(".git/HEAD"), "x").unwrap();
        assert_eq!(hash().unwrap(), first);
        std::fs::write(root.join("main.go"), "package main\n\n").unwrap();
        assert_ne!(hash().unwrap(), first);
    }

    #[test]
    fn only_what_go_build_reads_counts() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().into()).unwrap();
        std::fs::write(root.join("go.mod"), "module x\n").unwrap();
        std::fs::create_dir_all(root.join("static/css")).unwrap();
        std::fs::create_dir_all(root.join("templates")).unwrap();
        std::fs::create_dir_all(root.join("internal/db")).unwrap();
        std::fs::write(
            root.join("main.go"),
            "package main\n\nimport _ \"embed\"\n\n//go:embed static \"templates/*.tmpl\"\nvar files string\n",
        )
        .unwrap();
        std::fs::write(root.join("static/css/site.css"), "a").unwrap();
        std::fs::write(root.join("templates/page.tmpl"), "a").unwrap();
        std::fs::write(root.join("templates/notes.txt"), "a").unwrap();
        std::fs::write(root.join("internal/db/db.go"), "package db\n").unwrap();
        std::fs::write(root.join("internal/db/schema.sql"), "a").unwrap();
        std::fs::write(root.join("dump.bin"), "a").unwrap();
        let hash = hasher_for(&root);
        let first = hash().unwrap();
        // Files no pattern names and no compiler reads: not hashed, never opened.
        for path in ["dump.bin", "templates/notes.txt", "internal/db/schema.sql"] {
            std::fs::write(root.join(path), "changed").unwrap();
            assert_eq!(hash().unwrap(), first, "{path}");
        }
        // FIFOs are never opened: outside the build's files, and even in an embedded folder.
        mkfifo(&root.join("pipe"));
        assert_eq!(hash().unwrap(), first);
        mkfifo(&root.join("static/pipe"));
        assert!(hash().is_ok());
        std::fs::remove_file(root.join("static/pipe")).unwrap();
        // Embedded files (a folder whole, a glob) and package sources count.
        let mut previous = first;
        for path in [
            "static/css/site.css",
            "templates/page.tmpl",
            "internal/db/db.go",
        ] {
            std::fs::write(root.join(path), "package db // changed\n").unwrap();
            let now = hash().unwrap();
            assert_ne!(now, previous, "{path}");
            previous = now;
        }
        // The same again from remembered records (no file read) gives the same key.
        assert_eq!(hash().unwrap(), previous);
        // A FIFO go would compile is an error, not a hang.
        mkfifo(&root.join("internal/db/gen.go"));
        let err = hash().unwrap_err().to_string();
        assert!(err.contains("gen.go") && err.contains("FIFO"), "{err}");
    }

    #[test]
    fn cgo_counts_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().into()).unwrap();
        std::fs::write(root.join("go.mod"), "module x\n").unwrap();
        std::fs::write(
            root.join("main.go"),
            "package main\n\n// #include \"inc/x.inc\"\nimport \"C\"\n",
        )
        .unwrap();
        std::fs::create_dir(root.join("inc")).unwrap();
        std::fs::write(root.join("inc/x.inc"), "a").unwrap();
        let hash = hasher_for(&root);
        let first = hash().unwrap();
        std::fs::write(root.join("inc/x.inc"), "b").unwrap();
        assert_ne!(hash().unwrap(), first);
    }

    #[test]
    fn embed_patterns_match_as_go_matches() {
        assert!(glob_match("*.tmpl", "a.tmpl"));
        assert!(!glob_match("*.tmpl", "a.txt"));
        assert!(glob_match("im?ge[0-9].png", "image1.png"));
        assert!(!glob_match("image[^0-9].png", "image1.png"));
        assert!(glob_match("\\*", "*"));
        assert!(glob_match("[", "anything"), "malformed: counts");
        assert_eq!(
            embed_args(" a b/c \"d e\" `f`").unwrap(),
            vec!["a", "b/c", "d e", "f"]
        );
        assert_eq!(embed_args(" \"a\\u0020b\""), None);
        let mut d = Directives::default();
        d.update(b"package a\n//go:embed all:x\n//go:embedded\nimport \"C\"\n");
        assert_eq!(d.finish(), "cgo\u{1f}embed all:x\u{1f}embed-unreadable");
    }
}
