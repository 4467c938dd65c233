//! Everything gopack asks git: an app's version, commit, date and `-dirty`
//! flag, scoped to the paths the app is built from.
//!
//! In a monorepo a commit elsewhere (another app, a Rust file, Cargo.toml)
//! must not give an app a new version, date or digest, so the history read
//! is `git log -1 -- <the app's inputs>`, in the repository that holds the
//! app's module folder (the workspace's, a submodule's, or one outside the
//! workspace). Versions follow Go's tag convention for nested modules: a
//! module in `services/api` is released by tags `services/api/vX.Y.Z`; a
//! repository-wide `vX.Y.Z` tag is the fallback.
//!
//! Every git run passes `--no-optional-locks`: gopack only reads, so it never
//! takes `.git/index.lock` (a user's `git commit` at the same time keeps working,
//! and a lock someone else holds never fails a pack).
//!
//! Cost: one `git status` per repository for a whole run ([`Changes`], over
//! the union of every app's inputs, partitioned by each app's), one or two
//! more git runs per app when the repository has tags; the repository, HEAD, its tags and its `origin` URL
//! are found by reading `.git` directly. History does not change under a
//! commit, so `git log`'s answer is remembered in the cache (`vcs/`) by
//! HEAD's commit and the pathspecs, and asked again only after HEAD moves.

use crate::cache::{Cache, KeyHasher};
use crate::config::confine::read_text;
use crate::process::Cmd;
use crate::toolchain::which_utf8;
use camino::{Utf8Path, Utf8PathBuf};

mod changes;
mod repository;

pub use changes::Changes;
pub use repository::Repository;

/// How many dirty files a warning names.
const NAMED_DIRTY_FILES: usize = 8;

/// What the history says about one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revision {
    /// `v1.2.0` (a tag on a commit with the app's current inputs),
    /// `v1.2.0-3-gabc1234` (commits after the nearest tag), the short hash of the
    /// app's last commit, or `dev` without history; `-dirty` appended when the
    /// app's inputs have uncommitted changes.
    pub version: String,
    /// The last commit that touched the app's inputs.
    pub commit: Option<String>,
    /// That commit's committer time (seconds since the epoch).
    pub time: Option<u64>,
    /// The app's input files with uncommitted changes, relative to the repository.
    pub dirty: Vec<String>,
    /// The `origin` remote's URL, as configured.
    pub origin: Option<String>,
    /// Why there is no history, when there is none (for a warning).
    pub missing: Option<String>,
}

impl Revision {
    /// The warnings a run shows for this revision: no history, or dirty files.
    pub fn warnings(&self, app: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(why) = &self.missing {
            warnings.push(format!(
                "{app}: {why}; version `dev`, dates at 1970-01-01 (set `version` or SOURCE_DATE_EPOCH to choose)"
            ));
        }
        if !self.dirty.is_empty() {
            let mut names: Vec<&str> = self
                .dirty
                .iter()
                .take(NAMED_DIRTY_FILES)
                .map(String::as_str)
                .collect();
            let more = self.dirty.len().saturating_sub(NAMED_DIRTY_FILES);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            names.sort();
            warnings.push(format!(
                "{app}: version `{}`: uncommitted changes in {}{more}",
                self.version,
                names.join(", ")
            ));
        }
        warnings
    }
}

/// Reads the revision of an app whose module folder is `module_dir` and which is
/// built from `inputs` (files and folders, absolute; the module folder among them).
/// With a `memo` cache, `git log`'s answer is remembered per HEAD commit.
pub fn revision(module_dir: &Utf8Path, inputs: &[Utf8PathBuf], memo: Option<&Cache>) -> Revision {
    revision_with(module_dir, inputs, memo, None)
}

