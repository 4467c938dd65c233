//! Checks of the entrypoint binary, read as ELF (never run): permissions,
//! static linking, machine, stripping, and the Go build info's settings.

use super::super::buildinfo::{BuildInfo, BuildInfoError};
use super::super::elf::{self, ElfFacts};
use super::super::layers::{Kind, Node, Tree};
use super::super::source::FoundImage;
use super::{Check, CheckId, RunUser};
use crate::verify::report::Status;
use std::collections::{BTreeSet, VecDeque};

pub(super) fn permissions_check(path: &str, node: &Node, user: &RunUser) -> Check {
    let Some(uid) = user.uid else {
        return Check::skip(
            CheckId::EntrypointPermissions,
            "the user's uid is unknown (see user.passwd)",
        );
    };
    if uid == 0 {
        return Check::skip(
            CheckId::EntrypointPermissions,
            "the user is root, who may do anything (see user.root)",
        );
    }
    let gid = user.gid.unwrap_or(0);
    let mode = node.mode;
    let (exec, write, class) = if node.uid == u64::from(uid) {
        (mode & 0o100 != 0, mode & 0o200 != 0, "owner")
    } else if node.gid == u64::from(gid) {
        (mode & 0o010 != 0, mode & 0o020 != 0, "group")
    } else {
        (mode & 0o001 != 0, mode & 0o002 != 0, "others")
    };
    let facts = format!(
        "{path} is {:04o} {}:{}, the user {uid}:{gid} counts as {class}",
        mode & 0o7777,
        node.uid,
        node.gid
    );
    if !exec {
        Check::fail(
            CheckId::EntrypointPermissions,
            format!("not executable: {facts}"),
        )
        .remedy("make the binary 0755 and owned by root (COPY --chmod=0755 or chmod before COPY)")
    } else if write {
        Check::fail(
            CheckId::EntrypointPermissions,
            format!("writable by the user: {facts}"),
        )
        .remedy("own the binary by root (0:0) with mode 0755 so the app cannot replace itself")
    } else {
        Check::pass(
            CheckId::EntrypointPermissions,
            format!("executable, not writable: {facts}"),
        )
    }
}

pub(super) fn static_check(
    path: &str,
    facts: &ElfFacts,
    tree: &Tree,
    store: &super::super::source::Store,
    image: &FoundImage,
) -> Check {
    if facts.is_static() {
        return Check::pass(CheckId::ElfStatic, format!("{path} is statically linked"));
    }
    if facts.interpreter.is_none() && facts.needed.is_empty() {
        return Check::fail(
            CheckId::ElfStatic,
            format!("{path} is a position-independent executable (ET_DYN, -buildmode=pie)"),
        )
        .remedy(
            "build without -buildmode=pie: CGO_ENABLED=0 go build gives a static ET_EXEC binary",
        );
    }
    // What ldd would print, from the image's own files.
    let mut details = Vec::new();
    let mut missing = 0;
    if let Some(interpreter) = &facts.interpreter {
        match tree.resolve(interpreter) {
            Some((found, n)) if n.kind == Kind::File => details.push(format!(
                "{interpreter} (interpreter) => found in image at {found}"
            )),
            _ => {
                missing += 1;
                details.push(format!("{interpreter} (interpreter) => not found"));
            }
        }
    }
    let binary_dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
    let mut dirs: Vec<String> = facts
        .search_paths
        .iter()
        .map(|p| {
            p.replace("$ORIGIN", binary_dir)
                .replace("${ORIGIN}", binary_dir)
        })
        .collect();
    // The loader's default folders (the ldso rules), plus /usr/local/lib,
    // which foreign images often use through their own ld.so.conf.
    dirs.extend(crate::ldso::default_dirs(facts.machine, true));
    dirs.push("/usr/local/lib".into());
    let mut queue: VecDeque<String> = facts.needed.iter().cloned().collect();
    let mut seen = BTreeSet::new();
    while let Some(library) = queue.pop_front() {
        if !seen.insert(library.clone()) || seen.len() > 64 {
            continue;
        }
        let found = dirs.iter().find_map(|dir| {
            tree.resolve(&format!("{dir}/{library}"))
                .filter(|(_, n)| n.kind == Kind::File)
                .map(|(p, n)| (p, n.clone()))
        });
        match found {
            Some((found, node)) => {
                details.push(format!("{library} => found in image at {found}"));
                if let Ok(bytes) = tree.content(store, &image.layers, &node) {
                    if let Ok(lib) = ElfFacts::parse(&bytes) {
                        queue.extend(lib.needed);
                    }
                }
            }
            None => {
                missing += 1;
                details.push(format!("{library} => not found"));
            }
        }
    }
    let what = if facts.is_pie() {
        "a dynamically linked position-independent executable"
    } else {
        "dynamically linked"
    };
    let message = if missing > 0 {
        format!("{path} is {what}; {missing} of its loader and libraries are not in the image: it will not start")
    } else {
        format!("{path} is {what}; its loader and libraries are in the image")
    };
    Check::fail(CheckId::ElfStatic, message)
        .details(details)
        .remedy("build with CGO_ENABLED=0 (and without -buildmode=pie) for a static binary; if cgo is needed, copy the interpreter and every library listed into the image")
}

