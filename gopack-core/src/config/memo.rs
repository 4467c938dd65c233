//! `cargo metadata`'s answer, remembered: the three things gopack uses of it
//! (the workspace root, the target folder, the `gopack` table) are kept in a
//! sealed record and reused while nothing cargo reads for them changed, so a
//! run where nothing changed does not start cargo.
//!
//! The key is everything cargo's answer depends on, read before cargo runs:
//! how gopack asked (the current folder, `--manifest-path`), the cargo
//! program (its path and file identity), the environment cargo reads (every
//! `CARGO*` variable, `RUSTUP_TOOLCHAIN`, `RUSTUP_HOME`, `HOME`), and the
//! identity ([`Identity`]: size, mtime and ctime in ns, inode, device, mode)
//! or absence of every file cargo (or rustup's proxy) would read: `Cargo.toml`,
//! `.cargo/config`, `.cargo/config.toml`, `rust-toolchain` and
//! `rust-toolchain.toml` in the start folder and every folder above it (the
//! current folder's and the manifest's), cargo's home config, rustup's
//! `settings.toml`; then, once the answer names them, the workspace root's
//! `Cargo.toml` and every member's. A file changed within the racy window
//! (see [`crate::cache::stat`]) makes the answer not remembered: cargo runs
//! every time until it settles.
//!
//! Where it lives: in the cache of the target folder it names, which is not
//! known before cargo answers, so it is looked for where that target folder
//! would be: `$CARGO_TARGET_DIR` (else `$CARGO_BUILD_TARGET_DIR`) when set,
//! else `target/` of the nearest folder at or above the start folder that has
//! a `Cargo.toml`. Only a `gopack/cache` folder that is already there is used
//! (a memo never creates folders, and never writes into the source tree
//! outside `target/`), and a record is used only when the target folder it
//! names is the one it was found in. Elsewhere (a target folder set in a
//! cargo config, a `cache-dir` outside the target) cargo simply runs.

use crate::cache::stat::Identity;
use crate::cache::{Cache, KeyHasher, Kind, Sealed};
use crate::environment;
use crate::error::Result;
use camino::{Utf8Path, Utf8PathBuf};
use std::ffi::OsString;
use std::time::{SystemTime, UNIX_EPOCH};

/// The first line of a record; another one is not read.
const HEADER: &str = "gopack-cargo-metadata v1";

/// The largest record read: it names a few paths and the `gopack` table.
const MAX_RECORD: u64 = 1 << 20;

/// The files a rustup proxy or cargo reads in each folder from the start up.
const PER_FOLDER: &[&str] = &[
    "Cargo.toml",
    ".cargo/config",
    ".cargo/config.toml",
    "rust-toolchain",
    "rust-toolchain.toml",
];

/// What gopack uses of `cargo metadata`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Answer {
    /// The workspace root.
    pub root: Utf8PathBuf,
    /// Cargo's target folder.
    pub target_dir: Utf8PathBuf,
    /// `workspace.metadata.gopack`, if there is one.
    pub gopack: Option<serde_json::Value>,
    /// The manifests cargo read that the key does not name before the answer:
    /// the root's and every member's.
    manifests: Vec<Utf8PathBuf>,
}

impl Answer {
    fn from_metadata(metadata: cargo_metadata::Metadata) -> Answer {
        let root = metadata.workspace_root.clone();
        let mut manifests: Vec<Utf8PathBuf> = metadata
            .packages
            .iter()
            .map(|p| p.manifest_path.clone())
            .collect();
        manifests.push(root.join("Cargo.toml"));
        manifests.sort();
        manifests.dedup();
        Answer {
            gopack: metadata.workspace_metadata.get("gopack").cloned(),
            root,
            target_dir: metadata.target_directory,
            manifests,
        }
    }
}

/// `cargo metadata --no-deps` for the workspace around the current folder (or
/// `manifest_path`): remembered when a target folder's cache is there to keep
/// it, asked of cargo when anything it depends on changed.
pub(super) fn cargo_metadata(manifest_path: Option<&Utf8Path>) -> Result<Answer> {
    let program = crate::process::cargo_program()?;
    let probe = Probe::new(&program, manifest_path);
    if let Some(answer) = probe.as_ref().and_then(Probe::recall) {
        return Ok(answer);
    }
    let answer = Answer::from_metadata(crate::process::cargo_metadata(&program, manifest_path)?);
    if let Some(probe) = &probe {
        probe.remember(&answer);
    }
    Ok(answer)
}

