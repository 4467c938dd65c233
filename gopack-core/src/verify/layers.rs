//! The image's file tree: every layer streamed once, in order, through its
//! decompressor (gzip, zstd or none, told by magic bytes) and the tar reader,
//! with whiteouts applied; the compressed and uncompressed bytes are hashed on
//! the way to check digests, sizes and diff_ids.
//!
//! Only the first bytes of each file are kept (enough to tell ELF or TZif),
//! plus the whole content of a few wanted paths; anything else is read again
//! from its layer on demand.

use super::source::{LayerRef, Store};
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

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
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// The target of a symlink.
    pub link: Option<String>,
    /// The first bytes of a file.
    pub head: Vec<u8>,
    /// For an executable ELF file that is a multi-call shell binary: which one
    /// (`busybox`, `toybox`), told by its content whatever its name.
    pub multicall: Option<&'static str>,
    /// Where the file's bytes are: layer index and the path in that layer's tar.
    pub data: (usize, String),
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
    captured: HashMap<(usize, String), FileBytes>,
}

/// Hashes and counts what goes through it into a shared state.
struct Hashing<R> {
    inner: R,
    state: Rc<RefCell<(Sha256, u64)>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.borrow_mut();
        state.0.update(&buf[..n]);
        state.1 += n as u64;
        Ok(n)
    }
}

fn hashing<R: Read>(inner: R) -> (Hashing<R>, Rc<RefCell<(Sha256, u64)>>) {
    let state = Rc::new(RefCell::new((Sha256::new(), 0)));
    (
        Hashing {
            inner,
            state: state.clone(),
        },
        state,
    )
}

fn finish(state: &Rc<RefCell<(Sha256, u64)>>) -> (String, u64) {
    let state = state.borrow();
    (
        format!("sha256:{}", hex::encode(state.0.clone().finalize())),
        state.1,
    )
}

/// A decompressing reader over a blob, chosen by its first bytes.
fn decompress<'a, R: Read + 'a>(raw: R) -> io::Result<(Box<dyn Read + 'a>, &'static str)> {
    let mut buffered = BufReader::new(raw);
    let magic = buffered.fill_buf()?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok((
            Box::new(flate2::read::MultiGzDecoder::new(buffered)),
            "gzip",
        ))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok((Box::new(super::zstd::Decoder::new(buffered)?), "zstd"))
    } else {
        Ok((Box::new(buffered), "none"))
    }
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

/// Markers of multi-call binaries that give a shell, found in their help texts.
const MULTICALL_MARKERS: &[(&[u8], &str)] = &[
    (b"BusyBox is a multi-call binary", "busybox"),
    (b"BusyBox v1.", "busybox"),
    (b"landley.net/toybox", "toybox"),
];

fn is_executable_elf(mode: u32, head: &[u8]) -> bool {
    mode & 0o111 != 0 && head.starts_with(b"\x7fELF")
}

fn multicall_in(bytes: &[u8]) -> Option<&'static str> {
    MULTICALL_MARKERS
        .iter()
        .find(|(marker, _)| super::elf::contains(bytes, marker))
        .map(|(_, name)| *name)
}