pub(super) fn machine_check(path: &str, facts: &ElfFacts, image: &FoundImage) -> Check {
    let arch = image.config.architecture.clone();
    let platform = image.platform();
    let found = elf::machine_name(facts.machine, facts.little_endian);
    match elf::machine_for_arch(&arch) {
        None => Check::warn(
            CheckId::ElfMachine,
            format!("{path} is {found}; the image's architecture `{arch}` is not one gopack knows"),
        ),
        Some(wanted) if wanted == (facts.machine, facts.little_endian) => Check::pass(
            CheckId::ElfMachine,
            format!("{path} is {found}, as {platform} needs"),
        ),
        Some((machine, little)) => Check::fail(
            CheckId::ElfMachine,
            format!(
                "{path} is {found} but the image is {platform} ({}): it would fail with `exec format error`",
                elf::machine_name(machine, little)
            ),
        )
        .remedy(format!("build the binary with GOOS=linux GOARCH={arch} for this platform (gopack sets them from `platforms`)")),
    }
}

pub(super) fn stripped_check(path: &str, facts: &ElfFacts, strict: bool) -> Check {
    let mut left = Vec::new();
    if facts.has_symtab {
        left.push(".symtab".to_string());
    }
    left.extend(facts.debug_sections.iter().cloned());
    if left.is_empty() {
        return Check::pass(
            CheckId::ElfStripped,
            format!("{path} has no symbol table and no debug sections"),
        );
    }
    let status = if strict { Status::Fail } else { Status::Warn };
    Check::new(
        CheckId::ElfStripped,
        status,
        format!("{path} keeps {}", left.join(", ")),
    )
    .remedy("build with -ldflags=\"-s -w\" to drop the symbol table and DWARF")
}

