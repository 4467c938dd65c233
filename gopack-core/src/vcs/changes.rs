//! One `git status` per repository for every app of a run, split by each
//! app's input paths (and a `--since` diff added to it), instead of one git
//! process per app.

use super::*;

/// The uncommitted files of the repositories a run's apps live in, read with
/// one `git status` per repository for the whole run (over the union of every
/// app's inputs), so that the cost does not grow with the number of apps; each
/// app then takes the files under its own inputs ([`revision_with`]).
#[derive(Debug, Default)]
pub struct Changes {
    /// Per repository top folder: the uncommitted files (relative to it), or
    /// `None` when git could not say.
    pub(super) by_root: std::collections::HashMap<Utf8PathBuf, Option<Vec<String>>>,
}

impl Changes {
    /// Runs `git status` once per repository that holds one of `apps` (each
    /// its module folder and its inputs, as [`revision`] takes them).
    pub fn read(apps: &[(Utf8PathBuf, Vec<Utf8PathBuf>)]) -> Changes {
        let mut specs_by_root: std::collections::BTreeMap<Utf8PathBuf, (Repository, Vec<String>)> =
            Default::default();
        for (module_dir, inputs) in apps {
            let Some(repo) = Repository::find(module_dir) else {
                continue;
            };
            let specs = repo.pathspecs(inputs);
            let entry = specs_by_root
                .entry(repo.root.clone())
                .or_insert_with(|| (repo, Vec::new()));
            entry.1.extend(specs);
        }
        let mut changes = Changes::default();
        let Some(git) = which_utf8("git") else {
            return changes;
        };
        for (root, (repo, mut specs)) in specs_by_root {
            specs.sort();
            specs.dedup();
            let dirty = repo.status(&git, &specs);
            changes.by_root.insert(root, dirty);
        }
        changes
    }

    /// Adds `files` (relative to the repository's top folder `root`) as
    /// changed, e.g. what `git diff --name-only REF` lists for app selection
    /// by change; [`Changes::under`] then partitions them by app as well.
    pub fn add(&mut self, root: &Utf8Path, files: impl IntoIterator<Item = String>) {
        let entry = self
            .by_root
            .entry(root.to_path_buf())
            .or_insert_with(|| Some(Vec::new()));
        if let Some(known) = entry {
            known.extend(files);
            known.sort();
            known.dedup();
        }
    }

    /// The uncommitted files of `repo` under `specs` (as [`Repository::pathspecs`]
    /// makes them); `None` when this repository was not read.
    pub fn under(&self, repo: &Repository, specs: &[String]) -> Option<Vec<String>> {
        let files = self.by_root.get(&repo.root)?.as_ref()?;
        Some(
            files
                .iter()
                .filter(|file| specs.iter().any(|spec| spec_matches(spec, file)))
                .cloned()
                .collect(),
        )
    }
}

/// Whether `file` (relative to the repository's top folder) is under the
/// pathspec `spec` (`.`, or `:(literal)<path>` of a file or folder).
fn spec_matches(spec: &str, file: &str) -> bool {
    if spec == "." {
        return true;
    }
    let Some(path) = spec.strip_prefix(":(literal)") else {
        return false;
    };
    file == path
        || file
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('/'))
}