/// [`revision`], taking the uncommitted files from `changes` (one `git status`
/// for the whole run) when it has read this app's repository.
pub fn revision_with(
    module_dir: &Utf8Path,
    inputs: &[Utf8PathBuf],
    memo: Option<&Cache>,
    changes: Option<&Changes>,
) -> Revision {
    let Some(repo) = Repository::find(module_dir) else {
        return Revision {
            version: "dev".into(),
            missing: Some(format!("{module_dir} is in no git repository")),
            ..Revision::default()
        };
    };
    let Some(git) = which_utf8("git") else {
        return Revision {
            version: "dev".into(),
            missing: Some(format!(
                "{} is a git repository, and git is not installed (apt-get install git)",
                repo.root
            )),
            origin: repo.origin(),
            ..Revision::default()
        };
    };
    let specs = repo.pathspecs(inputs);
    let run = |args: &[&str]| -> Option<String> {
        // `--no-optional-locks`: `git status` would otherwise refresh the index
        // under `.git/index.lock`, and a user's own git command run meanwhile fails.
        let text = Cmd::new("git", &git)
            .arg("--no-optional-locks")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .args(args)
            .query()
            .dir(&repo.root)
            .read()
            .ok()?;
        Some(text)
    };

    let memo_key = memo.and_then(|_| repo.log_memo_key(&specs));
    let remembered = memo
        .zip(memo_key.as_deref())
        .and_then(|(cache, key)| read_text(&cache.get(crate::cache::Kind::Vcs, key)?).ok())
        .and_then(|text| parse_log(&text).map(|last| (last, text)));
    let last = match remembered {
        Some((last, _)) => last,
        None => {
            let mut log = vec!["log", "-1", "--format=%H %ct", "--"];
            log.extend(specs.iter().map(String::as_str));
            let answer = run(&log);
            let last = answer.as_deref().and_then(|text| parse_log(text).flatten());
            // An empty answer (no commit touches the inputs yet) is remembered too;
            // a failed git run is not.
            if let (Some(cache), Some(key), Some(text)) = (memo, &memo_key, &answer) {
                if parse_log(text).is_some() {
                    let _ = cache.put(crate::cache::Kind::Vcs, key, text.as_bytes());
                }
            }
            last
        }
    };

    let dirty = changes
        .and_then(|changes| changes.under(&repo, &specs))
        .or_else(|| repo.status(&git, &specs))
        .unwrap_or_default();

    let prefix = repo.prefix(module_dir);
    let mut version = match &last {
        None => "dev".to_string(),
        Some((commit, _)) => {
            // Tag names come from .git itself: no tags in the module's convention, no git run.
            let names = repo.tag_names();
            let nested =
                !prefix.is_empty() && best_tag(&prefix, nested_only(&prefix, &names)).is_some();
            let wide = best_tag(
                "",
                names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !n.contains('/')),
            )
            .is_some();
            let tagged = if nested || wide {
                run(&["tag", "--list", "--contains", commit, "--merged", "HEAD"])
                    .and_then(|tags| best_tag(&prefix, tags.lines()))
                    .or_else(|| describe(&run, &prefix, commit, nested, wide))
            } else {
                None
            };
            tagged.unwrap_or_else(|| commit.chars().take(7).collect())
        }
    };
    // Before the first commit every file is uncommitted: the version is `dev`,
    // and the one warning says there is no commit yet.
    let dirty = if last.is_some() { dirty } else { Vec::new() };
    if !dirty.is_empty() {
        version.push_str("-dirty");
    }
    let missing = last.is_none().then(|| {
        format!(
            "{} has no commit in {} yet",
            if prefix.is_empty() { "." } else { &prefix },
            repo.root
        )
    });
    Revision {
        version,
        commit: last.as_ref().map(|(hash, _)| hash.clone()),
        time: last.map(|(_, time)| time),
        dirty,
        origin: repo.origin(),
        missing,
    }
}

/// `git log -1 --format=%H %ct`'s answer: `Some(None)` when no commit touches
/// the paths (empty output), `None` when the text is not such an answer.
fn parse_log(text: &str) -> Option<Option<(String, u64)>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(None);
    }
    let (hash, time) = text.split_once(' ')?;
    let hex =
        |h: &str| (h.len() == 40 || h.len() == 64) && h.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(hash) && !time.contains(' ')).then_some(())?;
    Some(Some((hash.to_string(), time.parse::<u64>().ok()?)))
}

/// The nearest tag before `commit` in the module's convention, with the extra
/// commits (`v1.2.0-3-gabc1234`), or None.
fn describe(
    run: &dyn Fn(&[&str]) -> Option<String>,
    prefix: &str,
    commit: &str,
    nested: bool,
    wide: bool,
) -> Option<String> {
    let mut patterns = Vec::new();
    if nested {
        patterns.push(format!("{prefix}/v[0-9]*"));
    }
    if wide {
        patterns.push("v[0-9]*".to_string());
    }
    patterns.iter().find_map(|pattern| {
        let text = run(&[
            "describe",
            "--tags",
            "--abbrev=7",
            "--match",
            pattern,
            commit,
        ])?;
        let text = text.trim();
        let text = if prefix.is_empty() {
            text
        } else {
            text.strip_prefix(&format!("{prefix}/")).unwrap_or(text)
        };
        (!text.is_empty()).then(|| text.to_string())
    })
}

