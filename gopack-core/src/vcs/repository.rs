//! The repository that holds a module, read from `.git` directly where that
//! is cheaper than a git process (HEAD, tags, `origin`), and asked through
//! git (`--no-optional-locks`, time-limited) for the rest.

use super::*;

/// Paths from `git status --porcelain -z` (renames give two; the new one is kept).
pub(super) fn parse_status(text: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut fields = text.split('\0');
    while let Some(entry) = fields.next() {
        if entry.len() < 4 {
            continue;
        }
        let (code, path) = entry.split_at(3);
        files.push(path.to_string());
        if code.starts_with('R') || code.starts_with('C') {
            fields.next();
        }
    }
    files.sort();
    files.dedup();
    files
}

/// A git repository found by its `.git` (a folder, or a file in submodules and worktrees).
#[derive(Debug, Clone)]
pub struct Repository {
    /// The top folder of the working tree.
    pub root: Utf8PathBuf,
    /// The git folder (`.git`, or where a `.git` file points).
    pub(super) git_dir: Utf8PathBuf,
}

impl Repository {
    /// The repository whose working tree holds `dir`, if any.
    pub fn find(dir: &Utf8Path) -> Option<Repository> {
        for folder in dir.ancestors() {
            let dot_git = folder.join(".git");
            if dot_git.is_dir() {
                return Some(Repository {
                    root: folder.to_path_buf(),
                    git_dir: dot_git,
                });
            }
            if dot_git.is_file() {
                let text = read_text(&dot_git).ok()?;
                let target = text.trim().strip_prefix("gitdir:")?.trim();
                return Some(Repository {
                    root: folder.to_path_buf(),
                    git_dir: crate::gomod::normalize(&folder.join(target)),
                });
            }
        }
        None
    }

    /// The uncommitted files under `specs` (`git status`, untracked files
    /// included), relative to the top folder; `None` when git fails.
    pub fn status(&self, git: &Utf8Path, specs: &[String]) -> Option<Vec<String>> {
        // `--no-optional-locks`: `git status` would otherwise refresh the index
        // under `.git/index.lock`, and a user's own git command run meanwhile fails.
        let text = Cmd::new("git", git)
            .arg("--no-optional-locks")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .args(["status", "--porcelain", "-z", "--untracked-files=all", "--"])
            .args(specs)
            .query()
            .dir(&self.root)
            .read()
            .ok()?;
        Some(parse_status(&text))
    }

    /// `dir` relative to the repository's top folder (`""` for the top folder).
    pub fn prefix(&self, dir: &Utf8Path) -> String {
        dir.strip_prefix(&self.root)
            .map(|p| p.as_str().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// Pathspecs, relative to the top folder, for the inputs inside this repository.
    pub fn pathspecs(&self, inputs: &[Utf8PathBuf]) -> Vec<String> {
        let mut specs: Vec<String> = inputs
            .iter()
            .map(|p| crate::gomod::normalize(p))
            .filter_map(|p| {
                let relative = p.strip_prefix(&self.root).ok()?.as_str().to_string();
                Some(if relative.is_empty() {
                    ".".to_string()
                } else {
                    format!(":(literal){relative}")
                })
            })
            .collect();
        specs.sort();
        specs.dedup();
        specs
    }

    /// The names of the repository's tags, read from `refs/tags/` and `packed-refs`.
    pub fn tag_names(&self) -> Vec<String> {
        let common = self.common_dir();
        let mut names = Vec::new();
        let tags = common.join("refs/tags");
        let mut stack = vec![tags.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = dir.read_dir_utf8() else {
                continue;
            };
            for entry in entries.flatten() {
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() => stack.push(entry.path().to_path_buf()),
                    Ok(_) => {
                        if let Ok(name) = entry.path().strip_prefix(&tags) {
                            names.push(name.to_string());
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        if let Ok(text) = read_text(&common.join("packed-refs")) {
            names.extend(
                text.lines()
                    .filter_map(|line| line.split_once(" refs/tags/"))
                    .map(|(_, name)| name.to_string()),
            );
        }
        names.sort();
        names.dedup();
        names
    }

    /// The commit HEAD points at, read from `.git` (a detached HEAD, a loose
    /// branch ref or `packed-refs`); `None` when it cannot be read plainly.
    pub(super) fn head_commit(&self) -> Option<String> {
        let head = read_text(&self.git_dir.join("HEAD")).ok()?;
        let head = head.trim();
        let is_oid = |t: &str| {
            (t.len() == 40 || t.len() == 64)
                && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let Some(name) = head.strip_prefix("ref: ") else {
            return is_oid(head).then(|| head.to_string());
        };
        if !name.starts_with("refs/") || name.split('/').any(|part| part == ".." || part.is_empty())
        {
            return None;
        }
        let common = self.common_dir();
        if let Ok(text) = read_text(&common.join(name)) {
            let oid = text.trim();
            return is_oid(oid).then(|| oid.to_string());
        }
        let packed = read_text(&common.join("packed-refs")).ok()?;
        packed.lines().find_map(|line| {
            let (oid, refname) = line.split_once(' ')?;
            (refname == name && is_oid(oid)).then(|| oid.to_string())
        })
    }

    /// The key under which `git log -1 -- specs` is remembered: HEAD's commit,
    /// the pathspecs and what else changes which history git walks (a shallow
    /// clone's boundary). `None` when the answer must not be remembered: HEAD
    /// unreadable, or replace refs or grafts that rewrite history.
    pub(super) fn log_memo_key(&self, specs: &[String]) -> Option<String> {
        let head = self.head_commit()?;
        let common = self.common_dir();
        let replaced = common
            .join("refs/replace")
            .read_dir_utf8()
            .is_ok_and(|mut entries| entries.next().is_some());
        let packed_replace = read_text(&common.join("packed-refs"))
            .is_ok_and(|text| text.contains(" refs/replace/"));
        if replaced || packed_replace || common.join("info/grafts").exists() {
            return None;
        }
        let shallow = read_text(&common.join("shallow"))
            .unwrap_or_default()
            .into_bytes();
        let mut key = KeyHasher::new("vcs-log/v1");
        key.text("git-dir", self.git_dir.as_str())
            .text("head", &head)
            .field("shallow", &shallow);
        for spec in specs {
            key.text("spec", spec);
        }
        Some(key.finish())
    }

    /// The folder with refs and config (worktrees point at it with `commondir`).
    pub(super) fn common_dir(&self) -> Utf8PathBuf {
        match read_text(&self.git_dir.join("commondir")) {
            Ok(text) => crate::gomod::normalize(&self.git_dir.join(text.trim())),
            Err(_) => self.git_dir.clone(),
        }
    }

    /// The `url` of `[remote "origin"]` in the repository's config.
    pub fn origin(&self) -> Option<String> {
        let text = read_text(&self.common_dir().join("config")).ok()?;
        let mut in_origin = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_origin = line.replace(' ', "") == "[remote\"origin\"]";
            } else if in_origin {
                if let Some((key, value)) = line.split_once('=') {
                    if key.trim() == "url" {
                        return Some(value.trim().trim_matches('"').to_string());
                    }
                }
            }
        }
        None
    }
}
