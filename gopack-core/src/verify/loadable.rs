//! `elf.loadable`: a dynamically linked entrypoint starts only when its loader
//! (`PT_INTERP`) and every shared object it needs resolve inside the image,
//! by the loader's rules ([`crate::ldso`]) applied to the image's own files.
//! Also what an app that asked for cgo changes in `elf.static` and `go.cgo`.

use super::layers::{Kind, Tree};
use super::report::{Check, Status};
use super::source::{LayerRef, Store};
use super::Expectations;
use crate::build::cgo::LIBRARIES_LABEL;
use crate::check_id::CheckId;
use crate::config::Cgo;
use crate::ldso::{self, Entry, Files};

/// The largest file the resolver reads from an image (bytes).
const MAX_READ: u64 = 512 << 20;

/// An image's merged file tree, read through its layers.
pub(crate) struct ImageFiles<'a> {
    pub tree: &'a Tree,
    pub store: &'a Store,
    pub layers: &'a [LayerRef],
}

impl Files for ImageFiles<'_> {
    fn entry(&self, path: &str) -> Entry {
        match self.tree.nodes.get(path) {
            Some(node) => match node.kind {
                Kind::Dir => Entry::Dir,
                Kind::File => Entry::File(node.size),
                Kind::Symlink => {
                    Entry::Symlink(node.link.as_deref().unwrap_or_default().to_string())
                }
                Kind::Other => Entry::Missing,
            },
            None => {
                // A folder need not have its own entry when its files do.
                let prefix = format!("{path}/");
                match self.tree.nodes.range(prefix.clone()..).next() {
                    Some((key, _)) if key.starts_with(&prefix) => Entry::Dir,
                    _ => Entry::Missing,
                }
            }
        }
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let node = self
            .tree
            .nodes
            .get(path)
            .ok_or_else(|| format!("{path} is not in the image"))?;
        if node.size > MAX_READ {
            return Err(format!("{path}: {} bytes is too large to read", node.size));
        }
        self.tree
            .content(self.store, self.layers, node)
            .map(|bytes| bytes.as_ref().clone())
    }

    fn list(&self, path: &str) -> Vec<String> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.tree
            .nodes
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter_map(|(key, _)| key.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(String::from)
            .collect()
    }
}

/// `elf.loadable` for the entrypoint at `path` with these bytes.
pub(crate) fn loadable_check(path: &str, bytes: &[u8], files: &ImageFiles<'_>) -> Check {
    const ID: CheckId = CheckId::ElfLoadable;
    if !ldso::is_dynamic(bytes) {
        return Check::pass(
            ID,
            format!("{path} is statically linked: it needs no loader and no library"),
        );
    }
    let resolution = match ldso::resolve(files, path, bytes) {
        Ok(resolution) => resolution,
        Err(why) => return Check::fail(ID, format!("{path}: {why}")),
    };
    let mut details: Vec<String> = resolution
        .found
        .iter()
        .map(|o| {
            let what = if o.interpreter { " (loader)" } else { "" };
            if o.path == o.walked.real {
                format!("{}{what} => {}", o.name, o.path)
            } else {
                format!("{}{what} => {} -> {}", o.name, o.path, o.walked.real)
            }
        })
        .collect();
    details.extend(resolution.missing.iter().map(|m| {
        if m.interpreter {
            format!("{} (loader) => not found", m.name)
        } else {
            format!("{} => not found (needed by {})", m.name, m.needed_by)
        }
    }));
    details.extend(resolution.unreadable.iter().map(|u| format!("skipped {u}")));
    let libraries = resolution.found.iter().filter(|o| !o.interpreter).count();
    if resolution.missing.is_empty() {
        return Check::pass(
            ID,
            format!("{path}: the loader and {libraries} shared libraries resolve inside the image"),
        )
        .details(details);
    }
    let names: Vec<&str> = resolution.missing.iter().map(|m| m.name.as_str()).collect();
    Check::fail(
        ID,
        format!(
            "{path} will not start: missing from the image: {}",
            names.join(", ")
        ),
    )
    .details(details)
    .remedy("copy each missing library into the image where the loader looks for it (gopack: cgo = \"dynamic\" copies the loader and every library), or build static (CGO_ENABLED=0, or cgo = \"static\")")
}

/// What an app's `cgo` setting changes in the checks: a dynamic binary is not
/// an `elf.static` failure when the app asked for `cgo = "dynamic"` (then
/// `elf.loadable` decides), and CGO_ENABLED=1 is information when asked for.
///
/// Without the app's config (a foreign image), an image that carries gopack's
/// [`LIBRARIES_LABEL`] was packed with `cgo = "dynamic"`, and is judged so:
/// `elf.loadable` still checks that every library it needs is in the image.
pub(crate) fn apply_cgo_expectation(
    checks: &mut [Check],
    expect: &Expectations,
    labels: &dyn Fn(&str) -> Option<String>,
) {
    let labelled = expect.cgo.is_none() && labels(LIBRARIES_LABEL).is_some();
    let cgo = if labelled {
        Some(Cgo::Dynamic)
    } else {
        expect.cgo
    };
    let Some(cgo) = cgo.filter(|c| c.enabled()) else {
        return;
    };
    let configured = if labelled {
        format!("as its {LIBRARIES_LABEL} label says (gopack's cgo = \"dynamic\")")
    } else {
        format!("as configured (cgo = \"{}\")", cgo.as_str())
    };
    for check in checks.iter_mut() {
        match check.id {
            CheckId::ElfStatic if cgo == Cgo::Dynamic && check.status == Status::Fail => {
                if check
                    .message
                    .contains("position-independent executable (ET_DYN")
                {
                    continue;
                }
                *check = Check::skip(
                    CheckId::ElfStatic,
                    format!("dynamically linked, {configured}: see elf.loadable"),
                );
            }
            CheckId::GoCgo if check.status != Status::Pass && check.status != Status::Skip => {
                let dynamic = check.message.contains("dynamically linked");
                if dynamic && cgo == Cgo::Static {
                    check.remedy = Some(
                        "cgo = \"static\" should give a static binary: check that the C compiler links statically (-extldflags=-static)".into(),
                    );
                    continue;
                }
                if check.message.starts_with("CGO_ENABLED=1") {
                    *check = Check::pass(CheckId::GoCgo, format!("CGO_ENABLED=1, {configured}"));
                }
            }
            _ => {}
        }
    }
}
