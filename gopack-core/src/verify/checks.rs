//! The checks of one platform's image, each a fact read from the image: its
//! blobs, its config, its file tree and its entrypoint binary.

use super::buildinfo::{read_build_info, BuildInfo, BuildInfoError};
use super::elf::{self, ElfFacts};
use super::layers::FileBytes;
use super::layers::{Kind, LayerReading, Node, Tree};
use super::policy::ByteSize;
use super::report::{Check, Status};
use super::source::{FoundImage, Opened};
use super::Expectations;
use crate::config::Tzdata;
use std::collections::{BTreeSet, VecDeque};

/// Where Go (and most distributions) look for the CA bundle first.
pub(crate) const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const ZONEINFO: &str = "/usr/share/zoneinfo";
/// Names of shells and multi-call binaries that give a shell.
const SHELLS: &[&str] = &[
    "sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "toybox",
];
/// The environment the image config should not fix unless asked.
const LOCALE_VARS: &[&str] = &["LANG", "LANGUAGE", "LC_ALL"];
/// Entrypoint binaries larger than this are not read.
const MAX_BINARY: u64 = 1 << 30;
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user an image runs as, as far as the image tells.
#[derive(Debug, Clone)]
struct RunUser {
    uid: Option<u32>,
    gid: Option<u32>,
}

/// Runs every check of one platform image.
pub(crate) fn check_image(
    opened: &Opened,
    image: &FoundImage,
    expect: &Expectations,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let strict = expect.app.is_some();
    let platform = image.platform();
    let config = image.config.config().clone().unwrap_or_default();
    let env: Vec<String> = config.env().clone().unwrap_or_default();
    let program = entrypoint_program(&config);

    let mut wanted: BTreeSet<String> = ["/etc/passwd", "/etc/group", "/etc/timezone", CA_BUNDLE]
        .into_iter()
        .map(String::from)
        .collect();
    if let Some(program) = &program {
        wanted.insert(super::layers::normalize(program));
    }
    let (tree, readings) = Tree::read(&opened.store, &image.layers, &wanted);

    checks.push(blobs_check(image, &readings));
    checks.push(layers_check(image, &readings, expect));
    checks.push(size_check(&readings, expect));

    let readable = readings.iter().all(|r| r.error.is_none());
    let mut entry = Vec::new();
    entry.push(entrypoint_config_check(&config, &program, expect));
    if !readable {
        // Every check that reads files, as listed in CHECK_IDS.
        let file_checks = super::policy::CHECK_IDS
            .iter()
            .skip_while(|id| **id != "entrypoint.exists")
            .take_while(|id| **id != "config.env");
        for &id in file_checks {
            entry.push(Check::skip(
                id,
                "the image's layers could not be read to their end (see blobs.digest)",
            ));
        }
        entry.push(env_check(&env, expect, strict));
        checks.extend(entry);
        return checks;
    }

    let content = |node: &Node| tree.content(&opened.store, &image.layers, node);
    let passwd = file_text(&tree, "/etc/passwd", &content);
    let group = file_text(&tree, "/etc/group", &content);

    // The entrypoint, found in the tree.
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let found = program
        .as_deref()
        .and_then(|p| find_program(&tree, p, &path_var));
    let binary: Option<(String, Node, Result<FileBytes, String>)> = found.map(|(path, node)| {
        let bytes = if node.size > MAX_BINARY {
            Err(format!("{} bytes is too large to read", node.size))
        } else {
            content(&node)
        };
        (path, node, bytes)
    });

    let (user_checks, run_user) = user_checks(&config, passwd.as_deref(), group.as_deref(), expect);

    match (&program, &binary) {
        (None, _) => entry.push(Check::skip(
            "entrypoint.exists",
            "the image has no entrypoint",
        )),
        (Some(program), None) => entry.push(
            Check::fail(
                "entrypoint.exists",
                format!("{program} is not in the image (or a symlink on its way leads nowhere)"),
            )
            .remedy("copy the binary to the path the entrypoint names, or fix ENTRYPOINT"),
        ),
        (Some(program), Some((path, node, _))) => {
            let shown = if program == path {
                program.clone()
            } else {
                format!("{program} -> {path}")
            };
            entry.push(Check::pass(
                "entrypoint.exists",
                format!("{shown} ({})", ByteSize(node.size)),
            ));
        }
    }
    entry.push(match &binary {
        None => Check::skip("entrypoint.permissions", "no entrypoint binary"),
        Some((path, node, _)) => permissions_check(path, node, &run_user),
    });

    // The binary: ELF and Go build info.
    let bytes = binary.as_ref().and_then(|(_, _, b)| b.as_ref().ok());
    let facts = bytes.map(|b| ElfFacts::parse(b));
    match (&binary, &facts) {
        (None, _) => {
            for id in ["elf.static", "elf.machine", "elf.stripped"] {
                entry.push(Check::skip(id, "no entrypoint binary"));
            }
        }
        (Some((_, _, Err(why))), _) => {
            for id in ["elf.static", "elf.machine", "elf.stripped"] {
                entry.push(Check::fail(
                    id,
                    format!("the binary could not be read: {why}"),
                ));
            }
        }
        (Some((path, _, _)), Some(Err(why))) => {
            for id in ["elf.static", "elf.machine", "elf.stripped"] {
                entry.push(
                    Check::fail(id, format!("{path}: {why}"))
                        .remedy("the entrypoint should be a Linux ELF executable (a Go binary)"),
                );
            }
        }
        (Some((path, _, _)), Some(Ok(facts))) => {
            entry.push(static_check(path, facts, &tree, &opened.store, image));
            entry.push(machine_check(path, facts, image));
            entry.push(stripped_check(path, facts, strict));
        }
        _ => {}
    }
    let info = bytes.map(|b| read_build_info(b));
    entry.extend(go_checks(
        info.as_ref(),
        facts.as_ref().and_then(|f| f.as_ref().ok()),
        image,
    ));
    checks.extend(entry);
    checks.extend(user_checks);
    checks.push(shell_check(&tree));
    checks.push(setuid_check(&tree));
    checks.push(world_writable_check(&tree));
    let bytes = bytes.map(|b| b.as_slice());
    checks.push(certs_check(&tree, bytes, expect, &content));
    checks.push(zoneinfo_check(&tree, bytes, expect, &content));
    checks.push(env_check(&env, expect, strict));
    let _ = platform;
    checks
}