/// What is known before cargo answers: where a record would be, its name,
/// and the digest of every input read so far.
#[derive(Debug)]
struct Probe {
    /// The target folder the record is kept in (and must name).
    target: Utf8PathBuf,
    /// The record's name: how gopack asked, and which cargo.
    name: String,
    /// The digest of the inputs known before the answer.
    before: String,
    /// When this run started to look (for the racy rule).
    started_ns: i128,
}

impl Probe {
    /// `None` when nothing can be remembered here: no target folder's cache
    /// to keep it in, an input that cannot be read, or one changed too recently.
    fn new(program: &Utf8Path, manifest_path: Option<&Utf8Path>) -> Option<Probe> {
        let started_ns = now_ns();
        let cwd = Utf8PathBuf::from_path_buf(std::env::current_dir().ok()?).ok()?;
        let start = match manifest_path {
            Some(manifest) => cwd.join(manifest).parent()?.to_path_buf(),
            None => cwd.clone(),
        };
        let env = cargo_environment();
        let target_env = ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
            .into_iter()
            .find_map(|name| env.iter().find(|(n, _)| n == name))
            .map(|(_, value)| value.clone().unwrap_or_default());
        let target = target_folder(&cwd, &start, target_env)?;
        let home = |var: &str, default: &str| match env_value(&env, var) {
            Some(dir) => Some(cwd.join(dir)),
            None => env_value(&env, "HOME").map(|home| Utf8PathBuf::from(home).join(default)),
        };
        let files = watched_files(
            &cwd,
            manifest_path.map(|m| cwd.join(m)).as_deref(),
            &home("CARGO_HOME", ".cargo")?,
            &home("RUSTUP_HOME", ".rustup")?,
        );
        let program = program_identity(&cwd, program, started_ns)?;
        let asked = [
            ("cwd", cwd.to_string()),
            (
                "manifest-path",
                manifest_path.map(|m| m.to_string()).unwrap_or_default(),
            ),
        ];
        let stats = identities(&files, started_ns)?;
        Some(Probe {
            target,
            name: KeyHasher::new("cargo-metadata-name/v1")
                .text("cwd", asked[0].1.as_str())
                .text("manifest-path", asked[1].1.as_str())
                .text("program", program.0.as_str())
                .finish(),
            before: key_before(&asked, &program, &env, &stats),
            started_ns,
        })
    }

    /// The target folder's cache, only if it is there (never created).
    fn cache(&self) -> Option<Cache> {
        Cache::existing(self.target.join("gopack").join("cache"))
    }

    /// The remembered answer, when its inputs are all unchanged.
    fn recall(&self) -> Option<Answer> {
        let cache = self.cache()?;
        let path = cache.entry_path(Kind::Tools, &self.name);
        // Bounded before it is read: the record is input others may write.
        if std::fs::symlink_metadata(&path).ok()?.len() > MAX_RECORD {
            return None;
        }
        let Sealed::Intact(bytes) = cache.get_sealed(Kind::Tools, &self.name) else {
            return None;
        };
        let (key, answer) = parse(std::str::from_utf8(&bytes).ok()?)?;
        if answer.target_dir != self.target {
            return None;
        }
        let after = identities(&answer.manifests, self.started_ns)?;
        (key == key_after(&self.before, &after)).then_some(answer)
    }

    /// Keeps `answer` when it names the target folder it would be found in
    /// next time and the files it names are settled. Best effort: a record
    /// not written only costs a `cargo metadata` next run.
    fn remember(&self, answer: &Answer) {
        if answer.target_dir != self.target {
            return;
        }
        let Some(after) = identities(&answer.manifests, self.started_ns) else {
            return;
        };
        let Some(text) = render(&key_after(&self.before, &after), answer) else {
            return;
        };
        if let Some(cache) = self.cache() {
            let _ = cache.put_sealed(Kind::Tools, &self.name, text.as_bytes());
        }
    }
}

