//! `diff A B`: what differs between two images, per platform — files added,
//! removed and changed (size, mode, owner, link target, content by digest),
//! the config's runtime settings (user, entrypoint, args, env, workdir,
//! ports, labels), layers reused or new with their sizes, and the pull size.
//!
//! Images are read through verify's source readers ([`crate::verify`]): OCI
//! layouts, OCI archives, `docker save` archives and `docker:NAME`, within
//! the same budgets. Platforms whose config and layers are identical are not
//! walked; the others have every layer streamed once ([`files`]).

pub mod files;
mod render;

use crate::config::Limits;
use crate::error::{Error, Result};
use crate::oci::documents::{ImageConfig, RunSettings};
use crate::verify::read::{FoundImage, Opened};
use crate::verify::ImageSource;
use files::FileChanges;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A config setting that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    /// `user`, `entrypoint`, `args`, `workdir`, `env.NAME`, `ports`, `labels.NAME`, ...
    pub field: String,
    /// Before (in A); `null` when unset.
    pub before: Option<String>,
    /// After (in B); `null` when unset.
    pub after: Option<String>,
}

/// A layer of either image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerChange {
    /// `reused` (the same content in both, told by diff_id), `new` (only in
    /// B) or `removed` (only in A).
    pub status: &'static str,
    /// The layer's digest as stored (its diff_id when the format has none).
    pub digest: String,
    /// Bytes as stored (pulled), when known.
    pub size: Option<u64>,
}

/// The bytes a pull of each image's platform moves (its layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PullSize {
    /// A's layers.
    pub before: u64,
    /// B's layers.
    pub after: u64,
    /// `after - before`.
    pub difference: i64,
    /// The bytes of B's new layers: what a machine that has A pulls for B.
    pub new_bytes: u64,
}

/// One platform of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformDiff {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// `same`, `changed`, `added` (only in B) or `removed` (only in A).
    pub status: &'static str,
    /// A's manifest digest, when it has one.
    pub before: Option<String>,
    /// B's manifest digest, when it has one.
    pub after: Option<String>,
    /// The config's settings that differ.
    pub config: Vec<ConfigChange>,
    /// The files that differ.
    pub files: FileChanges,
    /// Every layer of both, reused, new or removed.
    pub layers: Vec<LayerChange>,
    /// The pull size of each.
    pub pull_size: PullSize,
}

/// What differs between two images.
#[derive(Debug, Clone, Serialize)]
pub struct ImageDiff {
    /// Image A, as named.
    pub a: String,
    /// Image B, as named.
    pub b: String,
    /// Whether every platform is the same.
    pub equal: bool,
    /// Each platform of either image.
    pub platforms: Vec<PlatformDiff>,
}

/// Compares image `a` with image `b`, reading each within `limits`.
pub fn diff(a: &str, b: &str, limits: Limits) -> Result<ImageDiff> {
    let open = |text: &str| -> Result<(Opened, Vec<FoundImage>)> {
        if text.contains("://") {
            return Err(Error::Invalid {
                path: text.to_string(),
                message: "the library's diff reads OCI layouts, OCI or docker archives and \
                          docker:NAME; `cargo xtask diff` copies registry:// images into a \
                          layout first (registry::pull)"
                    .into(),
                help: format!(
                    "copy the image out of the registry first, e.g. `skopeo copy docker://{} \
                     oci:base-image` (or `docker pull` it and pass docker:NAME)",
                    text.split_once("://").map(|(_, r)| r).unwrap_or(text)
                ),
            });
        }
        let opened = Opened::open(&ImageSource::parse(text), limits)?;
        let images = opened.images()?;
        Ok((opened, images))
    };
    let (opened_a, images_a) = open(a)?;
    let (opened_b, images_b) = open(b)?;
    let by_platform = |images: &[FoundImage]| -> BTreeMap<String, usize> {
        images
            .iter()
            .enumerate()
            .map(|(i, image)| (image.platform(), i))
            .collect()
    };
    let (index_a, index_b) = (by_platform(&images_a), by_platform(&images_b));
    let platforms: BTreeSet<&String> = index_a.keys().chain(index_b.keys()).collect();
    let mut out = Vec::new();
    for platform in platforms {
        let one_a = index_a.get(platform).map(|&i| &images_a[i]);
        let one_b = index_b.get(platform).map(|&i| &images_b[i]);
        out.push(compare_platform(
            platform,
            one_a.map(|i| (&opened_a, i)),
            one_b.map(|i| (&opened_b, i)),
        )?);
    }
    Ok(ImageDiff {
        a: a.to_string(),
        b: b.to_string(),
        equal: out.iter().all(|p| p.status == "same"),
        platforms: out,
    })
}

/// A layer's identity: its diff_id (the uncompressed tar's digest, the same
/// in a layout and in `docker save`), else its stored digest, else its name.
fn layer_id(image: &FoundImage, index: usize) -> String {
    let layer = &image.layers[index];
    layer
        .diff_id
        .clone()
        .or_else(|| layer.digest.clone())
        .unwrap_or_else(|| layer.name.clone())
}

/// How a layer is shown: its stored digest, else its identity.
fn layer_shown(image: &FoundImage, index: usize) -> String {
    image.layers[index]
        .digest
        .clone()
        .unwrap_or_else(|| layer_id(image, index))
}

