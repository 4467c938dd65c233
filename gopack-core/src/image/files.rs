//! The app's extra files (`files`, see [`crate::config::files`]) in the app
//! layer's tree: owned by root, mode as configured, folders copied whole;
//! sources read only beneath their root (see [`crate::config::confine`]);
//! links, FIFOs, sockets and devices refused before anything is opened;
//! contents hashed into the layer key.

use super::rootfs::{Content, Tree};
use crate::cache::KeyHasher;
use crate::config::files::{parse_mode, shadows, DEFAULT_MODE, SRC_HELP};
use crate::config::App;
use crate::error::{Error, IoContext, Result};
use camino::Utf8Path;

/// Adds the app's extra files to `tree`; returns a key over their paths, modes and bytes.
pub fn add_to_tree(app: &App, tree: &mut Tree) -> Result<String> {
    let mut hasher = KeyHasher::new("files/v1");
    let binary = app.binary_path();
    for (index, file) in app.config.files.iter().enumerate() {
        let mode = match &file.mode {
            Some(text) => parse_mode(text).unwrap_or(DEFAULT_MODE),
            None => DEFAULT_MODE,
        };
        let key = format!("files[{index}]");
        // Beneath the app's folder (or `files-root`), no symlink out, nothing but files and folders.
        let resolved = app
            .sources
            .resolve(&file.src)
            .map_err(|refused| Error::Config {
                manifest: app.manifest.clone(),
                key: app.key(&format!("{key}.src")),
                message: format!("`{}` {refused}", file.src),
                help: SRC_HELP.into(),
            })?;
        let src = resolved.path;
        let meta = std::fs::symlink_metadata(&src).at(&src, "read")?;
        let mut copied = Vec::new();
        if meta.is_dir() {
            collect(&src, &src, &mut copied)?;
            let base = file.dst.trim_end_matches('/');
            tree.dir(if base.is_empty() { "/" } else { base }, 0o755);
            for (relative, kind) in copied.drain(..) {
                let dst = format!("{base}/{relative}");
                add(
                    app,
                    tree,
                    &key,
                    &binary,
                    &dst,
                    &src.join(&relative),
                    kind,
                    mode,
                    &mut hasher,
                )?;
            }
        } else {
            let dst = if file.dst.ends_with('/') {
                format!("{}{}", file.dst, src.file_name().unwrap_or("file"))
            } else {
                file.dst.clone()
            };
            add(
                app,
                tree,
                &key,
                &binary,
                &dst,
                &src,
                Kind::of(&meta),
                mode,
                &mut hasher,
            )?;
        }
    }
    Ok(hasher.finish())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Other,
}

impl Kind {
    fn of(meta: &std::fs::Metadata) -> Kind {
        if meta.is_file() {
            Kind::File
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn add(
    app: &App,
    tree: &mut Tree,
    key: &str,
    binary: &str,
    dst: &str,
    src: &Utf8Path,
    kind: Kind,
    mode: u32,
    hasher: &mut KeyHasher,
) -> Result<()> {
    let error = |message: String, help: &str| Error::Config {
        manifest: app.manifest.clone(),
        key: app.key(key),
        message,
        help: help.into(),
    };
    if let Some(owner) = shadows(dst, binary) {
        return Err(error(
            format!("{src} would go to {dst}, shadowing {owner}, which gopack writes"),
            "copy the folder somewhere else, e.g. under /etc/<app>/ or /srv/",
        ));
    }
    match kind {
        Kind::Dir => {
            tree.dir(dst, 0o755);
            hasher.text("dir", dst);
        }
        Kind::File => {
            tree.file(dst, mode, Content::Host(src.to_path_buf()));
            hasher.text("path", dst).text("mode", &format!("{mode:o}"));
            hasher.file("bytes", src)?;
        }
        Kind::Other => {
            return Err(error(
                format!("{src} is not a regular file or folder (a symbolic link, FIFO, socket or device)"),
                "copy the file a link points to into the folder instead of the link; FIFOs, sockets and devices are never read",
            ))
        }
    }
    Ok(())
}

/// Every entry under `dir`, relative, sorted, folders before their contents.
fn collect(root: &Utf8Path, dir: &Utf8Path, out: &mut Vec<(String, Kind)>) -> Result<()> {
    let mut entries = dir
        .read_dir_utf8()
        .at(dir, "list")?
        .collect::<std::io::Result<Vec<_>>>()
        .at(dir, "list")?;
    entries.sort_by(|a, b| a.file_name().cmp(b.file_name()));
    for entry in entries {
        let meta = std::fs::symlink_metadata(entry.path()).at(entry.path(), "read")?;
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("entries are under the root")
            .to_string();
        let kind = Kind::of(&meta);
        out.push((relative, kind));
        if kind == Kind::Dir {
            collect(root, entry.path(), out)?;
        }
    }
    Ok(())
}