fn file_text(
    tree: &Tree,
    path: &str,
    content: &dyn Fn(&Node) -> Result<FileBytes, String>,
) -> Option<String> {
    let (_, node) = tree.resolve(path)?;
    if node.kind != Kind::File {
        return None;
    }
    content(node)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The program the container starts: Entrypoint's first word, else Cmd's.
fn entrypoint_program(config: &oci_spec::image::Config) -> Option<String> {
    config
        .entrypoint()
        .as_ref()
        .filter(|e| !e.is_empty())
        .or(config.cmd().as_ref())
        .and_then(|words| words.first().cloned())
}

fn find_program(tree: &Tree, program: &str, path_var: &str) -> Option<(String, Node)> {
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.to_string()]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{program}"))
            .collect()
    };
    candidates.iter().find_map(|c| {
        tree.resolve(c)
            .filter(|(_, n)| n.kind == Kind::File)
            .map(|(p, n)| (p, n.clone()))
    })
}

fn blobs_check(image: &FoundImage, readings: &[LayerReading]) -> Check {
    let mut problems = image.problems.clone();
    for reading in readings {
        let layer = &reading.layer;
        let name = layer.digest.clone().unwrap_or_else(|| layer.name.clone());
        if let (Some(expected), Some(actual)) = (&layer.digest, &reading.digest) {
            if expected != actual {
                problems.push(format!("layer blob {expected} hashes to {actual}"));
            }
        }
        if let Some(size) = layer.size {
            if reading.error.is_none() && size != reading.size {
                problems.push(format!(
                    "layer blob {name} has {} bytes, {size} expected",
                    reading.size
                ));
            }
        }
        if let Some(error) = &reading.error {
            problems.push(format!("layer blob {name} cannot be read: {error}"));
        } else if let (Some(expected), Some(actual)) = (&layer.diff_id, &reading.diff_id) {
            if expected != actual {
                problems.push(format!(
                    "layer blob {name} unpacks to {actual}, but the config's diff_id is {expected}"
                ));
            }
        }
    }
    if problems.is_empty() {
        Check::pass(
            "blobs.digest",
            format!(
                "{} blobs: digests, sizes and diff_ids match",
                image.checked_blobs + readings.len()
            ),
        )
    } else {
        Check::fail(
            "blobs.digest",
            format!("{} blob problem(s): {}", problems.len(), problems[0]),
        )
        .details(problems[1..].to_vec())
        .remedy("the image is damaged or was changed after it was written: write it again from its source")
    }
}

fn layers_check(image: &FoundImage, readings: &[LayerReading], expect: &Expectations) -> Check {
    let count = image.layers.len();
    let compressions: BTreeSet<&str> = readings.iter().map(|r| r.compression).collect();
    let message = format!(
        "{count} layer(s), compression: {}",
        compressions.into_iter().collect::<Vec<_>>().join(", ")
    );
    match expect.policy.max_layers {
        Some(max) if count > max => Check::fail(
            "layers.count",
            format!("{message}; the policy allows {max}"),
        )
        .remedy("merge the final stage's steps into fewer layers, or raise verify.max-layers"),
        Some(max) => Check::pass("layers.count", format!("{message} (at most {max})")),
        None => Check::pass("layers.count", message),
    }
}

