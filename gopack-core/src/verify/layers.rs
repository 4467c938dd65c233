//! The image's file tree: every layer streamed once, in order, through its
//! decompressor (gzip, zstd or none, told by magic bytes) and the tar reader,
//! with whiteouts applied; the compressed and uncompressed bytes are hashed on
//! the way to check digests, sizes and diff_ids.
//!
//! Only the first bytes of each file are kept (enough to tell ELF or TZif),
//! plus the whole content of a few wanted paths; anything else is read again
//! from its layer on demand.

use super::limits::{Budget, Metered};
use super::multicall::{is_executable_elf, multicall_in, scan_multicall};
use super::paths::{climbs_out, name_problem, shown, HardLinks, PathFindings};
use super::source::{LayerRef, Store};
use super::stream::{decompress, finish, for_each_entry, hashing, read_capped, HashState, Timed};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};

/// A file's bytes, read once and shared by the checks that need them.
pub(crate) type FileBytes = std::sync::Arc<Vec<u8>>;

/// How many leading bytes of each file are kept.
const HEAD: usize = 8;

/// What kind of entry a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One path of the merged tree.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub mode: u32,
    /// The layer that put the node here (for opaque whiteouts).
    added: u32,
    pub uid: u64,
    pub gid: u64,
    /// The size the tar header gives (a claim: nothing is allocated from it).
    pub size: u64,
    /// The target of a symlink.
    pub link: Option<Box<str>>,
    /// The first bytes of a file, zero-padded.
    pub head: [u8; HEAD],
    /// For an executable ELF file that is a multi-call shell binary: which one
    /// (`busybox`, `toybox`), told by its content whatever its name.
    pub multicall: Option<&'static str>,
    /// Where the file's bytes are: layer index and the path in that layer's tar.
    pub data: (usize, Box<str>),
}

/// What one tar entry does to the tree.
#[derive(Debug, Clone)]
enum Op {
    /// `.wh..wh..opq`: hide what lower layers put in this folder.
    Opaque(String),
    /// `.wh.NAME`: remove a path and what is under it.
    Remove(String),
    Put(String, Node),
}

/// What reading one layer found.
#[derive(Debug, Clone)]
pub(crate) struct LayerReading {
    pub layer: LayerRef,
    /// `sha256:` of the bytes as stored.
    pub digest: Option<String>,
    /// Bytes as stored.
    pub size: u64,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: Option<String>,
    pub compression: &'static str,
    /// Why the layer could not be read to its end.
    pub error: Option<String>,
}

/// The merged file tree of an image.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub nodes: BTreeMap<String, Node>,
    /// Whole contents of wanted files, by (layer, path in the layer).
    captured: HashMap<(usize, Box<str>), FileBytes>,
    /// Entries that could reach outside the image root (`fs.paths`).
    pub paths: PathFindings,
    /// The hard links of the layer being read.
    links: HardLinks,
}

