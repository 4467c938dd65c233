//! The checks of one platform's image, each a fact read from the image, by
//! family ([`Family`]): its blobs, its config, its entrypoint binary, its
//! user, its file tree, its CA bundle and its zoneinfo. [`check_image`] reads
//! the image once and runs them all in report order.

mod binary;
mod blobs;
mod certs;
mod config;
mod fs;
pub(crate) mod sign;
mod tz;
mod user;

use super::buildinfo::read_build_info;
use super::elf::ElfFacts;
use super::layers::FileBytes;
use super::layers::{Kind, Node, Tree};
use super::report::Check;
use super::source::{FoundImage, Opened};
use super::Expectations;
use crate::check_id::CheckId;
use crate::config::ByteSize;
use crate::oci::documents::RunSettings;
use std::collections::BTreeSet;

/// Where Go (and most distributions) look for the CA bundle first.
pub(crate) const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Names of shells and multi-call binaries that give a shell.
pub(super) const SHELLS: &[&str] = &[
    "sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "toybox",
];
/// The environment the image config should not fix unless asked.
pub(super) const LOCALE_VARS: &[&str] = &["LANG", "LANGUAGE", "LC_ALL"];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user an image runs as, as far as the image tells.
#[derive(Debug, Clone)]
struct RunUser {
    pub(super) uid: Option<u32>,
    pub(super) gid: Option<u32>,
}

/// Runs every check of one platform image.
pub(crate) fn check_image(
    opened: &Opened,
    image: &FoundImage,
    expect: &Expectations,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let strict = expect.app.is_some();
    let config = image.config.config.clone().unwrap_or_default();
    let env: Vec<String> = config.env().to_vec();
    let program = entrypoint_program(&config);

    let mut wanted: BTreeSet<String> = ["/etc/passwd", "/etc/group", "/etc/timezone", CA_BUNDLE]
        .into_iter()
        .map(String::from)
        .collect();
    if let Some(program) = &program {
        wanted.insert(super::layers::normalize(program));
    }
    let (tree, readings) = Tree::read(&opened.store, &image.layers, &wanted);

    checks.push(blobs::blobs_check(image, &readings));
    checks.push(blobs::layers_check(image, &readings, expect));
    checks.push(blobs::size_check(&readings, expect));

    let readable = readings.iter().all(|r| r.error.is_none());
    let mut entry = Vec::new();
    entry.push(config::entrypoint_config_check(&config, &program, expect));
    if !readable {
        for &id in CheckId::ALL.iter().filter(|id| id.reads_files()) {
            if id == CheckId::FsPaths {
                // What was read before the layer stopped is reported all the same.
                entry.push(fs::paths_check(&tree, &opened.store, false));
                continue;
            }
            entry.push(Check::skip(
                id,
                "the image's layers could not be read to their end (see blobs.digest)",
            ));
        }
        entry.push(config::env_check(&env, expect, strict));
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
        // Within verify's max-file-size budget, or an error naming it.
        let bytes = content(&node);
        (path, node, bytes)
    });

    let (user_checks, run_user) =
        user::user_checks(&config, passwd.as_deref(), group.as_deref(), expect);

    match (&program, &binary) {
        (None, _) => entry.push(Check::skip(
            CheckId::EntrypointExists,
            "the image has no entrypoint",
        )),
        (Some(program), None) => entry.push(
            Check::fail(
                CheckId::EntrypointExists,
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
                CheckId::EntrypointExists,
                format!("{shown} ({})", ByteSize(node.size)),
            ));
        }
    }
    entry.push(match &binary {
        None => Check::skip(CheckId::EntrypointPermissions, "no entrypoint binary"),
        Some((path, node, _)) => binary::permissions_check(path, node, &run_user),
    });

    // The binary: ELF and Go build info.
    let bytes = binary.as_ref().and_then(|(_, _, b)| b.as_ref().ok());
    let facts = bytes.map(|b| ElfFacts::parse(b));
    match (&binary, &facts) {
        (None, _) => {
            for id in [
                CheckId::ElfStatic,
                CheckId::ElfLoadable,
                CheckId::ElfMachine,
                CheckId::ElfStripped,
            ] {
                entry.push(Check::skip(id, "no entrypoint binary"));
            }
        }
        (Some((_, _, Err(why))), _) => {
            for id in [
                CheckId::ElfStatic,
                CheckId::ElfLoadable,
                CheckId::ElfMachine,
                CheckId::ElfStripped,
            ] {
                entry.push(Check::fail(
                    id,
                    format!("the binary could not be read: {why}"),
                ));
            }
        }
        (Some((path, _, _)), Some(Err(why))) => {
            for id in [
                CheckId::ElfStatic,
                CheckId::ElfLoadable,
                CheckId::ElfMachine,
                CheckId::ElfStripped,
            ] {
                entry.push(
                    Check::fail(id, format!("{path}: {why}"))
                        .remedy("the entrypoint should be a Linux ELF executable (a Go binary)"),
                );
            }
        }
        (Some((path, _, _)), Some(Ok(facts))) => {
            entry.push(binary::static_check(
                path,
                facts,
                &tree,
                &opened.store,
                image,
            ));
            if let Some(bytes) = bytes {
                let files = super::loadable::ImageFiles {
                    tree: &tree,
                    store: &opened.store,
                    layers: &image.layers,
                };
                entry.push(super::loadable::loadable_check(path, bytes, &files));
            }
            entry.push(binary::machine_check(path, facts, image));
            entry.push(binary::stripped_check(path, facts, strict));
        }
        _ => {}
    }
    let info = bytes.map(|b| read_build_info(b));
    entry.extend(binary::go_checks(
        info.as_ref(),
        facts.as_ref().and_then(|f| f.as_ref().ok()),
        image,
    ));
    checks.extend(entry);
    checks.extend(user_checks);
    checks.push(fs::paths_check(&tree, &opened.store, true));
    checks.push(fs::shell_check(&tree));
    checks.push(fs::setuid_check(&tree));
    checks.push(fs::world_writable_check(&tree));
    let bytes = bytes.map(|b| b.as_slice());
    checks.push(certs::certs_check(&tree, bytes, expect, &content));
    checks.push(tz::zoneinfo_check(&tree, bytes, expect, &content));
    checks.push(config::env_check(&env, expect, strict));
    let labels = |name: &str| {
        image
            .config
            .config
            .as_ref()
            .and_then(|c| c.label(name))
            .map(str::to_string)
    };
    super::loadable::apply_cgo_expectation(&mut checks, expect, &labels);
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
fn entrypoint_program(config: &RunSettings) -> Option<String> {
    config
        .entrypoint
        .as_ref()
        .filter(|e| !e.is_empty())
        .or(config.cmd.as_ref())
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