fn size_check(readings: &[LayerReading], expect: &Expectations) -> Check {
    let total = ByteSize(readings.iter().map(|r| r.size).sum());
    let message = format!("{total} of layers as stored");
    match expect.policy.max_size {
        Some(max) if total > max => Check::fail("image.size", format!("{message}; the budget is {max}"))
            .remedy("drop what the app does not need (debug info: -ldflags=\"-s -w\"; unused zoneinfo), or raise verify.max-size"),
        Some(max) => Check::pass("image.size", format!("{message} (budget {max})")),
        None => Check::pass("image.size", message),
    }
}

fn entrypoint_config_check(
    config: &oci_spec::image::Config,
    program: &Option<String>,
    expect: &Expectations,
) -> Check {
    let entrypoint = config.entrypoint().clone().unwrap_or_default();
    let cmd = config.cmd().clone().unwrap_or_default();
    let Some(program) = program else {
        return Check::fail(
            "config.entrypoint",
            "the config has neither Entrypoint nor Cmd",
        )
        .remedy("set an exec-form entrypoint: ENTRYPOINT [\"/go/bin/app\"]");
    };
    let words = if entrypoint.is_empty() {
        &cmd
    } else {
        &entrypoint
    };
    if words.len() >= 2
        && words[1] == "-c"
        && SHELLS.iter().any(|s| program.ends_with(&format!("/{s}")))
    {
        return Check::fail(
            "config.entrypoint",
            format!("shell form: {words:?} needs a shell in the image"),
        )
        .remedy("use the exec form: ENTRYPOINT [\"/go/bin/app\"]");
    }
    if let Some(expected) = &expect.binary_path {
        if program != expected {
            return Check::fail(
                "config.entrypoint",
                format!("the entrypoint is {program}, the app's binary path is {expected}"),
            )
            .remedy(
                "set ENTRYPOINT to the app's binary, or set `binary-path` in the app's config",
            );
        }
    }
    Check::pass("config.entrypoint", format!("exec form {words:?}"))
}

