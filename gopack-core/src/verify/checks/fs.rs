//! Checks of the file tree: no shell, no setuid/setgid files, nothing
//! world-writable but a sticky /tmp.

use super::super::layers::{Kind, Tree};
use super::{Check, CheckId, SHELLS};

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