/// Where a record is looked for and kept: the target folder cargo would name
/// when nothing in a cargo config moves it, if its `gopack/cache` is there.
fn target_folder(cwd: &Utf8Path, start: &Utf8Path, env: Option<OsString>) -> Option<Utf8PathBuf> {
    let has_cache = |target: &Utf8Path| target.join("gopack/cache").is_dir();
    if let Some(dir) = env {
        let dir = Utf8PathBuf::from(dir.into_string().ok()?);
        let target = cwd.join(dir);
        return (!target.as_str().is_empty() && has_cache(&target)).then_some(target);
    }
    start
        .ancestors()
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .map(|dir| dir.join("target"))
        .find(|target| has_cache(target))
}

/// The environment cargo (and a rustup proxy) reads: every `CARGO*`
/// variable, `RUSTUP_TOOLCHAIN`, `RUSTUP_HOME` and `HOME`, sorted by name.
fn cargo_environment() -> Vec<(OsString, Option<OsString>)> {
    let mut env: Vec<(OsString, Option<OsString>)> = environment::FAMILIES
        .iter()
        .flat_map(|prefix| environment::vars_with_prefix(prefix))
        .map(|(name, value)| (name, Some(value)))
        .collect();
    for name in ["CARGO", "RUSTUP_TOOLCHAIN", "RUSTUP_HOME", "HOME"] {
        env.push((name.into(), environment::var_os(name)));
    }
    env.sort();
    env
}

fn env_value<'e>(env: &'e [(OsString, Option<OsString>)], name: &str) -> Option<&'e str> {
    env.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, value)| value.as_ref()?.to_str())
        .filter(|value| !value.is_empty())
}

/// The files whose identity (or absence) is part of the key before cargo
/// answers, sorted: [`PER_FOLDER`] in every folder from the current folder
/// and from the manifest's folder up to `/`, the manifest itself, cargo's
/// home config and rustup's settings.
fn watched_files(
    cwd: &Utf8Path,
    manifest: Option<&Utf8Path>,
    cargo_home: &Utf8Path,
    rustup_home: &Utf8Path,
) -> Vec<Utf8PathBuf> {
    let mut files = Vec::new();
    let starts = [Some(cwd), manifest.and_then(Utf8Path::parent)];
    for dir in starts.into_iter().flatten().flat_map(Utf8Path::ancestors) {
        files.extend(PER_FOLDER.iter().map(|name| dir.join(name)));
    }
    files.extend(manifest.map(Utf8Path::to_path_buf));
    files.push(cargo_home.join("config"));
    files.push(cargo_home.join("config.toml"));
    files.push(rustup_home.join("settings.toml"));
    files.sort();
    files.dedup();
    files
}

