//! The git side of `--since`: the files that differ between a revision and
//! the working tree, and a file's text at that revision. A run asks git a
//! fixed number of times whatever the number of apps: `rev-parse` (the
//! revision exists), one `diff --name-status -z`, one `status -z`, and
//! `show REF:FILE` only for Cargo.toml and Cargo.lock when they changed.
//! Every run passes `--no-optional-locks`, as [`crate::vcs`] does.

use crate::error::{Error, Result};
use crate::process::Cmd;
use crate::toolchain::which_utf8;
use crate::vcs::Repository;
use camino::{Utf8Path, Utf8PathBuf};

/// The help of a revision git does not know.
const SHALLOW_HELP: &str = "this is a shallow clone: fetch the history down to the revision \
    (`git fetch --deepen=N`, `git fetch origin <branch>`, or `git fetch --unshallow`; in GitHub \
    Actions, `actions/checkout` with `fetch-depth: 0`; in GitLab CI, `GIT_DEPTH: 0`)";

/// One changed path, relative to the repository's top folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path, relative to the repository's top folder.
    pub path: String,
    /// How it changed: `added`, `deleted`, `modified`, `untracked`, ...
    pub how: &'static str,
}

/// The repository and git, ready to ask.
pub(super) struct Git {
    pub repo: Repository,
    program: Utf8PathBuf,
}

impl Git {
    /// The repository that holds `root`, and git.
    pub fn open(root: &Utf8Path) -> Result<Git> {
        let repo = Repository::find(root).ok_or_else(|| Error::Invalid {
            path: root.to_string(),
            message: "--since needs a git repository, and this workspace is in none".into(),
            help: "run it in a git checkout, or name the apps instead of --since".into(),
        })?;
        let program = which_utf8("git").ok_or_else(|| Error::ToolMissing {
            tool: "git".into(),
            help: "--since asks git what changed: install git (apt-get install git)".into(),
        })?;
        Ok(Git { repo, program })
    }

    fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new("git", &self.program)
            .arg("--no-optional-locks")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .args(args)
            .query()
            .dir(&self.repo.root)
    }

    /// The commit `reference` names; a clear error (shallow clone or not) when git does not know it.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        if reference.is_empty() || reference.starts_with('-') {
            return Err(Error::Flag {
                flag: "--since".into(),
                message: format!("`{reference}` is not a git revision"),
                help: "name a branch, tag or commit, e.g. --since origin/main".into(),
            });
        }
        let spec = format!("{reference}^{{commit}}");
        match self
            .cmd(&[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ])
            .read()
        {
            Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
            _ => {
                let shallow = self
                    .cmd(&["rev-parse", "--is-shallow-repository"])
                    .read()
                    .is_ok_and(|t| t.trim() == "true");
                Err(Error::Flag {
                    flag: "--since".into(),
                    message: if shallow {
                        format!(
                            "`{reference}` is not in this shallow clone of {}",
                            self.repo.root
                        )
                    } else {
                        format!("git knows no commit `{reference}` in {}", self.repo.root)
                    },
                    help: if shallow {
                        SHALLOW_HELP.into()
                    } else {
                        "name a branch, tag or commit that exists here (`git fetch` it first)"
                            .into()
                    },
                })
            }
        }
    }

    /// Every path that differs between `commit` and the working tree
    /// (committed, staged or not), and every untracked file not ignored.
    /// Renames count as the old path deleted and the new one added.
    pub fn changes(&self, commit: &str) -> Result<Vec<Change>> {
        let diff = self
            .cmd(&[
                "diff",
                "--name-status",
                "-z",
                "--no-renames",
                "--no-ext-diff",
                "--ignore-submodules=none",
                commit,
                "--",
            ])
            .help("git could not compare the revision with the working tree")
            .read()?;
        let mut changes = parse_name_status(&diff);
        let status = self
            .cmd(&["status", "--porcelain", "-z", "--untracked-files=all"])
            .help("git could not list the untracked files")
            .read()?;
        changes.extend(parse_untracked(&status));
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        changes.dedup_by(|a, b| a.path == b.path);
        Ok(changes)
    }

    /// The text of `file` (relative to the repository's top) at `commit`;
    /// `None` when it did not exist there.
    pub fn show(&self, commit: &str, file: &str) -> Option<String> {
        self.cmd(&["show", &format!("{commit}:{file}")]).read().ok()
    }
}

/// `git diff --name-status -z`: `STATUS\0PATH\0`, two paths for copies and renames.
pub(super) fn parse_name_status(text: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut fields = text.split('\0');
    while let Some(status) = fields.next() {
        let Some(code) = status.chars().next() else {
            continue;
        };
        let paths = if matches!(code, 'R' | 'C') { 2 } else { 1 };
        for i in 0..paths {
            let Some(path) = fields.next().filter(|p| !p.is_empty()) else {
                break;
            };
            let how = match (code, i) {
                ('A', _) | ('C', 1) | ('R', 1) => "added",
                ('D', _) | ('R', 0) => "deleted",
                ('T', _) => "type changed",
                ('C', 0) => "copied",
                _ => "modified",
            };
            changes.push(Change {
                path: path.to_string(),
                how,
            });
        }
    }
    changes
}

/// The untracked files of `git status --porcelain -z` (`?? PATH`).
pub(super) fn parse_untracked(text: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut fields = text.split('\0');
    while let Some(entry) = fields.next() {
        if entry.len() < 4 {
            continue;
        }
        let (code, path) = entry.split_at(3);
        if code == "?? " {
            changes.push(Change {
                path: path.to_string(),
                how: "untracked",
            });
        } else if code.starts_with('R') || code.starts_with('C') {
            fields.next();
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_status_splits_renames_into_both_paths() {
        let text = "M\0a/x.go\0R087\0a/old.go\0b/new.go\0D\0c/gone.go\0A\0d/new.go\0";
        let got: Vec<(String, &str)> = parse_name_status(text)
            .into_iter()
            .map(|c| (c.path, c.how))
            .collect();
        assert_eq!(
            got,
            [
                ("a/x.go".to_string(), "modified"),
                ("a/old.go".to_string(), "deleted"),
                ("b/new.go".to_string(), "added"),
                ("c/gone.go".to_string(), "deleted"),
                ("d/new.go".to_string(), "added"),
            ]
        );
    }

    #[test]
    fn status_keeps_only_untracked_files() {
        let text = " M a/x.go\0?? b/new file.go\0R  c/new.go\0c/old.go\0?? d/y\0";
        let got: Vec<String> = parse_untracked(text).into_iter().map(|c| c.path).collect();
        assert_eq!(got, ["b/new file.go", "d/y"]);
    }
}
