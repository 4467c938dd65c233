//! Paths from the config, read only beneath their root.
//!
//! A configured path (`files[N].src`, `ca-bundle`, `zoneinfo`, `main`) is
//! first checked as text: it must be relative and its `..` may not climb out
//! of the root ([`normalize_beneath`]). Then it is resolved by the kernel
//! beneath the root ([`resolve`]): `openat2` with `RESOLVE_BENEATH` (a symlink
//! that leads out of the root, absolute or by `..`, fails with `EXDEV`), and
//! where the kernel lacks `openat2` (before Linux 5.6, or a seccomp filter
//! that refuses it) one component at a time with `O_NOFOLLOW`, refusing every
//! symlink. Nothing is opened for reading during resolution (`O_PATH`): a
//! FIFO, socket or device is named and refused before any `open` could block
//! or reach a driver. The answer is the file's real path (from
//! `/proc/self/fd`), which has no symlink left for a later open to follow.

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, OwnedFd};

/// What a resolved path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link (only when the last component is not followed).
    Link,
    /// A FIFO, socket or device: never read.
    Special,
}

impl Kind {
    fn of(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Link,
            _ => Kind::Special,
        }
    }

    /// How a message names this kind.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Dir => "a folder",
            Kind::Link => "a symbolic link",
            Kind::Special => "a FIFO, socket or device",
        }
    }
}

/// A path resolved beneath its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The real path: absolute, without symlinks.
    pub path: Utf8PathBuf,
    /// What it is (the last component's link not followed unless asked).
    pub kind: Kind,
}

/// Why a path could not be resolved beneath its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Absolute, or `..` climbs above the root.
    Escapes(String),
    /// A symlink on the way leads out of the root (or, without `openat2`, any symlink).
    Link(String),
    /// Nothing there.
    Missing,
    /// Another error from the system.
    Io(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Escapes(why) | Refused::Link(why) | Refused::Io(why) => f.write_str(why),
            Refused::Missing => f.write_str("does not exist"),
        }
    }
}

/// `path` relative to a root, with `.` dropped and `..` applied as text;
/// refused when it is absolute or `..` climbs above the root.
pub fn normalize_beneath(path: &Utf8Path) -> Result<Utf8PathBuf, Refused> {
    let mut out: Vec<&str> = Vec::new();
    if path.as_str().contains('\0') {
        return Err(Refused::Escapes("has a NUL character".into()));
    }
    for component in path.components() {
        match component {
            Utf8Component::Prefix(_) | Utf8Component::RootDir => {
                return Err(Refused::Escapes("is an absolute path".into()))
            }
            Utf8Component::CurDir => {}
            Utf8Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(Refused::Escapes(
                        "climbs out of its folder with `..`".into(),
                    ));
                }
            }
            Utf8Component::Normal(name) => out.push(name),
        }
    }
    Ok(out.iter().collect())
}

/// Resolves `relative` beneath `root` without following any symlink out of it.
/// With `follow_last`, a last component that is a symlink is followed (still
/// beneath the root); without, it is reported as [`Kind::Link`].
pub fn resolve(
    root: &Utf8Path,
    relative: &Utf8Path,
    follow_last: bool,
) -> Result<Resolved, Refused> {
    let normal = normalize_beneath(relative)?;
    let root_fd = rustix::fs::open(
        root.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_refusal(e, root))?;
    let fd = match openat2_beneath(&root_fd, &normal, follow_last) {
        Err(Errno::NOSYS) | Err(Errno::PERM) | Err(Errno::INVAL) => {
            walk_no_links(&root_fd, &normal)
        }
        other => other,
    }
    .map_err(|e| match e {
        Errno::XDEV => Refused::Link("leads out of its folder through a symbolic link".into()),
        Errno::LOOP => Refused::Link("goes through a symbolic link (or too many of them)".into()),
        Errno::NOENT | Errno::NOTDIR => Refused::Missing,
        e => io_refusal(e, &root.join(&normal)),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| io_refusal(e, &root.join(&normal)))?;
    let kind = Kind::of(stat.st_mode);
    let path = real_path(&fd).unwrap_or_else(|| root.join(&normal));
    Ok(Resolved { path, kind })
}

/// openat2 with `RESOLVE_BENEATH`; retried on `EAGAIN` (a rename raced the lookup).
fn openat2_beneath(root: &OwnedFd, normal: &Utf8Path, follow_last: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow_last {
        flags |= OFlags::NOFOLLOW;
    }
    let target = if normal.as_str().is_empty() {
        "."
    } else {
        normal.as_str()
    };
    let mut result = Err(Errno::AGAIN);
    for _ in 0..8 {
        result = rustix::fs::openat2(
            root,
            target,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        );
        if !matches!(result, Err(Errno::AGAIN)) {
            break;
        }
    }
    result
}

/// Without `openat2`: one component at a time, `O_NOFOLLOW`, every symlink refused.
pub(crate) fn walk_no_links(root: &OwnedFd, normal: &Utf8Path) -> Result<OwnedFd, Errno> {
    let mut current = rustix::fs::openat(
        root,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for name in normal.components().map(|c| c.as_str()) {
        let next = rustix::fs::openat(
            current.as_fd(),
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if Kind::of(rustix::fs::fstat(&next)?.st_mode) == Kind::Link {
            return Err(Errno::LOOP);
        }
        current = next;
    }
    Ok(current)
}

/// The kernel's path of an open file (no symlinks), when /proc is there.
fn real_path(fd: &OwnedFd) -> Option<Utf8PathBuf> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let path = Utf8PathBuf::from_path_buf(link).ok()?;
    path.is_absolute().then_some(path)
}

fn io_refusal(e: Errno, path: &Utf8Path) -> Refused {
    if e == Errno::NOENT {
        return Refused::Missing;
    }
    Refused::Io(format!(
        "cannot be opened ({path}: {})",
        std::io::Error::from(e)
    ))
}

/// Opens a regular file for reading, never blocking: the file is checked
/// without following a link before `open`, and opened with `O_NONBLOCK` and
/// `O_NOFOLLOW` so that a FIFO swapped in meanwhile cannot block either.
pub fn open_regular(path: &Utf8Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let before = std::fs::symlink_metadata(path)?;
    let not_regular = |kind: Kind| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{path} is {}, not a regular file", kind.describe()),
        )
    };
    if !before.is_file() {
        return Err(not_regular(Kind::of(before.mode())));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)?;
    let after = file.metadata()?;
    if !after.is_file() || (after.dev(), after.ino()) != (before.dev(), before.ino()) {
        return Err(not_regular(Kind::of(after.mode())));
    }
    Ok(file)
}