fn permissions_check(path: &str, node: &Node, user: &RunUser) -> Check {
    let Some(uid) = user.uid else {
        return Check::skip(
            "entrypoint.permissions",
            "the user's uid is unknown (see user.passwd)",
        );
    };
    if uid == 0 {
        return Check::skip(
            "entrypoint.permissions",
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
        Check::fail("entrypoint.permissions", format!("not executable: {facts}")).remedy(
            "make the binary 0755 and owned by root (COPY --chmod=0755 or chmod before COPY)",
        )
    } else if write {
        Check::fail(
            "entrypoint.permissions",
            format!("writable by the user: {facts}"),
        )
        .remedy("own the binary by root (0:0) with mode 0755 so the app cannot replace itself")
    } else {
        Check::pass(
            "entrypoint.permissions",
            format!("executable, not writable: {facts}"),
        )
    }
}

fn static_check(
    path: &str,
    facts: &ElfFacts,
    tree: &Tree,
    store: &super::source::Store,
    image: &FoundImage,
) -> Check {
    if facts.is_static() {
        return Check::pass("elf.static", format!("{path} is statically linked"));
    }
    if facts.interpreter.is_none() && facts.needed.is_empty() {
        return Check::fail(
            "elf.static",
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
    dirs.extend(elf::library_dirs(facts.machine));
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
    Check::fail("elf.static", message)
        .details(details)
        .remedy("build with CGO_ENABLED=0 (and without -buildmode=pie) for a static binary; if cgo is needed, copy the interpreter and every library listed into the image")
}

fn machine_check(path: &str, facts: &ElfFacts, image: &FoundImage) -> Check {
    let arch = image.config.architecture().to_string();
    let platform = image.platform();
    match elf::machine_for_arch(&arch) {
        None => Check::warn(
            "elf.machine",
            format!("{path} is {}; the image's architecture `{arch}` is not one gopack knows", elf::machine_name(facts.machine)),
        ),
        Some(machine) if machine == facts.machine => Check::pass(
            "elf.machine",
            format!("{path} is {}, as {platform} needs", elf::machine_name(facts.machine)),
        ),
        Some(machine) => Check::fail(
            "elf.machine",
            format!(
                "{path} is {} but the image is {platform} ({}): it would fail with `exec format error`",
                elf::machine_name(facts.machine),
                elf::machine_name(machine)
            ),
        )
        .remedy(format!("build the binary with GOOS=linux GOARCH={arch} for this platform (gopack sets them from `platforms`)")),
    }
}

fn stripped_check(path: &str, facts: &ElfFacts, strict: bool) -> Check {
    let mut left = Vec::new();
    if facts.has_symtab {
        left.push(".symtab".to_string());
    }
    left.extend(facts.debug_sections.iter().cloned());
    if left.is_empty() {
        return Check::pass(
            "elf.stripped",
            format!("{path} has no symbol table and no debug sections"),
        );
    }
    let status = if strict { Status::Fail } else { Status::Warn };
    Check::new(
        "elf.stripped",
        status,
        format!("{path} keeps {}", left.join(", ")),
    )
    .remedy("build with -ldflags=\"-s -w\" to drop the symbol table and DWARF")
}

fn go_checks(
    info: Option<&Result<BuildInfo, BuildInfoError>>,
    facts: Option<&ElfFacts>,
    image: &FoundImage,
) -> Vec<Check> {
    let ids = ["go.cgo", "go.platform", "go.trimpath", "go.revision"];
    let info = match info {
        None => {
            let mut checks = vec![Check::skip("go.buildinfo", "no entrypoint binary")];
            checks.extend(ids.iter().map(|id| Check::skip(id, "no entrypoint binary")));
            return checks;
        }
        Some(Err(BuildInfoError::NotGo)) => {
            let mut checks = vec![Check::warn(
                "go.buildinfo",
                "the entrypoint is not a Go binary: it has no Go build info",
            )
            .remedy("gopack's checks of Go build settings need a Go binary (Go 1.18 or newer)")];
            checks.extend(ids.iter().map(|id| Check::skip(id, "no Go build info")));
            return checks;
        }
        Some(Err(e)) => {
            let mut checks = vec![Check::warn("go.buildinfo", e.to_string()).remedy(
                "rebuild with Go 1.18 or newer; `go version -m BINARY` shows what Go can read",
            )];
            checks.extend(ids.iter().map(|id| Check::skip(id, "no Go build info")));
            return checks;
        }
        Some(Ok(info)) => info,
    };
    let mut checks = vec![Check::pass(
        "go.buildinfo",
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
        Some("0") => Check::pass("go.cgo", "CGO_ENABLED=0"),
        Some(value) if dynamic => Check::fail(
            "go.cgo",
            format!("CGO_ENABLED={value} and the binary is dynamically linked"),
        )
        .remedy("build with CGO_ENABLED=0 (gopack's default)"),
        Some(value) => Check::warn(
            "go.cgo",
            format!("CGO_ENABLED={value}, though the binary is static"),
        )
        .remedy("build with CGO_ENABLED=0 unless the app needs cgo"),
        None => Check::warn("go.cgo", "CGO_ENABLED is not recorded in the build info"),
    });
    let os = image.config.os().to_string();
    let arch = image.config.architecture().to_string();
    checks.push(match (info.setting("GOOS"), info.setting("GOARCH")) {
        (Some(goos), Some(goarch)) if goos == os && goarch == arch => {
            let mut text = format!("GOOS={goos} GOARCH={goarch}");
            if let Some(goarm) = info.setting("GOARM") {
                text.push_str(&format!(" GOARM={goarm}"));
            }
            Check::pass("go.platform", text)
        }
        (Some(goos), Some(goarch)) => Check::fail(
            "go.platform",
            format!("built for GOOS={goos} GOARCH={goarch}, the image is {os}/{arch}"),
        )
        .remedy(format!("build with GOOS={os} GOARCH={arch}")),
        _ => Check::warn(
            "go.platform",
            "GOOS/GOARCH are not recorded in the build info",
        ),
    });
    checks.push(match info.setting("-trimpath") {
        Some("true") => Check::pass("go.trimpath", "built with -trimpath"),
        _ => Check::warn(
            "go.trimpath",
            "built without -trimpath: the binary holds the build machine's paths",
        )
        .remedy("build with -trimpath for reproducible binaries"),
    });
    let label = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().as_ref())
        .and_then(|l| l.get("org.opencontainers.image.revision"))
        .cloned();
    let revision = info.setting("vcs.revision");
    checks.push(match (revision, label) {
        (Some(revision), Some(label)) => {
            let short = revision.len().min(label.len());
            if short >= 7 && revision[..short] == label[..short] {
                if info.setting("vcs.modified") == Some("true") {
                    Check::warn("go.revision", format!("vcs.revision {revision} matches the label, but the tree had uncommitted changes (vcs.modified=true)"))
                        .remedy("build from a clean checkout")
                } else {
                    Check::pass("go.revision", format!("vcs.revision {revision} matches org.opencontainers.image.revision"))
                }
            } else {
                Check::fail("go.revision", format!("the binary is from revision {revision}, the image label org.opencontainers.image.revision says {label}"))
                    .remedy("rebuild the image from the commit the label names, or fix the label")
            }
        }
        (Some(revision), None) => Check::skip("go.revision", format!("vcs.revision {revision}; the image has no org.opencontainers.image.revision label")),
        (None, Some(label)) => Check::skip("go.revision", format!("the label says {label}; the binary records no vcs.revision (-buildvcs=false or built outside a repository)")),
        (None, None) => Check::skip("go.revision", "neither vcs.revision nor an org.opencontainers.image.revision label"),
    });
    checks
}

/// `name:x:uid:gid:...` lines: (name, uid, gid).
fn passwd_entries(text: &str) -> Vec<(String, u32, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect()
}

/// `name:x:gid:members` lines: (name, gid).
fn group_entries(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .collect()
}

fn user_checks(
    config: &oci_spec::image::Config,
    passwd: Option<&str>,
    group: Option<&str>,
    expect: &Expectations,
) -> (Vec<Check>, RunUser) {
    let text = config.user().clone().unwrap_or_default();
    let users = passwd.map(passwd_entries).unwrap_or_default();
    let groups = group.map(group_entries).unwrap_or_default();
    let (user_part, group_part) = match text.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (text.clone(), None),
    };
    let mut checks = Vec::new();
    let numeric_user = user_part.parse::<u32>().ok();
    let numeric_group = group_part.as_deref().and_then(|g| g.parse::<u32>().ok());
    // numeric
    let wanted = match &expect.user {
        Some(u) => format!("{}:{}", u.uid, u.gid()),
        None => "10001:10001".into(),
    };
    checks.push(if text.is_empty() {
        Check::fail("user.numeric", "no USER: the container runs as root")
            .remedy(format!("set a numeric user: USER {wanted}"))
    } else if numeric_user.is_some() && numeric_group.is_some() {
        Check::pass("user.numeric", format!("USER {text}"))
    } else if numeric_user.is_some() && group_part.is_none() {
        Check::warn("user.numeric", format!("USER {text} names no group: the runtime takes it from /etc/passwd, or uses 0 (root)"))
            .remedy(format!("write both ids: USER {wanted}"))
    } else {
        Check::fail("user.numeric", format!("USER {text} uses names: runtimes (e.g. Kubernetes runAsNonRoot) cannot tell it is not root"))
            .remedy(format!("write numeric ids: USER {wanted}"))
    });
    // Resolve to ids.
    let uid = match (&numeric_user, user_part.as_str()) {
        (Some(uid), _) => Some(*uid),
        (None, "") => Some(0),
        (None, name) => users.iter().find(|u| u.0 == name).map(|u| u.1),
    };
    let gid = match (&numeric_group, group_part.as_deref()) {
        (Some(gid), _) => Some(*gid),
        (None, None) => uid
            .and_then(|uid| users.iter().find(|u| u.1 == uid).map(|u| u.2))
            .or(Some(0)),
        (None, Some(name)) => groups.iter().find(|g| g.0 == name).map(|g| g.1),
    };
    checks.push(match (uid, gid) {
        (Some(0), _) => Check::fail("user.root", "the container runs as root (uid 0)")
            .remedy(format!("run as an unprivileged user: USER {wanted}, with that user in /etc/passwd")),
        (Some(uid), Some(0)) => Check::warn("user.root", format!("uid {uid}, but the primary group is root (gid 0)"))
            .remedy(format!("give the user its own group: USER {wanted}")),
        (Some(uid), Some(gid)) => Check::pass("user.root", format!("runs as uid {uid}, gid {gid}")),
        (Some(uid), None) => Check::warn("user.root", format!("uid {uid}; the group `{}` is not in /etc/group", group_part.clone().unwrap_or_default())),
        (None, _) => Check::fail("user.root", format!("cannot tell who `{user_part}` is: not in /etc/passwd, so the runtime refuses to start or falls back to root"))
            .remedy(format!("use numeric ids: USER {wanted}")),
    });
    // passwd and group
    let mut problems = Vec::new();
    let mut facts = Vec::new();
    if passwd.is_none() {
        problems.push("the image has no /etc/passwd".to_string());
    }
    if group.is_none() {
        problems.push("the image has no /etc/group".to_string());
    }
    if let Some(uid) = uid.filter(|_| passwd.is_some()) {
        match users.iter().find(|u| u.1 == uid) {
            Some((name, _, _)) => {
                facts.push(format!("uid {uid} is `{name}` in /etc/passwd"));
                if let Some(expected) = &expect.user {
                    if name != &expected.name {
                        problems.push(format!(
                            "uid {uid} is `{name}`, the app's user is `{}`",
                            expected.name
                        ));
                    }
                }
            }
            None => problems.push(format!("uid {uid} is not in /etc/passwd")),
        }
    }
    if let Some(gid) = gid.filter(|_| group.is_some()) {
        match groups.iter().find(|g| g.1 == gid) {
            Some((name, _)) => facts.push(format!("gid {gid} is `{name}` in /etc/group")),
            None => problems.push(format!("gid {gid} is not in /etc/group")),
        }
    }
    if let Some(expected) = &expect.user {
        if uid.is_some_and(|u| u != expected.uid) || gid.is_some_and(|g| g != expected.gid()) {
            problems.push(format!(
                "the image runs as {}:{}, the app's user is {}:{}",
                uid.map(|u| u.to_string()).unwrap_or("?".into()),
                gid.map(|g| g.to_string()).unwrap_or("?".into()),
                expected.uid,
                expected.gid()
            ));
        }
    }
    checks.push(if problems.is_empty() {
        Check::pass("user.passwd", facts.join("; "))
    } else {
        Check::fail("user.passwd", problems.join("; "))
            .remedy("add the user to /etc/passwd and its group to /etc/group (e.g. `appuser:x:10001:10001::/nonexistent:/sbin/nologin`), matching USER")
    });
    (checks, RunUser { uid, gid })
}

fn shell_check(tree: &Tree) -> Check {
    let found: Vec<String> = tree
        .nodes
        .iter()
        .filter(|(path, node)| {
            matches!(node.kind, Kind::File | Kind::Symlink)
                && SHELLS.contains(&path.rsplit('/').next().unwrap_or(""))
        })
        .map(|(path, node)| match &node.link {
            Some(link) => format!("{path} -> {link}"),
            None => path.clone(),
        })
        .collect();
    if found.is_empty() {
        Check::pass("fs.shell", "no shell in the image")
    } else {
        Check::fail("fs.shell", format!("a shell is in the image: {}", found.join(", ")))
            .remedy("build FROM scratch and copy only the binary and the files it needs; an attacker who gets in gets a shell")
    }
}

fn setuid_check(tree: &Tree) -> Check {
    let found: Vec<String> = tree
        .nodes
        .iter()
        .filter(|(_, n)| n.kind == Kind::File && n.mode & 0o6000 != 0)
        .map(|(path, n)| format!("{path} ({:04o})", n.mode & 0o7777))
        .collect();
    if found.is_empty() {
        Check::pass("fs.setuid", "no setuid or setgid files")
    } else {
        Check::fail(
            "fs.setuid",
            format!("setuid/setgid files: {}", found.join(", ")),
        )
        .remedy("remove these files or their setuid/setgid bits (chmod u-s,g-s)")
    }
}

fn world_writable_check(tree: &Tree) -> Check {
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
            "fs.world-writable",
            "nothing is world-writable (a sticky /tmp may be)",
        )
    } else {
        Check::fail(
            "fs.world-writable",
            format!("world-writable: {}", found.join(", ")),
        )
        .remedy("drop the o+w bit (chmod o-w); only /tmp may be 1777")
    }
}