/// Each file's identity, `None` for an absent one; `None` overall when one
/// cannot be read for another reason or changed too recently to be trusted.
fn identities(
    files: &[Utf8PathBuf],
    started_ns: i128,
) -> Option<Vec<(&Utf8Path, Option<Identity>)>> {
    files
        .iter()
        .map(|path| match std::fs::metadata(path) {
            Ok(meta) => {
                let identity = Identity::of(&meta);
                (!identity.racy(started_ns)).then_some((path.as_path(), Some(identity)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some((path.as_path(), None)),
            // A file in the way of a folder: nothing to read there.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Some((path.as_path(), None)),
            Err(_) => None,
        })
        .collect()
}

/// The cargo program's path (as named), its real path and its identity.
fn program_identity(
    cwd: &Utf8Path,
    program: &Utf8Path,
    started_ns: i128,
) -> Option<(Utf8PathBuf, Utf8PathBuf, Identity)> {
    let real = std::fs::canonicalize(cwd.join(program)).ok()?;
    let real = Utf8PathBuf::from_path_buf(real).ok()?;
    let identity = Identity::of(&std::fs::metadata(&real).ok()?);
    (!identity.racy(started_ns)).then(|| (program.to_path_buf(), real, identity))
}

/// The digest of the inputs known before cargo answers.
fn key_before(
    asked: &[(&str, String)],
    program: &(Utf8PathBuf, Utf8PathBuf, Identity),
    env: &[(OsString, Option<OsString>)],
    files: &[(&Utf8Path, Option<Identity>)],
) -> String {
    let mut key = KeyHasher::new("cargo-metadata/v1");
    for (name, value) in asked {
        key.text(name, value);
    }
    key.text("program", program.0.as_str())
        .text("program-real", program.1.as_str())
        .text("program-identity", &format!("{:?}", program.2));
    for (name, value) in env {
        let value = match value {
            Some(value) => [b"=".as_slice(), value.as_encoded_bytes()].concat(),
            None => b"unset".to_vec(),
        };
        key.field("env", name.as_encoded_bytes())
            .field("value", &value);
    }
    add_files(&mut key, files);
    key.finish()
}

/// The whole key: [`key_before`] and the files the answer named.
fn key_after(before: &str, files: &[(&Utf8Path, Option<Identity>)]) -> String {
    let mut key = KeyHasher::new("cargo-metadata-answer/v1");
    key.text("before", before);
    add_files(&mut key, files);
    key.finish()
}

fn add_files(key: &mut KeyHasher, files: &[(&Utf8Path, Option<Identity>)]) {
    for (path, identity) in files {
        key.text("file", path.as_str());
        key.text(
            "identity",
            &identity.map_or_else(|| "absent".to_string(), |id| format!("{id:?}")),
        );
    }
}

/// The record's text; `None` when a path cannot be written on one line or
/// the record would be larger than one is read.
fn render(key: &str, answer: &Answer) -> Option<String> {
    let paths = [&answer.root, &answer.target_dir]
        .into_iter()
        .chain(&answer.manifests);
    if paths.into_iter().any(|p| p.as_str().contains(['\n', '\r'])) {
        return None;
    }
    let gopack = serde_json::to_string(&answer.gopack).ok()?;
    let mut text = format!(
        "{HEADER}\nkey {key}\nroot {}\ntarget {}\ngopack {gopack}\n",
        answer.root, answer.target_dir
    );
    for manifest in &answer.manifests {
        text.push_str(&format!("manifest {manifest}\n"));
    }
    // The seal's line is added in front.
    (text.len() as u64 + 128 <= MAX_RECORD).then_some(text)
}

/// A record's key and answer; `None` for anything but a well-formed record.
fn parse(text: &str) -> Option<(String, Answer)> {
    let mut lines = text.strip_suffix('\n')?.split('\n');
    if lines.next()? != HEADER {
        return None;
    }
    let key = lines.next()?.strip_prefix("key ")?;
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let absolute = |line: Option<&str>, prefix: &str| {
        let path = Utf8PathBuf::from(line?.strip_prefix(prefix)?);
        path.is_absolute().then_some(path)
    };
    let root = absolute(lines.next(), "root ")?;
    let target_dir = absolute(lines.next(), "target ")?;
    let gopack = serde_json::from_str(lines.next()?.strip_prefix("gopack ")?).ok()?;
    let manifests = lines
        .map(|line| absolute(Some(line), "manifest "))
        .collect::<Option<Vec<_>>>()?;
    if !manifests.contains(&root.join("Cargo.toml")) {
        return None;
    }
    Some((
        key.to_string(),
        Answer {
            root,
            target_dir,
            gopack,
            manifests,
        },
    ))
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        (dir, root)
    }

    #[test]
    fn every_folder_up_to_the_root_and_both_homes_are_watched() {
        let files = watched_files(
            Utf8Path::new("/w/a/b"),
            Some(Utf8Path::new("/m/Cargo.toml")),
            Utf8Path::new("/h/.cargo"),
            Utf8Path::new("/h/.rustup"),
        );
        for dir in ["/w/a/b", "/w/a", "/w", "/", "/m"] {
            for name in PER_FOLDER {
                assert!(
                    files.contains(&Utf8Path::new(dir).join(name)),
                    "{dir}/{name} missing from {files:?}"
                );
            }
        }
        for file in [
            "/m/Cargo.toml",
            "/h/.cargo/config",
            "/h/.cargo/config.toml",
            "/h/.rustup/settings.toml",
        ] {
            assert!(files.contains(&Utf8PathBuf::from(file)), "{file}");
        }
        assert_eq!(files.len(), 5 * 5 + 3, "listed once each: {files:?}");
    }

    #[test]
    fn every_part_of_the_key_changes_it() {
        let (_keep, root) = dir();
        let program = root.join("cargo");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        let long_ago = now_ns() + 1_000_000 * 1_000_000_000;
        let program = program_identity(&root, &program, long_ago).unwrap();
        let asked = vec![("cwd", root.to_string()), ("manifest-path", String::new())];
        let env: Vec<(OsString, Option<OsString>)> = vec![
            ("CARGO_HOME".into(), Some("/h".into())),
            ("HOME".into(), None),
        ];
        let config = root.join(".cargo/config.toml");
        let absent = [(config.as_path(), None)];
        let base = key_before(&asked, &program, &env, &absent);
        assert_eq!(base, key_before(&asked, &program, &env, &absent));

        // How gopack asked.
        let mut other = asked.clone();
        other[0].1.push_str("/member");
        assert_ne!(base, key_before(&other, &program, &env, &absent));
        let mut other = asked.clone();
        other[1].1 = "Cargo.toml".into();
        assert_ne!(base, key_before(&other, &program, &env, &absent));
        // The program: another path, another file behind the same path.
        let mut moved = program.clone();
        moved.0 = root.join("cargo2");
        assert_ne!(base, key_before(&asked, &moved, &env, &absent));
        std::fs::write(root.join("cargo"), "#!/bin/sh\necho\n").unwrap();
        let edited = program_identity(&root, &program.0, long_ago).unwrap();
        assert_ne!(base, key_before(&asked, &edited, &env, &absent));
        // The environment: a value changed, a variable unset, one more set.
        for env in [
            vec![
                ("CARGO_HOME".into(), Some("/g".into())),
                ("HOME".into(), None),
            ],
            vec![
                ("CARGO_HOME".into(), Some("/h".into())),
                ("HOME".into(), Some("".into())),
            ],
            vec![("CARGO_HOME".into(), Some("/h".into()))],
            vec![
                ("CARGO_HOME".into(), Some("/h".into())),
                ("CARGO_TARGET_DIR".into(), Some("/t".into())),
                ("HOME".into(), None),
            ],
        ] {
            assert_ne!(base, key_before(&asked, &program, &env, &absent), "{env:?}");
        }
        // A file appearing, then changing.
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "[build]\n").unwrap();
        let present = identities(std::slice::from_ref(&config), long_ago).unwrap();
        let with_file = key_before(&asked, &program, &env, &present);
        assert_ne!(base, with_file);
        std::fs::write(&config, "[alias]\n").unwrap();
        let changed = identities(std::slice::from_ref(&config), long_ago).unwrap();
        assert_ne!(with_file, key_before(&asked, &program, &env, &changed));
        // The answer's files, on top.
        assert_ne!(key_after(&base, &absent), key_after(&base, &present));
        assert_ne!(key_after(&base, &absent), key_after(&with_file, &absent));
    }

    #[test]
    fn a_file_changed_just_now_is_not_trusted() {
        let (_keep, root) = dir();
        let file = root.join("Cargo.toml");
        std::fs::write(&file, "[workspace]\n").unwrap();
        assert!(identities(std::slice::from_ref(&file), now_ns()).is_none());
        let later = now_ns() + 10 * 1_000_000_000;
        assert!(identities(std::slice::from_ref(&file), later).is_some());
        // A path through a file is absent, not an error.
        let through = root.join("Cargo.toml/.cargo/config");
        assert_eq!(
            identities(std::slice::from_ref(&through), later).unwrap()[0].1,
            None
        );
    }

    #[test]
    fn records_round_trip_and_anything_else_is_refused() {
        let answer = Answer {
            root: "/w".into(),
            target_dir: "/w/target".into(),
            gopack: Some(serde_json::json!({"apps": [{"name": "a", "path": "a"}]})),
            manifests: vec!["/w/Cargo.toml".into(), "/w/m/Cargo.toml".into()],
        };
        let key = "ab".repeat(32);
        let text = render(&key, &answer).unwrap();
        assert_eq!(parse(&text), Some((key.clone(), answer.clone())));
        let none = Answer {
            gopack: None,
            ..answer.clone()
        };
        assert_eq!(parse(&render(&key, &none).unwrap()).unwrap().1, none);
        for bad in [
            text.replacen(HEADER, "gopack-cargo-metadata v0", 1),
            text.replacen("key ab", "key zz", 1),
            text.replacen("root /w", "root w", 1),
            text.replacen("gopack {", "gopack {{", 1),
            text.replacen("manifest /w/Cargo.toml\n", "", 1),
            text.replacen("manifest /w/m", "manifest m", 1),
            text.trim_end().to_string(),
            format!("{text}extra\n"),
            String::new(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
        let newline = Answer {
            root: "/w\nx".into(),
            ..answer
        };
        assert_eq!(render(&key, &newline), None);
    }
}