fn compare_platform(
    platform: &str,
    a: Option<(&Opened, &FoundImage)>,
    b: Option<(&Opened, &FoundImage)>,
) -> Result<PlatformDiff> {
    let tree = |side: Option<(&Opened, &FoundImage)>| match side {
        Some((opened, image)) => files::read_tree(opened, image),
        None => Ok(BTreeMap::new()),
    };
    let layers = |side: Option<(&Opened, &FoundImage)>| -> Vec<(String, Option<u64>, String)> {
        side.map(|(_, image)| {
            (0..image.layers.len())
                .map(|i| {
                    (
                        layer_id(image, i),
                        image.layers[i].size,
                        layer_shown(image, i),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let (layers_a, layers_b) = (layers(a), layers(b));
    let config_value = |side: Option<(&Opened, &FoundImage)>| {
        side.and_then(|(_, image)| serde_json::to_value(&image.config).ok())
    };
    let identical = a.is_some()
        && b.is_some()
        && config_value(a) == config_value(b)
        && layers_a
            .iter()
            .map(|l| &l.0)
            .eq(layers_b.iter().map(|l| &l.0));
    let files = if identical {
        FileChanges::default()
    } else {
        let (tree_a, tree_b) = (tree(a)?, tree(b)?);
        files::compare(&tree_a, &tree_b)
    };
    let config = compare_config(
        a.map(|(_, image)| &image.config),
        b.map(|(_, image)| &image.config),
    );
    let ids_a: BTreeSet<&String> = layers_a.iter().map(|l| &l.0).collect();
    let ids_b: BTreeSet<&String> = layers_b.iter().map(|l| &l.0).collect();
    let mut layer_changes = Vec::new();
    for (id, size, shown) in &layers_b {
        layer_changes.push(LayerChange {
            status: if ids_a.contains(id) { "reused" } else { "new" },
            digest: shown.clone(),
            size: *size,
        });
    }
    for (id, size, shown) in &layers_a {
        if !ids_b.contains(id) {
            layer_changes.push(LayerChange {
                status: "removed",
                digest: shown.clone(),
                size: *size,
            });
        }
    }
    let sum =
        |layers: &[(String, Option<u64>, String)]| layers.iter().filter_map(|l| l.1).sum::<u64>();
    let (before, after) = (sum(&layers_a), sum(&layers_b));
    let new_bytes = layer_changes
        .iter()
        .filter(|l| l.status == "new")
        .filter_map(|l| l.size)
        .sum();
    let status = match (a, b) {
        (None, _) => "added",
        (_, None) => "removed",
        _ if identical || (config.is_empty() && files.is_empty() && ids_a == ids_b) => "same",
        _ => "changed",
    };
    Ok(PlatformDiff {
        platform: platform.to_string(),
        status,
        before: a.and_then(|(_, image)| image.manifest_digest.clone()),
        after: b.and_then(|(_, image)| image.manifest_digest.clone()),
        config,
        files,
        layers: layer_changes,
        pull_size: PullSize {
            before,
            after,
            difference: after as i64 - before as i64,
            new_bytes,
        },
    })
}

/// The runtime settings that differ; env and labels per name.
fn compare_config(a: Option<&ImageConfig>, b: Option<&ImageConfig>) -> Vec<ConfigChange> {
    let none = RunSettings::default();
    let settings = |c: Option<&ImageConfig>| c.and_then(|c| c.config.clone());
    let (sa, sb) = (settings(a), settings(b));
    let (sa, sb) = (sa.as_ref().unwrap_or(&none), sb.as_ref().unwrap_or(&none));
    let mut changes = Vec::new();
    let mut push = |field: &str, before: Option<String>, after: Option<String>| {
        if before != after {
            changes.push(ConfigChange {
                field: field.to_string(),
                before,
                after,
            });
        }
    };
    let list = |v: &Option<Vec<String>>| v.as_ref().map(|v| format!("{v:?}"));
    push("user", sa.user.clone(), sb.user.clone());
    push("entrypoint", list(&sa.entrypoint), list(&sb.entrypoint));
    push("args", list(&sa.cmd), list(&sb.cmd));
    push("workdir", sa.working_dir.clone(), sb.working_dir.clone());
    let keys = |m: &Option<BTreeMap<String, crate::oci::documents::Empty>>| {
        m.as_ref()
            .filter(|m| !m.is_empty())
            .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
    };
    push("ports", keys(&sa.exposed_ports), keys(&sb.exposed_ports));
    push("volumes", keys(&sa.volumes), keys(&sb.volumes));
    push(
        "stop_signal",
        sa.stop_signal.clone(),
        sb.stop_signal.clone(),
    );
    let env = |s: &RunSettings| -> BTreeMap<String, String> {
        s.env()
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    };
    for (prefix, ma, mb) in [
        ("env", env(sa), env(sb)),
        (
            "labels",
            sa.labels.clone().unwrap_or_default(),
            sb.labels.clone().unwrap_or_default(),
        ),
    ] {
        let names: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
        for name in names {
            push(
                &format!("{prefix}.{name}"),
                ma.get(name).cloned(),
                mb.get(name).cloned(),
            );
        }
    }
    changes
}

impl ImageDiff {
    /// The comparison as a person reads it in a terminal.
    pub fn text(&self) -> String {
        render::text(self)
    }

    /// The comparison as GitHub-flavoured Markdown, for a pull request comment.
    pub fn markdown(&self) -> String {
        render::markdown(self)
    }
}
