//! `verify`: reads an image and checks, as facts, what the idioms promise.

use serde::{Deserialize, Serialize};

/// Per-app verify policy: `[workspace.metadata.gopack.apps.verify]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Policy {}
