//! The OCI image layout folder (`<target>/gopack/<app>/oci`): `oci-layout`,
//! `index.json` naming the image once per tag (and listing its attached
//! artifacts, untagged), and every blob by digest.

use crate::cache::stat::StatCache;
use crate::cache::Cache;
use crate::error::{IoContext, Result};
use crate::image::{cached_blob, Blob, Image, REF_NAME};
use crate::oci::documents::{canonical_json, Descriptor, Index};
use camino::Utf8Path;
use std::collections::{BTreeMap, BTreeSet};

/// The `oci-layout` file.
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The layout's `index.json`: the image once per tag, named by `ref.name`.
pub(crate) fn index_json(image: &Image) -> Vec<u8> {
    let top = image.top();
    let platform = image
        .index
        .is_none()
        .then(|| (&image.platforms[0].platform).into());
    let manifests = image
        .tags
        .iter()
        .map(|tag| Descriptor {
            annotations: Some(BTreeMap::from([(REF_NAME.to_string(), tag.clone())])),
            platform: platform.clone(),
            ..top.descriptor()
        })
        .chain(image.artifacts.iter().map(artifact_descriptor))
        .collect();
    canonical_json(&Index::new(manifests))
}

/// An artifact's entry in `index.json`: signatures and attestations (cosign's
/// `sha256-<hex>.sig` / `.att`) carry their tag as `ref.name`, so tools find
/// them there as they would in a registry.
fn artifact_descriptor(artifact: &crate::image::artifact::Artifact) -> Descriptor {
    let mut descriptor = artifact.descriptor();
    if let Some(tag) = &artifact.tag {
        descriptor
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REF_NAME.to_string(), tag.clone());
    }
    descriptor
}

/// Writes the OCI image layout folder at `dir`, replacing what was there.
/// The new layout is built next to it and renamed into place. A layout that
/// already holds exactly this image (the same `index.json` and `oci-layout`,
/// the same blob files and nothing else, every blob hashing to its name) is
/// left as it is; blobs are hashed again only when their identity changed
/// since a run last hashed them (git-index style, see `docs/architecture.md`).
pub fn write(cache: &Cache, image: &Image, dir: &Utf8Path) -> Result<()> {
    let index = index_json(image);
    let mut stats = StatCache::open(cache, &output_stats_name("layout", dir));
    let current = is_current(image, dir, &index, &mut stats);
    if current {
        stats.save(cache);
        return Ok(());
    }
    let parent = dir.parent().expect("layout folders have a parent");
    std::fs::create_dir_all(parent).at(parent, "create")?;
    let temp = tempfile::Builder::new()
        .prefix(".tmp-layout-")
        .tempdir_in(parent)
        .at(parent, "create a temporary folder in")?;
    let root = Utf8Path::from_path(temp.path()).expect("temp paths under a UTF-8 folder are UTF-8");
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).at(&blobs, "create")?;
    for blob in image.blobs() {
        let target = blobs.join(blob.key());
        // A blob the old layout holds intact (by its remembered hash) is
        // linked, not copied: a new attachment rewrites the index, not the layers.
        if !reuse(dir, blob, &target, &mut stats) {
            cached_blob(cache, blob)?;
            crate::integrity::copy_blob(cache, blob, &target)?;
        }
    }
    stats.save(cache);
    write_file(&root.join("oci-layout"), OCI_LAYOUT)?;
    write_file(&root.join("index.json"), &index)?;
    // A fresh folder per run: a name a killed run left behind never blocks this one.
    let old = tempfile::Builder::new()
        .prefix(".tmp-old-")
        .tempdir_in(parent)
        .at(parent, "create a temporary folder in")?;
    let aside = Utf8Path::from_path(old.path())
        .expect("temp paths under a UTF-8 folder are UTF-8")
        .join("oci");
    if dir.exists() {
        std::fs::rename(dir, &aside).at(dir, "move aside the old layout")?;
    }
    let kept = temp.keep();
    std::fs::rename(&kept, dir).at(dir, "put the new layout in place at")?;
    old.close().at(&aside, "remove the old layout")?;
    Ok(())
}

/// Writes a layout of `image` into the empty folder `dir` with its blobs
/// linked from the cache (copied where a link cannot be made): for verify to
/// read the image's content while its attachments, layout and archive are
/// still being written.
pub fn write_linked(cache: &Cache, image: &Image, dir: &Utf8Path) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).at(&blobs, "create")?;
    for blob in image.blobs() {
        let source = cache.entry_path(crate::cache::Kind::Blobs, blob.key());
        let target = blobs.join(blob.key());
        if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).at(&target, "copy a blob to")?;
        }
    }
    write_file(&dir.join("oci-layout"), OCI_LAYOUT)?;
    write_file(&dir.join("index.json"), &index_json(image))
}

/// The name of the stat cache of an output (`kind` at `path`).
pub(crate) fn output_stats_name(kind: &str, path: &Utf8Path) -> String {
    crate::cache::KeyHasher::new("outputs/v1")
        .text("kind", kind)
        .text("path", path.as_str())
        .finish()
}

/// Links the old layout's copy of `blob` at `target` when it is intact.
fn reuse(dir: &Utf8Path, blob: &Blob, target: &Utf8Path, stats: &mut StatCache) -> bool {
    let old = dir.join("blobs/sha256").join(blob.key());
    match std::fs::symlink_metadata(&old) {
        Ok(meta) if meta.is_file() && meta.len() == blob.size => {
            stats
                .content_hash(&old, &meta)
                .is_ok_and(|hash| crate::oci::digest::from_hash(&hash) == blob.digest)
                && std::fs::hard_link(&old, target).is_ok()
        }
        _ => false,
    }
}

/// Whether the layout at `dir` is exactly `image`'s, with `index` as its index.
fn is_current(image: &Image, dir: &Utf8Path, index: &[u8], stats: &mut StatCache) -> bool {
    let same = |name: &str, bytes: &[u8]| std::fs::read(dir.join(name)).is_ok_and(|b| b == bytes);
    if !same("index.json", index) || !same("oci-layout", OCI_LAYOUT) {
        return false;
    }
    let names = |folder: &Utf8Path| -> Option<BTreeSet<String>> {
        folder
            .read_dir_utf8()
            .ok()?
            .map(|entry| entry.ok().map(|e| e.file_name().to_string()))
            .collect()
    };
    let top: BTreeSet<String> = ["blobs", "index.json", "oci-layout"]
        .map(String::from)
        .into();
    let blobs = dir.join("blobs/sha256");
    let wanted: BTreeSet<String> = image.blobs().iter().map(|b| b.key().to_string()).collect();
    if names(dir) != Some(top) || names(&dir.join("blobs")) != Some(["sha256".into()].into()) {
        return false;
    }
    if names(&blobs) != Some(wanted) {
        return false;
    }
    image.blobs().iter().all(|blob| {
        let path = blobs.join(blob.key());
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() == blob.size => stats
                .content_hash(&path, &meta)
                .is_ok_and(|hash| crate::oci::digest::from_hash(&hash) == blob.digest),
            _ => false,
        }
    })
}

fn write_file(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).at(path, "write")
}
