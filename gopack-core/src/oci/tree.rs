//! The files of a layer before it is written: entries sorted by path,
//! parents first, each a folder, bytes, a host file or a symlink.

use crate::cache::stat::StatCache;
use crate::cache::KeyHasher;
use crate::error::{IoContext, Result};
use camino::Utf8PathBuf;
use std::collections::BTreeMap;

/// What a file in the image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A folder.
    Dir,
    /// A file with these bytes.
    Bytes(Vec<u8>),
    /// A file copied from the host, streamed when the layer is written.
    Host(Utf8PathBuf),
    /// A symbolic link to this target.
    Symlink(String),
}

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the image, relative (`etc/passwd`).
    pub path: String,
    /// Permission bits, including sticky and setuid bits.
    pub mode: u32,
    /// What the entry holds.
    pub content: Content,
}

/// The files of a layer, sorted by path, parents before children.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    /// Adds a file, creating its parent folders (0755).
    pub fn file(&mut self, path: &str, mode: u32, content: Content) {
        let path = path.trim_start_matches('/').to_string();
        self.parents(&path);
        self.entries.insert(
            path.clone(),
            Entry {
                path,
                mode,
                content,
            },
        );
    }

    /// Adds a folder with `mode`, creating its parents (0755).
    pub fn dir(&mut self, path: &str, mode: u32) {
        let path = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        self.parents(&path);
        self.entries.insert(
            path.clone(),
            Entry {
                path,
                mode,
                content: Content::Dir,
            },
        );
    }

    fn parents(&mut self, path: &str) {
        // Most files land in a folder already made: one lookup, not one per level.
        match path.rsplit_once('/') {
            None => return,
            Some((parent, _)) if self.entries.contains_key(parent) => return,
            Some(_) => {}
        }
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !self.entries.contains_key(&prefix) {
                self.entries.insert(
                    prefix.clone(),
                    Entry {
                        path: prefix.clone(),
                        mode: 0o755,
                        content: Content::Dir,
                    },
                );
            }
        }
    }

    /// The entries in layer order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Hashes every entry, host files by content (through `stats`), into `hasher`.
    pub fn hash_into(&self, hasher: &mut KeyHasher, stats: &mut StatCache) -> Result<()> {
        for entry in self.entries() {
            hasher.text("path", &entry.path);
            hasher.text("mode", &format!("{:o}", entry.mode));
            match &entry.content {
                Content::Dir => hasher.text("dir", ""),
                Content::Bytes(bytes) => hasher.field("bytes", bytes),
                Content::Host(path) => {
                    let meta = std::fs::metadata(path).at(path, "read")?;
                    hasher.field("sha256", &stats.content_hash(path, &meta)?)
                }
                Content::Symlink(target) => hasher.text("symlink", target),
            };
        }
        Ok(())
    }
}