/// The names among `names` in the module folder's convention (`<prefix>/...`).
fn nested_only<'n>(prefix: &'n str, names: &'n [String]) -> impl Iterator<Item = &'n str> {
    names.iter().map(String::as_str).filter(move |name| {
        name.rsplit_once('/')
            .is_some_and(|(folder, _)| folder == prefix)
    })
}

/// Of tags on commits that hold the app's current inputs, the highest version
/// for the module's folder (`<prefix>/vX.Y.Z`), else the highest repository-wide `vX.Y.Z`.
pub fn best_tag<'t>(prefix: &str, tags: impl Iterator<Item = &'t str>) -> Option<String> {
    let mut nested: Vec<(Vec<u64>, String)> = Vec::new();
    let mut wide: Vec<(Vec<u64>, String)> = Vec::new();
    for tag in tags.map(str::trim) {
        let (rest, list) = match tag.rsplit_once('/') {
            Some((folder, rest)) if folder == prefix => (rest, &mut nested),
            Some(_) => continue,
            None => (tag, &mut wide),
        };
        if let Some(key) = semver_key(rest) {
            list.push((key, rest.to_string()));
        }
    }
    let pick = |mut list: Vec<(Vec<u64>, String)>| {
        list.sort();
        list.pop().map(|(_, tag)| tag)
    };
    pick(nested).or_else(|| pick(wide))
}