/// Streams the rest of a file (after `head`) in chunks, keeping an overlap so
/// that a marker across two chunks is found; memory stays bounded.
fn scan_multicall(head: &[u8], rest: &mut impl Read) -> io::Result<Option<&'static str>> {
    let keep = MULTICALL_MARKERS
        .iter()
        .map(|(m, _)| m.len())
        .max()
        .unwrap_or(0);
    let mut window = head.to_vec();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some(found) = multicall_in(&window) {
            // Drain the entry so the tar reader stays in step (it skips anyway).
            io::copy(rest, &mut io::sink())?;
            return Ok(Some(found));
        }
        let n = rest.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        let start = window.len().saturating_sub(keep);
        window.drain(..start);
        window.extend_from_slice(&chunk[..n]);
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl Tree {
    /// Streams every layer, building the tree; keeps whole contents of `wanted` paths.
    pub(crate) fn read(
        store: &Store,
        layers: &[LayerRef],
        wanted: &BTreeSet<String>,
    ) -> (Tree, Vec<LayerReading>) {
        let mut tree = Tree::default();
        let mut readings = Vec::new();
        for (index, layer) in layers.iter().enumerate() {
            readings.push(tree.read_layer(store, index, layer, wanted));
        }
        (tree, readings)
    }

    fn read_layer(
        &mut self,
        store: &Store,
        index: usize,
        layer: &LayerRef,
        wanted: &BTreeSet<String>,
    ) -> LayerReading {
        let mut reading = LayerReading {
            layer: layer.clone(),
            digest: None,
            size: 0,
            diff_id: None,
            compression: "none",
            error: None,
        };
        let raw = match store.open_blob(&layer.name) {
            Ok(raw) => raw,
            Err(e) => {
                reading.error = Some(e.to_string());
                return reading;
            }
        };
        let (raw, raw_state) = hashing(raw);
        let result = (|| -> io::Result<Rc<RefCell<(Sha256, u64)>>> {
            let (plain, compression) = decompress(raw)?;
            reading.compression = compression;
            let (plain, plain_state) = hashing(plain);
            let mut archive = tar::Archive::new(plain);
            for entry in archive.entries()? {
                self.add_entry(index, entry?, wanted)?;
            }
            // The tar's trailing blocks belong to the diff_id too.
            io::copy(&mut archive.into_inner(), &mut io::sink())?;
            Ok(plain_state)
        })();
        match result {
            Ok(plain_state) => {
                let (digest, size) = finish(&raw_state);
                reading.digest = Some(digest);
                reading.size = size;
                reading.diff_id = Some(finish(&plain_state).0);
            }
            Err(e) => {
                reading.error = Some(e.to_string());
                // Hash the stored bytes on their own, to say whether the blob changed.
                if let Ok(mut raw) = store.open_blob(&layer.name) {
                    let (mut hashed, state) = hashing(&mut raw);
                    if io::copy(&mut hashed, &mut io::sink()).is_ok() {
                        let (digest, size) = finish(&state);
                        reading.digest = Some(digest);
                        reading.size = size;
                    }
                }
            }
        }
        reading
    }

    fn add_entry<R: Read>(
        &mut self,
        layer: usize,
        mut entry: tar::Entry<'_, R>,
        wanted: &BTreeSet<String>,
    ) -> io::Result<()> {
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let name = path.rsplit('/').next().unwrap_or("");
        if name == ".wh..wh..opq" {
            let dir = parent(&path).to_string();
            let prefix = if dir == "/" {
                "/".into()
            } else {
                format!("{dir}/")
            };
            self.nodes
                .retain(|p, n| !(p.starts_with(&prefix) && p != &dir && n.data.0 < layer));
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let dir = parent(&path);
            let target = if dir == "/" {
                format!("/{hidden}")
            } else {
                format!("{dir}/{hidden}")
            };
            self.remove_tree(&target);
            return Ok(());
        }
        if path == "/" {
            return Ok(());
        }
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0);
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mut node = Node {
            kind: Kind::Other,
            mode,
            uid,
            gid,
            size: entry.size(),
            link: None,
            head: Vec::new(),
            multicall: None,
            data: (layer, path.clone()),
        };
        if kind.is_dir() {
            node.kind = Kind::Dir;
        } else if kind.is_symlink() {
            node.kind = Kind::Symlink;
            node.link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
        } else if kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|l| normalize(&String::from_utf8_lossy(&l)))
                .unwrap_or_default();
            match self.nodes.get(&target) {
                Some(found) => {
                    node = found.clone();
                }
                None => node.kind = Kind::Other,
            }
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            node.kind = Kind::File;
            if wanted.contains(&path) {
                // Sized up front: a growing Vec would hold up to twice the file.
                let size = entry.header().size().unwrap_or(0);
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                entry.read_to_end(&mut bytes)?;
                node.head = bytes.iter().take(HEAD).copied().collect();
                if is_executable_elf(mode, &node.head) {
                    node.multicall = multicall_in(&bytes);
                }
                self.captured
                    .insert((layer, path.clone()), std::sync::Arc::new(bytes));
            } else {
                let mut head = Vec::with_capacity(HEAD);
                (&mut entry).take(HEAD as u64).read_to_end(&mut head)?;
                if is_executable_elf(mode, &head) {
                    node.multicall = scan_multicall(&head, &mut entry)?;
                }
                node.head = head;
            }
        }
        if node.kind != Kind::Dir {
            if let Some(old) = self.nodes.get(&path) {
                if old.kind == Kind::Dir {
                    self.remove_tree(&path);
                }
            }
        }
        self.nodes.insert(path, node);
        Ok(())
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
                    let target = node.link.clone().unwrap_or_default();
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
                    if pending.is_empty() || !self.nodes.keys().any(|k| k.starts_with(&prefix)) {
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
        let layer = layers
            .get(*index)
            .ok_or_else(|| format!("no layer {index}"))?;
        let result = (|| -> io::Result<Option<Vec<u8>>> {
            let raw = store
                .open_blob(&layer.name)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let (plain, _) = decompress(raw)?;
            let mut archive = tar::Archive::new(plain);
            for entry in archive.entries()? {
                let mut entry = entry?;
                let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
                if &name == path && entry.header().entry_type().is_file() {
                    // Sized up front: a growing Vec would hold up to twice the binary.
                    let size = entry.header().size().unwrap_or(0);
                    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                    entry.read_to_end(&mut bytes)?;
                    return Ok(Some(bytes));
                }
            }
            Ok(None)
        })();
        match result {
            Ok(Some(bytes)) => Ok(std::sync::Arc::new(bytes)),
            Ok(None) => Err(format!("{path} is not in layer {}", layer.name)),
            Err(e) => Err(format!("reading {path} from layer {}: {e}", layer.name)),
        }
    }
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
        let store = Store::Dir(root);
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