/// Counts PEM `CERTIFICATE` blocks whose body decodes to DER; returns (good, bad).
pub(crate) fn count_certificates(text: &str) -> (usize, usize) {
    let (mut good, mut bad) = (0, 0);
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b) = body.take() {
                match base64_decode(&b) {
                    Some(der) if der_sequence_ok(&der) => good += 1,
                    _ => bad += 1,
                }
            }
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    (good, bad)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A DER SEQUENCE whose length covers exactly the bytes given.
fn der_sequence_ok(der: &[u8]) -> bool {
    if der.len() < 2 || der[0] != 0x30 {
        return false;
    }
    let (length, header) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => match der.get(2) {
            Some(&n) => (usize::from(n), 3),
            None => return false,
        },
        0x82 => match (der.get(2), der.get(3)) {
            (Some(&a), Some(&b)) => ((usize::from(a) << 8) | usize::from(b), 4),
            _ => return false,
        },
        0x83 => match (der.get(2), der.get(3), der.get(4)) {
            (Some(&a), Some(&b), Some(&c)) => (
                (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c),
                5,
            ),
            _ => return false,
        },
        _ => return false,
    };
    header + length == der.len()
}

fn certs_check(
    tree: &Tree,
    binary: Option<&[u8]>,
    expect: &Expectations,
    content: &dyn Fn(&Node) -> Result<FileBytes, String>,
) -> Check {
    let uses_x509 = binary.is_some_and(|b| elf::contains(b, b"crypto/x509."));
    let why = match (expect.certs, uses_x509) {
        (Some(true), _) => Some("the app's config asks for certs"),
        (_, true) => Some("the binary uses crypto/x509"),
        _ => None,
    };
    let bundle = tree
        .resolve(CA_BUNDLE)
        .filter(|(_, n)| n.kind == Kind::File)
        .map(|(_, n)| content(n));
    match (bundle, why) {
        (None, None) => Check::skip(
            "certs.bundle",
            "no CA bundle, and none needed: the binary does not use crypto/x509",
        ),
        (None, Some(_)) if expect.certs == Some(false) => Check::warn(
            "certs.bundle",
            "no CA bundle, as configured (certs = false), though the binary uses crypto/x509: outgoing TLS connections will fail; fine for a server that makes none",
        )
        .remedy("set certs = true if the app calls TLS services"),
        (None, Some(why)) => Check::fail(
            "certs.bundle",
            format!("no CA bundle at {CA_BUNDLE}, but {why}: TLS connections will fail with `x509: certificate signed by unknown authority`"),
        )
        .remedy(format!("copy a CA bundle to {CA_BUNDLE} (gopack: certs = true; Dockerfile: COPY --from=builder {CA_BUNDLE} {CA_BUNDLE})")),
        (Some(Err(e)), _) => Check::fail("certs.bundle", format!("{CA_BUNDLE} cannot be read: {e}")),
        (Some(Ok(bytes)), why) => {
            let (good, bad) = count_certificates(&String::from_utf8_lossy(&bytes));
            let reason = why.map(|w| format!(" ({w})")).unwrap_or_default();
            if good == 0 {
                Check::fail("certs.bundle", format!("{CA_BUNDLE} holds no certificate{reason}"))
                    .remedy("copy a real CA bundle (update-ca-certificates writes one)")
            } else if bad > 0 {
                Check::warn("certs.bundle", format!("{CA_BUNDLE}: {good} certificates and {bad} PEM blocks that do not decode{reason}"))
                    .remedy("regenerate the bundle with update-ca-certificates")
            } else {
                Check::pass("certs.bundle", format!("{CA_BUNDLE}: {good} certificates{reason}"))
            }
        }
    }
}

