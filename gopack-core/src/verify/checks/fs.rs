//! Checks of the file tree: no entry that reaches outside the image root, no
//! shell, no setuid/setgid files, nothing world-writable but a sticky /tmp.

use super::super::layers::{Kind, Tree};
use super::super::paths::PathFindings;
use super::super::source::Store;
use super::{Check, CheckId, SHELLS};

/// `fs.paths`: what the archive's index and the layers' entries found;
/// `complete`: whether every layer was read to its end.
pub(super) fn paths_check(tree: &Tree, store: &Store, complete: bool) -> Check {
    let mut findings = PathFindings::default();
    findings.extend(&store.findings);
    findings.extend(&tree.paths);
    if findings.is_empty() {
        return if complete {
            Check::pass(
                CheckId::FsPaths,
                "every entry stays inside the image root: relative names without `..`, \
                 links that stay inside, hard links to entries that exist",
            )
        } else {
            Check::skip(
                CheckId::FsPaths,
                "the image's layers could not be read to their end (see blobs.digest)",
            )
        };
    }
    let mut details = findings.kept[1..].to_vec();
    if findings.more > 0 {
        details.push(format!("and {} more", findings.more));
    }
    Check::fail(
        CheckId::FsPaths,
        format!(
            "{} entr{} could reach outside the image root: {}",
            findings.len(),
            if findings.len() == 1 { "y" } else { "ies" },
            findings.kept[0]
        ),
    )
    .details(details)
    .remedy(
        "do not unpack or run this image; rebuild it from a source you trust (tar entries \
         have relative names without `..`, and links stay inside the image)",
    )
}

pub(super) fn shell_check(tree: &Tree) -> Check {
    let found: Vec<String> = tree
        .nodes
        .iter()
        .filter(|(path, node)| {
            (matches!(node.kind, Kind::File | Kind::Symlink)
                && SHELLS.contains(&path.rsplit('/').next().unwrap_or("")))
                || node.multicall.is_some()
        })
        .map(|(path, node)| match (&node.link, node.multicall) {
            (Some(link), _) => format!("{path} -> {link}"),
            (None, Some(name)) if !path.ends_with(&format!("/{name}")) => {
                format!("{path} (a {name} binary)")
            }
            (None, _) => path.clone(),
        })
        .collect();
    if found.is_empty() {
        Check::pass(CheckId::FsShell, "no shell in the image")
    } else {
        Check::fail(CheckId::FsShell, format!("a shell is in the image: {}", found.join(", ")))
            .remedy("build FROM scratch and copy only the binary and the files it needs; an attacker who gets in gets a shell")
    }
}

pub(super) fn setuid_check(tree: &Tree) -> Check {
    let found: Vec<String> = tree
        .nodes
        .iter()
        .filter(|(_, n)| n.kind == Kind::File && n.mode & 0o6000 != 0)
        .map(|(path, n)| format!("{path} ({:04o})", n.mode & 0o7777))
        .collect();
    if found.is_empty() {
        Check::pass(CheckId::FsSetuid, "no setuid or setgid files")
    } else {
        Check::fail(
            CheckId::FsSetuid,
            format!("setuid/setgid files: {}", found.join(", ")),
        )
        .remedy("remove these files or their setuid/setgid bits (chmod u-s,g-s)")
    }
}

pub(super) fn world_writable_check(tree: &Tree) -> Check {
    let found: Vec<String> = tree
        .nodes
        .iter()
        .filter(|(path, n)| {
            n.kind != Kind::Symlink
                && n.mode & 0o002 != 0
                && !(n.kind == Kind::Dir
                    && n.mode & 0o1000 != 0
                    && matches!(path.as_str(), "/tmp" | "/var/tmp"))
        })
        .map(|(path, n)| format!("{path} ({:04o})", n.mode & 0o7777))
        .collect();
    if found.is_empty() {
        Check::pass(
            CheckId::FsWorldWritable,
            "nothing is world-writable (a sticky /tmp may be)",
        )
    } else {
        Check::fail(
            CheckId::FsWorldWritable,
            format!("world-writable: {}", found.join(", ")),
        )
        .remedy("drop the o+w bit (chmod o-w); only /tmp may be 1777")
    }
}
