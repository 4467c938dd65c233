//! One archive that both OCI tools (as oci-archive) and `docker load` (through
//! its `manifest.json`, for engines before 25) accept: the OCI layout plus
//! `docker save`'s manifest for one platform. Entries sorted, fixed mtime.

use super::layout;
use crate::cache::stat::StatCache;
use crate::cache::{Cache, KeyHasher};
use crate::error::{IoContext, Result};
use crate::image::{cached_blob, Blob, Image, PlatformImage};
use crate::oci::layer::HashingWriter;
use crate::oci::tar::header;
use camino::Utf8Path;
use std::io::Write;

/// `docker save`'s manifest.json for one platform image.
fn docker_manifest_json(image: &Image, platform: &PlatformImage) -> Vec<u8> {
    let path = |blob: &Blob| format!("blobs/sha256/{}", blob.key());
    let entry = serde_json::json!([{
        "Config": path(&platform.config),
        "RepoTags": image.tags.iter().map(|t| format!("{}:{t}", image.name)).collect::<Vec<_>>(),
        "Layers": platform.layers.iter().map(path).collect::<Vec<_>>(),
    }]);
    serde_json::to_vec(&entry).expect("JSON values serialize")
}

/// Writes the archive at `path` with `docker_platform` as the image `docker
/// load` sees; returns the archive's digest. The archive is a function of the
/// image, the platform and the mtime: its digest is recorded under a key over
/// those (`archives/`), and an archive at `path` that still hashes to it is
/// left as it is (hashed again only when its identity changed).
pub fn write(
    cache: &Cache,
    image: &Image,
    docker_platform: &PlatformImage,
    mtime: u64,
    path: &Utf8Path,
) -> Result<String> {
    let parent = path.parent().expect("archive paths have a parent");
    std::fs::create_dir_all(parent).at(parent, "create")?;
    let layout_index = layout::index_json(image);
    let docker_manifest = docker_manifest_json(image, docker_platform);
    let key = KeyHasher::new("archive/v1")
        .field("index", &layout_index)
        .field("docker", &docker_manifest)
        .text("mtime", &mtime.to_string())
        .finish();
    let mut stats = StatCache::open(cache, &layout::output_stats_name("archive", path));
    let recorded = cache
        .get(crate::cache::Kind::Archives, &key)
        .and_then(|record| std::fs::read_to_string(record).ok())
        .filter(|digest| crate::oci::digest::hex_part(digest.trim()).is_some());
    if let Some(digest) = recorded {
        let digest = digest.trim();
        let current = std::fs::symlink_metadata(path).is_ok_and(|meta| {
            meta.is_file()
                && stats
                    .content_hash(path, &meta)
                    .is_ok_and(|hash| crate::oci::digest::from_hash(&hash) == digest)
        });
        stats.save(cache);
        if current {
            return Ok(digest.to_string());
        }
    }
    let temp = tempfile::Builder::new()
        .prefix(".tmp-archive-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(parent)
        .at(parent, "create a temporary file in")?;
    let hashing = HashingWriter::new(std::io::BufWriter::new(temp.as_file()));
    let mut tar = tar::Builder::new(hashing);
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append_data(
            &mut header(tar::EntryType::Directory, 0o755, mtime, 0),
            dir,
            std::io::empty(),
        )
        .at(path, "write")?;
    }
    for blob in image.blobs() {
        let source = cached_blob(cache, blob)?;
        let file = crate::integrity::CheckedReader::open(cache, blob)?;
        let name = format!("blobs/sha256/{}", blob.key());
        tar.append_data(
            &mut header(tar::EntryType::Regular, 0o644, mtime, blob.size),
            &name,
            file,
        )
        .at(&source, "read a cached blob into the archive")?;
    }
    for (name, bytes) in [
        ("index.json", layout_index.as_slice()),
        ("manifest.json", docker_manifest.as_slice()),
        ("oci-layout", layout::OCI_LAYOUT),
    ] {
        tar.append_data(
            &mut header(tar::EntryType::Regular, 0o644, mtime, bytes.len() as u64),
            name,
            bytes,
        )
        .at(path, "write")?;
    }
    let hashing = tar.into_inner().at(path, "write")?;
    let (mut writer, digest, _) = hashing.finish();
    writer.flush().at(path, "write")?;
    drop(writer);
    temp.persist(path).map_err(|e| e.error).at(path, "write")?;
    cache.put(
        crate::cache::Kind::Archives,
        &key,
        format!("{digest}\n").as_bytes(),
    )?;
    Ok(digest)
}