/// Turns a tar path into an absolute, normalized image path (`/etc/passwd`).
pub(crate) fn normalize(path: &str) -> String {
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

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl Tree {
    /// Streams every layer, building the tree; keeps whole contents of `wanted` paths.
    ///
    /// A blob listed more than once is read once: what it does to the tree is
    /// kept from its first reading and done again at its later places.
    pub(crate) fn read(
        store: &Store,
        layers: &[LayerRef],
        wanted: &BTreeSet<String>,
    ) -> (Tree, Vec<LayerReading>) {
        let mut tree = Tree::default();
        let mut readings: Vec<LayerReading> = Vec::new();
        let mut listed: HashMap<&str, usize> = HashMap::new();
        for layer in layers {
            *listed.entry(layer.name.as_str()).or_default() += 1;
        }
        let mut done: HashMap<&str, (usize, Vec<Op>)> = HashMap::new();
        for (index, layer) in layers.iter().enumerate() {
            if let Some((first, ops)) = done.get(layer.name.as_str()) {
                let mut reading = readings[*first].clone();
                reading.layer = layer.clone();
                for op in ops {
                    tree.apply(index, op.clone());
                }
                readings.push(reading);
                continue;
            }
            let keep = listed[layer.name.as_str()] > 1;
            let (reading, ops) = tree.read_layer(store, index, layer, wanted, keep);
            if keep {
                done.insert(&layer.name, (index, ops));
            }
            readings.push(reading);
        }
        (tree, readings)
    }

    /// Reads one layer's bytes (any compression) into a tree of its own; for
    /// the fuzz targets, through the same entry reader as [`Tree::read`].
    pub(crate) fn read_bytes(
        bytes: &[u8],
        wanted: &BTreeSet<String>,
        budget: &Budget,
    ) -> io::Result<Tree> {
        let mut tree = Tree::default();
        let (plain, _) = decompress(bytes)?;
        let mut archive = tar::Archive::new(Metered {
            inner: plain,
            budget,
        });
        let result = for_each_entry(&mut archive, budget, |entry| {
            let op = tree.entry_op(0, entry, wanted, budget)?;
            tree.apply(0, op);
            Ok(true)
        });
        tree.end_layer();
        result?;
        Ok(tree)
    }

    fn read_layer(
        &mut self,
        store: &Store,
        index: usize,
        layer: &LayerRef,
        wanted: &BTreeSet<String>,
        keep: bool,
    ) -> (LayerReading, Vec<Op>) {
        let mut reading = LayerReading {
            layer: layer.clone(),
            digest: None,
            size: 0,
            diff_id: None,
            compression: "none",
            error: None,
        };
        let mut kept = Vec::new();
        let raw = match store.open_blob(&layer.name) {
            Ok(raw) => raw,
            Err(e) => {
                reading.error = Some(e.to_string());
                return (reading, kept);
            }
        };
        let budget = &store.budget;
        let (raw, raw_state) = hashing(raw);
        let result = (|| -> io::Result<HashState> {
            let (plain, compression) = decompress(raw)?;
            reading.compression = compression;
            let (plain, plain_state) = hashing(plain);
            let mut archive = tar::Archive::new(Metered {
                inner: plain,
                budget,
            });
            for_each_entry(&mut archive, budget, |entry| {
                let op = self.entry_op(index, entry, wanted, budget)?;
                if keep {
                    kept.push(op.clone());
                }
                self.apply(index, op);
                Ok(true)
            })?;
            // The tar's trailing blocks belong to the diff_id too.
            io::copy(&mut archive.into_inner(), &mut io::sink())?;
            Ok(plain_state)
        })();
        self.end_layer();
        match result {
            Ok(plain_state) => {
                let (digest, size) = finish(&raw_state);
                reading.digest = Some(digest);
                reading.size = size;
                reading.diff_id = Some(finish(&plain_state).0);
            }
            Err(e) => {
                reading.error = Some(e.to_string());
                // Hash the stored bytes on their own, to say whether the blob
                // changed; not past the time budget.
                if let Ok(raw) = store.open_blob(&layer.name) {
                    let (mut hashed, state) = hashing(Timed { inner: raw, budget });
                    if io::copy(&mut hashed, &mut io::sink()).is_ok() {
                        let (digest, size) = finish(&state);
                        reading.digest = Some(digest);
                        reading.size = size;
                    }
                }
            }
        }
        (reading, kept)
    }

    /// What one entry does to the tree; reads the head of a file, or all of a wanted one.
    fn entry_op<R: Read>(
        &mut self,
        layer: usize,
        entry: &mut tar::Entry<'_, R>,
        wanted: &BTreeSet<String>,
        budget: &Budget,
    ) -> io::Result<Op> {
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normalize(&raw);
        let at = format!("in layer {}", layer + 1);
        if let Some(why) = name_problem(&raw) {
            self.paths.push(format!(
                "`{}` {at}: {why}, which a naive extractor writes outside the image root",
                shown(&raw)
            ));
        }
        let name = path.rsplit('/').next().unwrap_or("");
        if name == ".wh..wh..opq" {
            return Ok(Op::Opaque(parent(&path).to_string()));
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let dir = parent(&path);
            let target = if dir == "/" {
                format!("/{hidden}")
            } else {
                format!("{dir}/{hidden}")
            };
            return Ok(Op::Remove(target));
        }
        let header = entry.header();
        let kind = header.entry_type();
        let mut node = Node {
            kind: Kind::Other,
            mode: header.mode().unwrap_or(0),
            added: 0,
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            size: entry.size(),
            link: None,
            head: [0; HEAD],
            multicall: None,
            data: (layer, path.as_str().into()),
        };
        if kind.is_dir() {
            node.kind = Kind::Dir;
        } else if kind.is_symlink() {
            node.kind = Kind::Symlink;
            node.link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into());
            let target = node.link.as_deref().unwrap_or_default();
            if climbs_out(parent(&path), target) {
                self.paths.push(format!(
                    "symlink {} -> `{}` {at} leads outside the image root",
                    shown(&path),
                    shown(target)
                ));
            }
        } else if kind.is_hard_link() {
            let raw_target = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let target = normalize(&raw_target);
            if climbs_out("/", &raw_target) {
                self.paths.push(format!(
                    "hard link {} -> `{}` {at} leads outside the image root",
                    shown(&path),
                    shown(&raw_target)
                ));
            } else if target == path {
                let path = shown(&path);
                self.paths.push(format!(
                    "hard-link loop {path} -> {path} {at}: it links to itself"
                ));
            } else {
                let found = self.nodes.get(&target);
                self.links.link(&path, &target, found.is_some(), &at);
                if let Some(found) = found {
                    node = found.clone();
                }
            }
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            node.kind = Kind::File;
            if wanted.contains(&path) && budget.file(&path, node.size).is_ok() {
                let bytes = read_capped(entry, node.size, budget)?;
                node.head = head(&bytes);
                if is_executable_elf(node.mode, &node.head) {
                    node.multicall = multicall_in(&bytes);
                }
                self.captured
                    .insert(node.data.clone(), std::sync::Arc::new(bytes));
            } else {
                let mut head = Vec::with_capacity(HEAD);
                entry.take(HEAD as u64).read_to_end(&mut head)?;
                if is_executable_elf(node.mode, &head) {
                    node.multicall = scan_multicall(&head, entry)?;
                }
                node.head[..head.len()].copy_from_slice(&head);
            }
        }
        Ok(Op::Put(path, node))
    }

    /// Ends a layer: its hard links that led nowhere become findings.
    fn end_layer(&mut self) {
        self.links.finish(&mut self.paths);
    }

    /// Does what one entry of the layer at `layer` says.
    fn apply(&mut self, layer: usize, op: Op) {
        let added = u32::try_from(layer).unwrap_or(u32::MAX);
        match op {
            Op::Opaque(dir) => {
                let prefix = if dir == "/" {
                    "/".into()
                } else {
                    format!("{dir}/")
                };
                self.nodes
                    .retain(|p, n| !(p.starts_with(&prefix) && p != &dir && n.added < added));
            }
            Op::Remove(path) => self.remove_tree(&path),
            Op::Put(path, mut node) => {
                if path == "/" {
                    return;
                }
                node.added = added;
                if node.kind != Kind::Dir {
                    if let Some(old) = self.nodes.get(&path) {
                        if old.kind == Kind::Dir {
                            self.remove_tree(&path);
                        }
                    }
                }
                self.nodes.insert(path, node);
            }
        }
    }

    fn remove_tree(&mut self, path: &str) {
        let prefix = format!("{path}/");
        self.nodes
            .retain(|p, _| p != path && !p.starts_with(&prefix));
    }

    /// The node at `path` without following a final symlink.
    #[cfg(test)]
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(&normalize(path))
    }

    /// Follows symlinks (inside the image; absolute targets start at the image's root).
    /// Returns the final path and its node, or `None` when something on the way is missing.
    pub(crate) fn resolve(&self, path: &str) -> Option<(String, &Node)> {
        let mut hops = 0;
        let mut pending: Vec<String> = normalize(path)
            .split('/')
            .filter(|p| !p.is_empty())
            .rev()
            .map(String::from)
            .collect();
        let mut current = String::new();
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    current = parent(if current.is_empty() { "/" } else { &current })
                        .trim_end_matches('/')
                        .to_string();
                    continue;
                }
                _ => {}
            }
            let next = format!("{current}/{part}");
            let node = self.nodes.get(&next);
            match node {
                Some(node) if node.kind == Kind::Symlink => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    let target = node.link.as_deref().unwrap_or_default().to_string();
                    if target.starts_with('/') {
                        current = String::new();
                    }
                    for piece in target.split('/').filter(|p| !p.is_empty()).rev() {
                        pending.push(piece.to_string());
                    }
                }
                Some(_) => current = next,
                None => {
                    // A folder need not have its own entry when its files do.
                    let prefix = format!("{next}/");
                    let has_files = self
                        .nodes
                        .range(prefix.clone()..)
                        .next()
                        .is_some_and(|(k, _)| k.starts_with(&prefix));
                    if pending.is_empty() || !has_files {
                        return None;
                    }
                    current = next;
                }
            }
        }
        let current = if current.is_empty() {
            "/".to_string()
        } else {
            current
        };
        let node = self.nodes.get(&current)?;
        Some((current, node))
    }

    /// The content of a file node, kept from the first pass or read again from its layer.
    pub(crate) fn content(
        &self,
        store: &Store,
        layers: &[LayerRef],
        node: &Node,
    ) -> Result<FileBytes, String> {
        if let Some(bytes) = self.captured.get(&node.data) {
            return Ok(bytes.clone());
        }
        let (index, path) = &node.data;
        let budget = &store.budget;
        budget.file(path, node.size)?;
        let layer = layers
            .get(*index)
            .ok_or_else(|| format!("no layer {index}"))?;
        let mut found = None;
        let result = (|| -> io::Result<()> {
            let raw = store
                .open_blob(&layer.name)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let (plain, _) = decompress(raw)?;
            let mut archive = tar::Archive::new(Metered {
                inner: plain,
                budget,
            });
            for_each_entry(&mut archive, budget, |entry| {
                let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
                if *name == **path && entry.header().entry_type().is_file() {
                    found = Some(read_capped(entry, entry.size(), budget)?);
                    return Ok(false);
                }
                Ok(true)
            })
        })();
        match (result, found) {
            (_, Some(bytes)) => Ok(std::sync::Arc::new(bytes)),
            (Ok(()), None) => Err(format!("{path} is not in layer {}", layer.name)),
            (Err(e), None) => Err(format!("reading {path} from layer {}: {e}", layer.name)),
        }
    }
}