pub(super) fn go_checks(
    info: Option<&Result<BuildInfo, BuildInfoError>>,
    facts: Option<&ElfFacts>,
    image: &FoundImage,
) -> Vec<Check> {
    let ids = [
        CheckId::GoCgo,
        CheckId::GoPlatform,
        CheckId::GoTrimpath,
        CheckId::GoRevision,
    ];
    let info = match info {
        None => {
            let mut checks = vec![Check::skip(CheckId::GoBuildinfo, "no entrypoint binary")];
            checks.extend(
                ids.iter()
                    .map(|&id| Check::skip(id, "no entrypoint binary")),
            );
            return checks;
        }
        Some(Err(BuildInfoError::NotGo)) => {
            let mut checks = vec![Check::warn(
                CheckId::GoBuildinfo,
                "the entrypoint is not a Go binary: it has no Go build info",
            )
            .remedy("gopack's checks of Go build settings need a Go binary (Go 1.18 or newer)")];
            checks.extend(ids.iter().map(|&id| Check::skip(id, "no Go build info")));
            return checks;
        }
        Some(Err(e)) => {
            let mut checks = vec![Check::warn(CheckId::GoBuildinfo, e.to_string()).remedy(
                "rebuild with Go 1.18 or newer; `go version -m BINARY` shows what Go can read",
            )];
            checks.extend(ids.iter().map(|&id| Check::skip(id, "no Go build info")));
            return checks;
        }
        Some(Ok(info)) => info,
    };
    let mut checks = vec![Check::pass(
        CheckId::GoBuildinfo,
        format!(
            "{}, {}{}",
            info.go_version,
            if info.path.is_empty() {
                "(no module info)"
            } else {
                &info.path
            },
            if info.deps.is_empty() {
                String::new()
            } else {
                format!(", {} dependencies", info.deps.len())
            }
        ),
    )];
    let dynamic = facts.is_some_and(|f| !f.is_static());
    checks.push(match info.setting("CGO_ENABLED") {
        Some("0") => Check::pass(CheckId::GoCgo, "CGO_ENABLED=0"),
        Some(value) if dynamic => Check::fail(
            CheckId::GoCgo,
            format!("CGO_ENABLED={value} and the binary is dynamically linked"),
        )
        .remedy("build with CGO_ENABLED=0 (gopack's default)"),
        Some(value) => Check::warn(
            CheckId::GoCgo,
            format!("CGO_ENABLED={value}, though the binary is static"),
        )
        .remedy("build with CGO_ENABLED=0 unless the app needs cgo"),
        None => Check::warn(
            CheckId::GoCgo,
            "CGO_ENABLED is not recorded in the build info",
        ),
    });
    let os = image.config.os.clone();
    let arch = image.config.architecture.clone();
    checks.push(match (info.setting("GOOS"), info.setting("GOARCH")) {
        (Some(goos), Some(goarch)) if goos == os && goarch == arch => {
            let mut text = format!("GOOS={goos} GOARCH={goarch}");
            if let Some(goarm) = info.setting("GOARM") {
                text.push_str(&format!(" GOARM={goarm}"));
            }
            Check::pass(CheckId::GoPlatform, text)
        }
        (Some(goos), Some(goarch)) => Check::fail(
            CheckId::GoPlatform,
            format!("built for GOOS={goos} GOARCH={goarch}, the image is {os}/{arch}"),
        )
        .remedy(format!("build with GOOS={os} GOARCH={arch}")),
        _ => Check::warn(
            CheckId::GoPlatform,
            "GOOS/GOARCH are not recorded in the build info",
        ),
    });
    checks.push(match info.setting("-trimpath") {
        Some("true") => Check::pass(CheckId::GoTrimpath, "built with -trimpath"),
        _ => Check::warn(
            CheckId::GoTrimpath,
            "built without -trimpath: the binary holds the build machine's paths",
        )
        .remedy("build with -trimpath for reproducible binaries"),
    });
    let label = image
        .config
        .config
        .as_ref()
        .and_then(|c| c.label("org.opencontainers.image.revision"))
        .map(str::to_string);
    let revision = info.setting("vcs.revision");
    checks.push(match (revision, label) {
        (Some(revision), Some(label)) => {
            // Bytes, not chars: a label is image data, and may cut a character.
            let short = revision.len().min(label.len());
            if short >= 7 && revision.as_bytes()[..short] == label.as_bytes()[..short] {
                if info.setting("vcs.modified") == Some("true") {
                    Check::warn(CheckId::GoRevision, format!("vcs.revision {revision} matches the label, but the tree had uncommitted changes (vcs.modified=true)"))
                        .remedy("build from a clean checkout")
                } else {
                    Check::pass(CheckId::GoRevision, format!("vcs.revision {revision} matches org.opencontainers.image.revision"))
                }
            } else {
                Check::fail(CheckId::GoRevision, format!("the binary is from revision {revision}, the image label org.opencontainers.image.revision says {label}"))
                    .remedy("rebuild the image from the commit the label names, or fix the label")
            }
        }
        (Some(revision), None) => Check::skip(CheckId::GoRevision, format!("vcs.revision {revision}; the image has no org.opencontainers.image.revision label")),
        (None, Some(label)) => Check::skip(CheckId::GoRevision, format!("the label says {label}; the binary records no vcs.revision (-buildvcs=false or built outside a repository)")),
        (None, None) => Check::skip(CheckId::GoRevision, "neither vcs.revision nor an org.opencontainers.image.revision label"),
    });
    checks
}
