//! Where an image's files are read from: a folder (an OCI layout) or a tar
//! file (an OCI archive or a `docker save` archive), indexed once by name
//! (name → offset and size) so that a blob is read by seeking into the tar,
//! never by unpacking it. Nothing is written and no name is resolved on the
//! host: an archive member whose name is absolute or has `..`, or a link
//! member that leads above the archive's root, is not indexed and becomes an
//! `fs.paths` finding; a symlink or special file inside a layout folder is
//! refused.

use super::limits::Budget;
use super::paths::{climbs_out, name_problem, shown, PathFindings};
use super::stream::{is_sparse, sparse_error};
use crate::config::ByteSize;
use crate::error::{Error, IoContext, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// The most a JSON document (index, manifest, config) of an image may weigh.
pub(crate) const MAX_JSON: u64 = 16 << 20;

/// One entry of an archive's index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TarEntry {
    offset: u64,
    size: u64,
}

/// Where blobs are: a folder, or a tar file indexed by name; and the budget
/// every read from them charges.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) location: Location,
    pub(crate) budget: Budget,
    /// Archive members that could reach outside the archive's root (`fs.paths`).
    pub(crate) findings: PathFindings,
}

/// A folder, or a tar file indexed by name.
#[derive(Debug)]
pub(crate) enum Location {
    Dir(Utf8PathBuf),
    Tar {
        path: Utf8PathBuf,
        entries: HashMap<String, TarEntry>,
    },
}

impl Store {
    /// A folder read within `budget`.
    pub(crate) fn dir(path: Utf8PathBuf, budget: Budget) -> Store {
        Store {
            location: Location::Dir(path),
            budget,
            findings: PathFindings::default(),
        }
    }

    /// Opens a folder or indexes an archive.
    pub(crate) fn open(path: &Utf8Path, budget: Budget) -> Result<Store> {
        let meta = std::fs::metadata(path).at(path, "read")?;
        if meta.is_dir() {
            return Ok(Store::dir(path.to_path_buf(), budget));
        }
        let file = File::open(path).at(path, "open")?;
        let mut archive = tar::Archive::new(file);
        let not_tar = |e: std::io::Error| Error::Invalid {
            path: path.to_string(),
            message: format!("not a readable tar archive: {e}"),
            help: "pass an OCI layout folder, an OCI archive, a `docker save` archive, \
                   or docker:NAME for an image of the local engine"
                .into(),
        };
        let mut entries = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let mut findings = PathFindings::default();
        // Seeks over each entry's data instead of reading it.
        for entry in archive.entries_with_seek().map_err(not_tar)? {
            let mut entry = entry.map_err(not_tar)?;
            budget.entry().map_err(not_tar)?;
            budget.check_time().map_err(not_tar)?;
            if is_sparse(&mut entry).map_err(not_tar)? {
                return Err(Error::Invalid {
                    path: path.to_string(),
                    message: sparse_error(&entry.path_bytes(), "image archives").to_string(),
                    help: "write the archive again with `docker save` or `skopeo copy`".into(),
                });
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if let Some(why) = name_problem(&raw) {
                // Not indexed: nothing may refer to it.
                findings.push(format!(
                    "`{}` in the archive: {why}, which a naive extractor writes outside its folder",
                    shown(&raw)
                ));
                continue;
            }
            let name = clean_name(&raw);
            let kind = entry.header().entry_type();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                entries.insert(
                    name,
                    TarEntry {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                );
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry.link_name_bytes() else {
                    continue;
                };
                let target = String::from_utf8_lossy(&target).into_owned();
                let dir = match kind.is_symlink() {
                    true => name.rsplit_once('/').map(|(d, _)| d).unwrap_or(""),
                    false => "",
                };
                if climbs_out(dir, &target) {
                    findings.push(format!(
                        "link `{}` -> `{}` in the archive leads outside its folder",
                        shown(&raw),
                        shown(&target)
                    ));
                    continue;
                }
                let target = if kind.is_symlink() && !target.starts_with('/') {
                    clean_name(&format!("{dir}/{target}"))
                } else {
                    clean_name(&target)
                };
                links.push((name, target));
            }
        }
        // Links (inside the archive) may point at links; a few rounds settle any sane archive.
        for _ in 0..8 {
            for (name, target) in &links {
                if let Some(found) = entries.get(target).copied() {
                    entries.entry(name.clone()).or_insert(found);
                }
            }
        }
        Ok(Store {
            location: Location::Tar {
                path: path.to_path_buf(),
                entries,
            },
            budget,
            findings,
        })
    }

    /// The file the store reads from, for messages.
    pub(crate) fn path(&self) -> &Utf8Path {
        match &self.location {
            Location::Dir(path) | Location::Tar { path, .. } => path,
        }
    }

    /// Whether `name` (e.g. `index.json`) is in the store (as a file or not).
    pub(crate) fn has(&self, name: &str) -> bool {
        match &self.location {
            Location::Dir(dir) => safe_name(name) && dir.join(name).symlink_metadata().is_ok(),
            Location::Tar { entries, .. } => {
                safe_name(name) && entries.contains_key(&clean_name(name))
            }
        }
    }

    /// A reader of `name`'s bytes.
    pub(crate) fn open_blob(&self, name: &str) -> Result<Box<dyn Read + '_>> {
        match &self.location {
            Location::Dir(dir) => Ok(Box::new(self.open_in_dir(dir, name)?)),
            Location::Tar { path, entries } => {
                let entry = entries
                    .get(&clean_name(name))
                    .filter(|_| safe_name(name))
                    .ok_or_else(|| self.missing(name))?;
                let mut file = File::open(path).at(path, "open")?;
                file.seek(SeekFrom::Start(entry.offset)).at(path, "read")?;
                Ok(Box::new(file.take(entry.size)))
            }
        }
    }