fn zoneinfo_check(
    tree: &Tree,
    binary: Option<&[u8]>,
    expect: &Expectations,
    content: &dyn Fn(&Node) -> Result<FileBytes, String>,
) -> Check {
    let embedded = binary.is_some_and(|b| elf::contains(b, b"time/tzdata."));
    let loads = binary.is_some_and(|b| elf::contains(b, b"time.LoadLocation"));
    let is_tzif = |path: &str| {
        tree.resolve(path)
            .is_some_and(|(_, n)| n.kind == Kind::File && n.head.starts_with(b"TZif"))
    };
    let prefix = format!("{ZONEINFO}/");
    let zones = tree
        .nodes
        .iter()
        .filter(|(p, n)| {
            p.starts_with(&prefix) && n.kind == Kind::File && n.head.starts_with(b"TZif")
        })
        .count();
    let mut problems = Vec::new();
    if expect.tzdata == Some(Tzdata::Embed) && !embedded {
        problems.push(
            "the app's config says tzdata = \"embed\" but the binary does not embed time/tzdata"
                .to_string(),
        );
    }
    if let Some(zone) = &expect.timezone {
        if !embedded && !is_tzif(&format!("{ZONEINFO}/{zone}")) {
            problems.push(format!(
                "the configured timezone {zone} is not a TZif file under {ZONEINFO}"
            ));
        }
        if !is_tzif("/etc/localtime") {
            problems.push(format!("/etc/localtime is not a TZif file for {zone}"));
        }
        let written = tree
            .resolve("/etc/timezone")
            .and_then(|(_, n)| content(n).ok())
            .map(|b| String::from_utf8_lossy(&b).trim().to_string());
        if written.as_deref() != Some(zone.as_str()) {
            problems.push(format!("/etc/timezone does not say {zone}"));
        }
    }
    let files_wanted =
        expect.tzdata == Some(Tzdata::Files) || (expect.tzdata.is_none() && loads && !embedded);
    if zones > 0 && !is_tzif(&format!("{ZONEINFO}/UTC")) && !is_tzif(&format!("{ZONEINFO}/Etc/UTC"))
    {
        problems.push(format!("{ZONEINFO}/UTC is missing or not TZif"));
    }
    if files_wanted && zones == 0 {
        let why = if expect.tzdata == Some(Tzdata::Files) {
            "the app's config says tzdata = true"
        } else {
            "the binary calls time.LoadLocation"
        };
        problems.push(format!("no zoneinfo under {ZONEINFO}, but {why}: LoadLocation will fail with `unknown time zone`"));
    }
    if !problems.is_empty() {
        return Check::fail("tz.zoneinfo", problems.join("; "))
            .remedy(format!("copy the zoneinfo folder to {ZONEINFO} (gopack: tzdata = true), or build with -tags timetzdata (tzdata = \"embed\")"));
    }
    match (zones, embedded) {
        (0, true) => Check::pass(
            "tz.zoneinfo",
            "zoneinfo is embedded in the binary (time/tzdata)",
        ),
        (0, false) if loads && expect.tzdata == Some(Tzdata::None) => Check::warn(
            "tz.zoneinfo",
            "no zoneinfo, as configured (tzdata = false), though the binary calls time.LoadLocation: only UTC and fixed zones will load",
        )
        .remedy("set tzdata = true, or tzdata = \"embed\", if the app loads named zones"),
        (0, false) => Check::skip(
            "tz.zoneinfo",
            "no zoneinfo, and none needed: the binary does not call time.LoadLocation",
        ),
        (n, embedded) => Check::pass(
            "tz.zoneinfo",
            format!(
                "{n} TZif zone files under {ZONEINFO}{}",
                if embedded {
                    ", and time/tzdata embedded"
                } else {
                    ""
                }
            ),
        ),
    }
}