/// The most a text file from the source tree (go.mod, go.work, git's refs) may hold.
pub const MAX_TEXT: u64 = 256 << 20;

/// Reads a text file of the source tree (links followed): only a regular file,
/// opened without blocking, at most [`MAX_TEXT`] bytes.
pub fn read_text(path: &Utf8Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(invalid(format!("{path} is not a regular file")));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(invalid(format!("{path} is not a regular file")));
    }
    let mut text = String::new();
    file.take(MAX_TEXT + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_TEXT {
        return Err(invalid(format!("{path} is larger than {MAX_TEXT} bytes")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Utf8PathBuf, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        let root = base.join("ws/app");
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::write(root.join("config/a.yaml"), "a").unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret"), "s").unwrap();
        std::fs::write(base.join("ws/top"), "t").unwrap();
        (dir, base, root)
    }

    #[test]
    fn text_checks() {
        assert_eq!(normalize_beneath("a/./b/../c".into()).unwrap(), "a/c");
        assert_eq!(normalize_beneath(".".into()).unwrap(), "");
        for bad in ["/etc/shadow", "../x", "a/../../x", "../../../../etc/shadow"] {
            assert!(
                matches!(normalize_beneath(bad.into()), Err(Refused::Escapes(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolves_inside_and_refuses_links_out() {
        let (_dir, base, root) = setup();
        let ok = resolve(&root, "config/a.yaml".into(), false).unwrap();
        assert_eq!(
            ok,
            Resolved {
                path: root.join("config/a.yaml"),
                kind: Kind::File
            }
        );
        assert_eq!(
            resolve(&root, "config".into(), false).unwrap().kind,
            Kind::Dir
        );
        assert_eq!(resolve(&root, "nope".into(), false), Err(Refused::Missing));
        // A symlinked parent and a symlinked folder leading out.
        symlink(base.join("outside"), root.join("od")).unwrap();
        symlink("../../outside", root.join("rel")).unwrap();
        for path in ["od/secret", "od", "rel/secret", "od/"] {
            assert!(
                matches!(resolve(&root, path.into(), true), Err(Refused::Link(_))),
                "{path}"
            );
        }
        // A link to the last component, staying inside, is seen as a link or followed.
        symlink("config/a.yaml", root.join("alias")).unwrap();
        assert_eq!(
            resolve(&root, "alias".into(), false).unwrap().kind,
            Kind::Link
        );
        let followed = resolve(&root, "alias".into(), true).unwrap();
        assert_eq!(followed.path, root.join("config/a.yaml"));
        // `..` within the root is fine; above it is not, whatever is there.
        assert!(resolve(&root, "config/../config/a.yaml".into(), false).is_ok());
        assert!(matches!(
            resolve(&root, "../top".into(), false),
            Err(Refused::Escapes(_))
        ));
    }

    #[test]
    fn the_walk_without_openat2_refuses_every_link() {
        let (_dir, base, root) = setup();
        symlink(base.join("outside"), root.join("od")).unwrap();
        symlink("config", root.join("inside")).unwrap();
        let fd = rustix::fs::open(
            root.as_str(),
            OFlags::PATH | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        assert!(walk_no_links(&fd, "config/a.yaml".into()).is_ok());
        assert_eq!(
            walk_no_links(&fd, "od/secret".into()).unwrap_err(),
            Errno::LOOP
        );
        assert_eq!(
            walk_no_links(&fd, "inside/a.yaml".into()).unwrap_err(),
            Errno::LOOP
        );
    }

    #[test]
    fn special_files_are_named_and_never_opened() {
        let (_dir, _base, root) = setup();
        let fifo = root.join("fifo");
        let c = std::ffi::CString::new(fifo.as_str()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // Resolution opens with O_PATH only: no block even though no writer exists.
        assert_eq!(
            resolve(&root, "fifo".into(), false).unwrap().kind,
            Kind::Special
        );
        let err = open_regular(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        assert!(open_regular(&root.join("config/a.yaml")).is_ok());
        assert!(read_text(&fifo).is_err());
        assert_eq!(read_text(&root.join("config/a.yaml")).unwrap(), "a");
    }
}