fn head(bytes: &[u8]) -> [u8; HEAD] {
    let mut head = [0; HEAD];
    let n = bytes.len().min(HEAD);
    head[..n].copy_from_slice(&bytes[..n]);
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, &[u8], u32)], links: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(*mode);
            header.set_entry_type(if path.ends_with('/') {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            builder.append_data(&mut header, path, *data).unwrap();
        }
        for (path, target) in links {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_repeated_layer_is_read_once_and_applied_at_each_place() {
        let dir = tempfile::tempdir().unwrap();
        let root = camino::Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        let a = layer(&[("x", b"from a", 0o644)], &[]);
        let b = layer(&[(".wh.x", b"", 0o644), ("y", b"from b", 0o644)], &[]);
        std::fs::write(root.join("blobs/sha256/a"), &a).unwrap();
        std::fs::write(root.join("blobs/sha256/b"), &b).unwrap();
        let layer_ref = |name: &str| LayerRef {
            name: format!("blobs/sha256/{name}"),
            digest: None,
            size: None,
            diff_id: None,
        };
        let refs = vec![layer_ref("a"), layer_ref("b"), layer_ref("a")];
        // One entry of `a` and two of `b` are read once each: a budget of 3 entries holds.
        let limits = crate::config::Limits {
            max_entries: 3,
            ..Default::default()
        };
        let store = Store::dir(root, Budget::new(limits));
        let wanted = BTreeSet::from(["/x".to_string()]);
        let (tree, readings) = Tree::read(&store, &refs, &wanted);
        assert!(readings.iter().all(|r| r.error.is_none()), "{readings:?}");
        assert_eq!(readings[2].layer.name, "blobs/sha256/a");
        assert_eq!(readings[0].diff_id, readings[2].diff_id);
        let (_, x) = tree.resolve("/x").unwrap();
        assert_eq!(x.added, 2);
        assert_eq!(
            tree.content(&store, &refs, x).unwrap().as_slice(),
            b"from a"
        );
        assert!(tree.get("/y").is_some());
    }

    #[test]
    fn sparse_files_and_huge_claims_are_refused() {
        let budget = Budget::default();
        let mut header = tar::Header::new_gnu();
        header.set_path("etc/passwd").unwrap();
        header.set_size(1 << 40);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(b"root:x:0:0::/:/sbin/nologin\n");
        let wanted = BTreeSet::from(["/etc/passwd".to_string()]);
        let err = Tree::read_bytes(&bytes, &wanted, &budget).unwrap_err();
        assert!(err.to_string().contains("unexpected EOF"), "{err}");
        // A valid sparse entry: 512 bytes of data after a 1 GiB hole.
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_size(512);
        let gnu = header.as_gnu_mut().unwrap();
        gnu.set_real_size((1 << 30) + 512);
        gnu.sparse[0]
            .offset
            .copy_from_slice(format!("{:011o}\0", 1u64 << 30).as_bytes());
        gnu.sparse[0]
            .numbytes
            .copy_from_slice(format!("{:011o}\0", 512).as_bytes());
        header.set_cksum();
        let mut sparse = header.as_bytes().to_vec();
        sparse.resize(2048, 0);
        let err = Tree::read_bytes(&sparse, &wanted, &budget).unwrap_err();
        assert!(
            err.to_string().contains("etc/passwd is a sparse file"),
            "{err}"
        );
    }

    #[test]
    fn whiteouts_symlinks_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let root = camino::Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        let one = layer(
            &[
                ("bin/", b"", 0o755),
                ("bin/sh", b"\x7fELF....", 0o755),
                ("app/real", b"binary", 0o755),
                ("etc/old", b"x", 0o644),
            ],
            &[("app/link", "real"), ("usr/bin", "/bin")],
        );
        let two = layer(
            &[("bin/.wh.sh", b"", 0o644), ("etc/.wh..wh..opq", b"", 0o644)],
            &[],
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &two).unwrap();
        let two_gz = gz.finish().unwrap();
        std::fs::write(root.join("blobs/sha256/one"), &one).unwrap();
        std::fs::write(root.join("blobs/sha256/two"), &two_gz).unwrap();
        let store = Store::dir(root, Default::default());
        let refs = vec![
            LayerRef {
                name: "blobs/sha256/one".into(),
                digest: None,
                size: None,
                diff_id: None,
            },
            LayerRef {
                name: "blobs/sha256/two".into(),
                digest: None,
                size: None,
                diff_id: None,
            },
        ];
        let wanted = BTreeSet::from(["/app/real".to_string()]);
        let (tree, readings) = Tree::read(&store, &refs, &wanted);
        assert!(readings.iter().all(|r| r.error.is_none()), "{readings:?}");
        assert_eq!(readings[1].compression, "gzip");
        assert_eq!(
            readings[1].diff_id.as_deref(),
            Some(super::super::source::sha256_digest(&two).as_str())
        );
        assert!(tree.get("/bin/sh").is_none());
        assert!(tree.get("/etc/old").is_none());
        let (path, node) = tree.resolve("/app/link").unwrap();
        assert_eq!(path, "/app/real");
        assert_eq!(
            tree.content(&store, &refs, node).unwrap().as_slice(),
            b"binary"
        );
        assert!(tree.resolve("/usr/bin/sh").is_none());
        assert_eq!(tree.resolve("/usr/bin").unwrap().0, "/bin");
    }
}