fn env_check(env: &[String], expect: &Expectations, strict: bool) -> Check {
    let mut unexpected = Vec::new();
    let mut problems = Vec::new();
    let value = |key: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    };
    match (&expect.timezone, value("TZ")) {
        (None, Some(tz)) => unexpected.push(format!("TZ={tz}")),
        (Some(zone), Some(tz)) if tz != zone && tz != format!(":{zone}") => {
            problems.push(format!("TZ={tz}, the configured timezone is {zone}"))
        }
        (Some(zone), None) => {
            problems.push(format!("TZ is not set, the configured timezone is {zone}"))
        }
        _ => {}
    }
    for key in LOCALE_VARS {
        match (&expect.locale, value(key)) {
            (None, Some(v)) => unexpected.push(format!("{key}={v}")),
            (Some(locale), None) => problems.push(format!(
                "{key} is not set, the configured locale is {locale}"
            )),
            _ => {}
        }
    }
    if !problems.is_empty() {
        return Check::fail("config.env", problems.join("; "))
            .remedy("set TZ, LANG, LANGUAGE and LC_ALL as the app's config says");
    }
    if unexpected.is_empty() {
        return Check::pass(
            "config.env",
            match (&expect.timezone, &expect.locale) {
                (None, None) => {
                    "no TZ, LANG, LANGUAGE or LC_ALL: neutral time zone and locale".to_string()
                }
                _ => "TZ and locale as configured".to_string(),
            },
        );
    }
    let status = if strict { Status::Fail } else { Status::Warn };
    Check::new(
        "config.env",
        status,
        format!("the config fixes {}", unexpected.join(", ")),
    )
    .remedy("stay neutral (UTC, UTF-8) and let clients present time and language; if a fixed zone or locale is really needed, set `timezone`/`locale` in the app's config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_counted() {
        let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt");
        if let Ok(bundle) = bundle {
            let (good, bad) = count_certificates(&bundle);
            assert!(good > 50, "{good}");
            assert_eq!(bad, 0);
        }
        let (good, bad) = count_certificates(
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        );
        assert_eq!((good, bad), (1, 1));
    }

    #[test]
    fn passwd_lines() {
        let users = passwd_entries("root:x:0:0:root:/root:/sbin/nologin\n# c\nappuser:x:10001:10001::/nonexistent:/sbin/nologin\nbad");
        assert_eq!(users[1], ("appuser".into(), 10001, 10001));
        assert_eq!(users.len(), 2);
        assert_eq!(
            group_entries("appuser:x:10001:\n"),
            vec![("appuser".into(), 10001)]
        );
    }

    #[test]
    fn env_rules() {
        let foreign = Expectations::default();
        let env = vec!["PATH=/bin".to_string(), "LANG=C.UTF-8".to_string()];
        assert_eq!(env_check(&env, &foreign, false).status, Status::Warn);
        assert_eq!(env_check(&env, &foreign, true).status, Status::Fail);
        let fixed = Expectations {
            timezone: Some("Europe/Paris".into()),
            ..Default::default()
        };
        let env = vec!["TZ=Europe/Paris".to_string()];
        assert_eq!(env_check(&env, &fixed, true).status, Status::Pass);
        assert_eq!(env_check(&[], &fixed, true).status, Status::Fail);
    }
}
