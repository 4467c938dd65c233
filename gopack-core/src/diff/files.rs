//! An image's files as `diff` compares them: every layer streamed once
//! through verify's readers (any compression, within the source's budgets),
//! whiteouts applied, and per path only its metadata and the sha256 of its
//! content — never the content itself, so memory grows with the number of
//! files, not their size.

use crate::error::{Error, Result};
use crate::verify::read::{decompress, for_each_entry, FoundImage, Metered, Opened};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// What one path of an image is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileMeta {
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: &'static str,
    /// Permission bits (and setuid, setgid, sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Bytes (files).
    pub size: u64,
    /// A symlink's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// `sha256:` of a file's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The layer that put it here (for opaque whiteouts).
    #[serde(skip)]
    layer: usize,
}

/// Turns a tar path into an absolute, normalized image path (`/etc/passwd`).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

fn beneath(path: &str, dir: &str) -> bool {
    dir == "/" || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Every path of `image`'s merged file tree.
pub(crate) fn read_tree(opened: &Opened, image: &FoundImage) -> Result<BTreeMap<String, FileMeta>> {
    let mut tree: BTreeMap<String, FileMeta> = BTreeMap::new();
    let store = &opened.store;
    for (index, layer) in image.layers.iter().enumerate() {
        let fail = |e: io::Error| Error::Invalid {
            path: store.at(&layer.name),
            message: format!("layer {} cannot be read: {e}", index + 1),
            help: "pass an image whose layers are complete tar archives (gzip, zstd or plain)"
                .into(),
        };
        let raw = store.open_blob(&layer.name)?;
        let (plain, _) = decompress(raw).map_err(fail)?;
        let mut archive = tar::Archive::new(Metered {
            inner: plain,
            budget: &store.budget,
        });
        for_each_entry(&mut archive, &store.budget, |entry| {
            apply(&mut tree, index, entry)?;
            Ok(true)
        })
        .map_err(fail)?;
    }
    Ok(tree)
}

/// What one tar entry does to the tree.
fn apply<R: Read>(
    tree: &mut BTreeMap<String, FileMeta>,
    layer: usize,
    entry: &mut tar::Entry<'_, R>,
) -> io::Result<()> {
    let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
    let (dir, name) = match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("/", path.as_str()),
    };
    if name == ".wh..wh..opq" {
        let dir = dir.to_string();
        tree.retain(|p, meta| !(beneath(p, &dir) && meta.layer < layer));
        return Ok(());
    }
    if let Some(hidden) = name.strip_prefix(".wh.") {
        let target = if dir == "/" {
            format!("/{hidden}")
        } else {
            format!("{dir}/{hidden}")
        };
        tree.retain(|p, _| p != &target && !beneath(p, &target));
        return Ok(());
    }
    let header = entry.header();
    let kind = header.entry_type();
    let mut meta = FileMeta {
        kind: "other",
        mode: header.mode().unwrap_or(0) & 0o7777,
        uid: header.uid().unwrap_or(0),
        gid: header.gid().unwrap_or(0),
        size: 0,
        link: None,
        digest: None,
        layer,
    };
    if kind.is_dir() {
        meta.kind = "dir";
    } else if kind.is_symlink() {
        meta.kind = "symlink";
        meta.link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
    } else if kind.is_hard_link() {
        let target = entry
            .link_name_bytes()
            .map(|l| normalize(&String::from_utf8_lossy(&l)))
            .unwrap_or_default();
        match tree.get(&target) {
            Some(found) => {
                meta = FileMeta {
                    layer,
                    ..found.clone()
                }
            }
            None => meta.link = Some(target),
        }
    } else if kind.is_file() || kind == tar::EntryType::Continuous {
        meta.kind = "file";
        let mut hasher = HashWriter(Sha256::new(), 0);
        io::copy(entry, &mut hasher)?;
        meta.size = hasher.1;
        meta.digest = Some(format!("sha256:{}", hex::encode(hasher.0.finalize())));
    }
    if path != "/" {
        tree.insert(path, meta);
    }
    Ok(())
}

struct HashWriter(Sha256, u64);

impl io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        self.1 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One field of a path that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// `kind`, `size`, `mode`, `owner`, `link` or `content`.
    pub field: &'static str,
    /// Before (in A).
    pub before: String,
    /// After (in B).
    pub after: String,
}

/// A path in both images that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    /// The path in the image.
    pub path: String,
    /// What differs.
    pub changes: Vec<FieldChange>,
}

/// A path and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathMeta {
    /// The path in the image.
    pub path: String,
    /// What it is.
    #[serde(flatten)]
    pub meta: FileMeta,
}

/// How the files of two trees differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileChanges {
    /// Paths only in B.
    pub added: Vec<PathMeta>,
    /// Paths only in A.
    pub removed: Vec<PathMeta>,
    /// Paths in both that differ.
    pub changed: Vec<ChangedFile>,
}

impl FileChanges {
    /// Whether the trees hold the same files.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compares two trees path by path.
pub fn compare(a: &BTreeMap<String, FileMeta>, b: &BTreeMap<String, FileMeta>) -> FileChanges {
    let mut out = FileChanges::default();
    for (path, before) in a {
        match b.get(path) {
            None => out.removed.push(PathMeta {
                path: path.clone(),
                meta: before.clone(),
            }),
            Some(after) => {
                let changes = fields(before, after);
                if !changes.is_empty() {
                    out.changed.push(ChangedFile {
                        path: path.clone(),
                        changes,
                    });
                }
            }
        }
    }
    for (path, after) in b {
        if !a.contains_key(path) {
            out.added.push(PathMeta {
                path: path.clone(),
                meta: after.clone(),
            });
        }
    }
    out
}

fn fields(a: &FileMeta, b: &FileMeta) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut push = |field, before: String, after: String| {
        if before != after {
            changes.push(FieldChange {
                field,
                before,
                after,
            });
        }
    };
    push("kind", a.kind.into(), b.kind.into());
    push("size", a.size.to_string(), b.size.to_string());
    push("mode", format!("{:04o}", a.mode), format!("{:04o}", b.mode));
    push(
        "owner",
        format!("{}:{}", a.uid, a.gid),
        format!("{}:{}", b.uid, b.gid),
    );
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    push("link", text(&a.link), text(&b.link));
    push("content", text(&a.digest), text(&b.digest));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: u32, digest: &str) -> FileMeta {
        FileMeta {
            kind: "file",
            mode,
            uid: 0,
            gid: 0,
            size: 3,
            link: None,
            digest: Some(digest.into()),
            layer: 0,
        }
    }

    #[test]
    fn trees_compare_by_metadata_and_digest() {
        let a = BTreeMap::from([
            ("/a".to_string(), meta(0o644, "sha256:1")),
            ("/b".to_string(), meta(0o755, "sha256:2")),
            ("/gone".to_string(), meta(0o644, "sha256:3")),
        ]);
        let b = BTreeMap::from([
            ("/a".to_string(), meta(0o644, "sha256:1")),
            ("/b".to_string(), meta(0o700, "sha256:9")),
            ("/new".to_string(), meta(0o644, "sha256:4")),
        ]);
        let changes = compare(&a, &b);
        assert_eq!(changes.added[0].path, "/new");
        assert_eq!(changes.removed[0].path, "/gone");
        assert_eq!(changes.changed.len(), 1);
        let fields: Vec<&str> = changes.changed[0].changes.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["mode", "content"]);
        assert!(compare(&a, &a).is_empty());
    }
}
