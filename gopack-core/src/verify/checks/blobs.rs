//! Checks of the image's documents and blobs: digests and sizes at every
//! level, the layer count and the stored size.

use super::super::layers::LayerReading;
use super::super::source::FoundImage;
use super::{Check, CheckId, Expectations};
use crate::config::ByteSize;
use std::collections::BTreeSet;

pub(super) fn blobs_check(image: &FoundImage, readings: &[LayerReading]) -> Check {
    let mut problems = image.problems.clone();
    for reading in readings {
        let layer = &reading.layer;
        let name = layer.digest.clone().unwrap_or_else(|| layer.name.clone());
        if let (Some(expected), Some(actual)) = (&layer.digest, &reading.digest) {
            if expected != actual {
                problems.push(format!("layer blob {expected} hashes to {actual}"));
            }
        }
        if let Some(size) = layer.size {
            if reading.error.is_none() && size != reading.size {
                problems.push(format!(
                    "layer blob {name} has {} bytes, {size} expected",
                    reading.size
                ));
            }
        }
        if let Some(error) = &reading.error {
            problems.push(format!("layer blob {name} cannot be read: {error}"));
        } else if let (Some(expected), Some(actual)) = (&layer.diff_id, &reading.diff_id) {
            if expected != actual {
                problems.push(format!(
                    "layer blob {name} unpacks to {actual}, but the config's diff_id is {expected}"
                ));
            }
        }
    }
    if problems.is_empty() {
        Check::pass(
            CheckId::BlobsDigest,
            format!(
                "{} blobs: digests, sizes and diff_ids match",
                image.checked_blobs + readings.len()
            ),
        )
    } else {
        Check::fail(
            CheckId::BlobsDigest,
            format!("{} blob problem(s): {}", problems.len(), problems[0]),
        )
        .details(problems[1..].to_vec())
        .remedy(if problems.iter().any(|p| p.contains("over verify's")) {
            "verify stopped at one of its budgets (named above): raise it with --limit if the image is trusted"
        } else {
            "the image is damaged or was changed after it was written: write it again from its source"
        })
    }
}

pub(super) fn layers_check(
    image: &FoundImage,
    readings: &[LayerReading],
    expect: &Expectations,
) -> Check {
    let count = image.layers.len();
    let compressions: BTreeSet<&str> = readings.iter().map(|r| r.compression).collect();
    let message = format!(
        "{count} layer(s), compression: {}",
        compressions.into_iter().collect::<Vec<_>>().join(", ")
    );
    match expect.policy.max_layers {
        Some(max) if count > max => Check::fail(
            CheckId::LayersCount,
            format!("{message}; the policy allows {max}"),
        )
        .remedy("merge the final stage's steps into fewer layers, or raise verify.max-layers"),
        Some(max) => Check::pass(CheckId::LayersCount, format!("{message} (at most {max})")),
        None => Check::pass(CheckId::LayersCount, message),
    }
}

pub(super) fn size_check(readings: &[LayerReading], expect: &Expectations) -> Check {
    let total = ByteSize(readings.iter().map(|r| r.size).sum());
    let message = format!("{total} of layers as stored");
    match expect.policy.max_size {
        Some(max) if total > max => Check::fail(CheckId::ImageSize, format!("{message}; the budget is {max}"))
            .remedy("drop what the app does not need (unused `files`, zoneinfo with tzdata = false, a cgo = \"dynamic\" build's libraries with cgo = \"static\"), or raise verify.max-size; gopack already strips the binary (-s -w)"),
        Some(max) => Check::pass(CheckId::ImageSize, format!("{message} (budget {max})")),
        None => Check::pass(CheckId::ImageSize, message),
    }
}