    /// Opens a regular file inside the folder: a symlink on the way (which
    /// could lead to any file of the host), a FIFO or a device is refused.
    fn open_in_dir(&self, dir: &Utf8Path, name: &str) -> Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        if !safe_name(name) {
            return Err(self.missing(name));
        }
        let mut path = dir.to_path_buf();
        for part in name.split('/').filter(|p| !p.is_empty() && *p != ".") {
            path.push(part);
            match path.symlink_metadata() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(self.missing(name))
                }
                Err(e) => return Err(Error::io(path, "read", e)),
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(self.not_regular(name, &path, "a symbolic link"))
                }
                Ok(_) => {}
            }
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .at(&path, "open")?;
        let meta = file.metadata().at(&path, "read")?;
        if !meta.is_file() {
            return Err(self.not_regular(name, &path, "not a regular file"));
        }
        Ok(file)
    }

    /// Reads a small file (a JSON document) whole, up to [`MAX_JSON`].
    pub(crate) fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_blob(name)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut bytes)
            .at(self.at(name), "read")?;
        if bytes.len() as u64 > MAX_JSON {
            return Err(Error::Invalid {
                path: self.at(name),
                message: format!(
                    "the document is larger than {}, verify's limit for an image's JSON \
                     documents (index, manifest, config); it was not read",
                    ByteSize(MAX_JSON)
                ),
                help: "an image's JSON documents are a few kilobytes; this one is damaged or \
                       hostile: write the image again from a source you trust"
                    .into(),
            });
        }
        Ok(bytes)
    }

    /// `archive.tar!name` or `folder/name`, for messages.
    pub(crate) fn at(&self, name: &str) -> String {
        match &self.location {
            Location::Dir(dir) => dir.join(name).to_string(),
            Location::Tar { path, .. } => format!("{path}!{name}"),
        }
    }

    fn missing(&self, name: &str) -> Error {
        Error::Invalid {
            path: self.at(name),
            message: "the image refers to this file but it is missing".into(),
            help: "the image is incomplete; write it again (e.g. `skopeo copy` or `docker save`)"
                .into(),
        }
    }

    fn not_regular(&self, name: &str, path: &Utf8Path, what: &str) -> Error {
        Error::Invalid {
            path: self.at(name),
            message: format!("{path} is {what}: verify reads only regular files inside the image"),
            help: "an image's blobs are plain files; copy the image with `skopeo copy` or \
                   `cp -rL` from a source you trust"
                .into(),
        }
    }
}

/// Strips `./` and leading `/` from archive names.
pub(crate) fn clean_name(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// A name from a manifest must stay inside the layout folder.
fn safe_name(name: &str) -> bool {
    !name.starts_with('/') && !name.split('/').any(|p| p == "..")
}