/// `v1.2.3` (pre-releases sort before their release) → a sort key.
fn semver_key(tag: &str) -> Option<Vec<u64>> {
    let rest = tag.strip_prefix('v')?;
    let (core, pre) = match rest.split_once(['-', '+']) {
        Some((core, _)) => (core, 0),
        None => (rest, 1),
    };
    let mut key: Vec<u64> = core
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if key.len() != 3 {
        return None;
    }
    key.push(pre);
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::repository::parse_status;
    use super::*;

    #[test]
    fn picks_the_module_tag_then_the_repository_tag() {
        let tags = [
            "v1.0.0",
            "services/a/v1.2.0",
            "services/a/v1.10.0-rc.1",
            "services/b/v9.0.0",
        ];
        assert_eq!(
            best_tag("services/a", tags.iter().copied()).as_deref(),
            Some("v1.10.0-rc.1")
        );
        let tags = [
            "services/a/v1.2.0",
            "services/a/v1.2.0-rc.1",
            "services/ab/v3.0.0",
        ];
        assert_eq!(
            best_tag("services/a", tags.iter().copied()).as_deref(),
            Some("v1.2.0")
        );
        assert_eq!(
            best_tag("services/c", ["v0.3.1", "nightly"].into_iter()).as_deref(),
            Some("v0.3.1")
        );
        assert_eq!(best_tag("", ["release-1"].into_iter()), None);
    }

    #[test]
    fn partitions_one_status_by_each_apps_inputs() {
        let root = Utf8PathBuf::from("/repo");
        let repo = Repository {
            root: root.clone(),
            git_dir: root.join(".git"),
        };
        let files = ["apps/a/main.go", "apps/ab/main.go", "go.work", "apps/a"];
        let changes = Changes {
            by_root: [(root.clone(), Some(files.map(String::from).to_vec()))].into(),
        };
        let a = repo.pathspecs(&[root.join("apps/a"), root.join("go.work")]);
        assert_eq!(
            changes.under(&repo, &a).unwrap(),
            ["apps/a/main.go", "go.work", "apps/a"]
        );
        let ab = repo.pathspecs(&[root.join("apps/ab")]);
        assert_eq!(changes.under(&repo, &ab).unwrap(), ["apps/ab/main.go"]);
        assert_eq!(
            changes
                .under(&repo, &repo.pathspecs(std::slice::from_ref(&root)))
                .unwrap()
                .len(),
            4
        );
        let other = Repository {
            root: Utf8PathBuf::from("/other"),
            git_dir: Utf8PathBuf::from("/other/.git"),
        };
        assert_eq!(
            changes.under(&other, &ab),
            None,
            "not read: asked on its own"
        );
        let mut changes = changes;
        changes.add(&root, ["apps/ab/other.go".to_string()]);
        assert_eq!(
            changes.under(&repo, &ab).unwrap(),
            ["apps/ab/main.go", "apps/ab/other.go"]
        );
    }

    #[test]
    fn reads_status_lines() {
        let text =
            " M services/b/main.go\0?? services/b/new.go\0R  services/b/x.go\0services/b/old.go\0";
        assert_eq!(
            parse_status(text),
            vec!["services/b/main.go", "services/b/new.go", "services/b/x.go"]
        );
    }

    #[test]
    fn finds_the_repository_and_its_origin() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("services/a")).unwrap();
        std::fs::write(
            root.join(".git/config"),
            "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = git@github.com:acme/mono.git\n",
        )
        .unwrap();
        let repo = Repository::find(&root.join("services/a")).unwrap();
        assert_eq!(repo.root, root);
        assert_eq!(repo.prefix(&root.join("services/a")), "services/a");
        assert_eq!(
            repo.origin().as_deref(),
            Some("git@github.com:acme/mono.git")
        );
        assert_eq!(
            repo.pathspecs(&[
                root.join("services/a"),
                root.join("services/a/../lib"),
                "/elsewhere".into()
            ]),
            vec![":(literal)services/a", ":(literal)services/lib"]
        );
        assert!(repo.tag_names().is_empty());
        std::fs::create_dir_all(root.join(".git/refs/tags/services/a")).unwrap();
        std::fs::write(
            root.join(".git/refs/tags/services/a/v1.2.0"),
            "0".repeat(40),
        )
        .unwrap();
        std::fs::write(
            root.join(".git/packed-refs"),
            format!(
                "# pack-refs with: peeled\n{0} refs/tags/v0.1.0\n^{0}\n{0} refs/heads/main\n",
                "1".repeat(40)
            ),
        )
        .unwrap();
        assert_eq!(repo.tag_names(), vec!["services/a/v1.2.0", "v0.1.0"]);
    }

    #[test]
    fn reads_head_and_keys_the_log_memo_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let git = root.join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(
            git.join("packed-refs"),
            format!("# pack-refs\n{a} refs/heads/main\n"),
        )
        .unwrap();
        let repo = Repository::find(&root).unwrap();
        assert_eq!(repo.head_commit(), Some(a.clone()));
        let specs = vec![":(literal)app".to_string()];
        let packed = repo.log_memo_key(&specs).unwrap();
        // A loose ref wins over packed-refs; a new commit is a new key.
        std::fs::write(git.join("refs/heads/main"), format!("{b}\n")).unwrap();
        assert_eq!(repo.head_commit(), Some(b.clone()));
        let loose = repo.log_memo_key(&specs).unwrap();
        assert_ne!(packed, loose);
        assert_ne!(loose, repo.log_memo_key(&[".".to_string()]).unwrap());
        // Deepening a shallow clone changes which history git walks.
        std::fs::write(git.join("shallow"), format!("{a}\n")).unwrap();
        assert_ne!(loose, repo.log_memo_key(&specs).unwrap());
        // Detached HEAD; then a ref outside refs/ and replace refs are not remembered.
        std::fs::write(git.join("HEAD"), format!("{a}\n")).unwrap();
        assert_eq!(repo.head_commit(), Some(a));
        std::fs::write(git.join("HEAD"), "ref: ../../etc/passwd\n").unwrap();
        assert_eq!(repo.head_commit(), None);
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::create_dir_all(git.join("refs/replace")).unwrap();
        std::fs::write(git.join("refs/replace").join(&b), format!("{b}\n")).unwrap();
        assert_eq!(repo.log_memo_key(&specs), None);
    }

    #[test]
    fn parses_logs_answers() {
        let hash = "c".repeat(40);
        assert_eq!(parse_log(""), Some(None));
        assert_eq!(
            parse_log(&format!("{hash} 1700000000\n")),
            Some(Some((hash, 1_700_000_000)))
        );
        assert_eq!(parse_log("garbage"), None);
        assert_eq!(parse_log("zz 12"), None);
    }
}
