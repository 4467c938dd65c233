//! Provenance: an in-toto statement (v1) with an SLSA v1 provenance predicate
//! for one platform image: how gopack was run, the Go version and build
//! settings, the source repository and revision, the app's resolved config,
//! and the digests of the inputs (go.mod, go.sum, the module tree key).
//!
//! Deterministic like the SBOM: no clock, no random invocation id.

use crate::build::{Binary, BuildFlags};
use crate::config::App;
use crate::error::Result;
use crate::goinfo::buildinfo::BuildInfo;
use crate::image::ImageMetadata;
use camino::Utf8Path;
use serde_json::{json, Value};
use sha2::Digest as _;

/// The artifact type and media type of the statement.
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What kind of build this is (documented in docs/supply-chain.md).
pub const BUILD_TYPE: &str = concat!(
    env!("CARGO_PKG_REPOSITORY"),
    "/blob/main/docs/supply-chain.md#provenance"
);

/// The statement for the platform image with manifest `manifest_digest`.
pub fn statement(
    app: &App,
    workspace_root: &Utf8Path,
    metadata: &ImageMetadata,
    binary: &Binary,
    info: &BuildInfo,
    manifest_digest: &str,
) -> Result<Vec<u8>> {
    let setup = crate::gomod::ModuleSetup::detect(app)?;
    let flags = BuildFlags::for_app(app, &metadata.version, &setup)?;
    let mut go_build = vec!["go".to_string(), "build".into()];
    go_build.extend(flags.args());
    go_build.push(crate::build::main_package(&app.config.main));
    let config = serde_json::to_value(&app.config).unwrap_or(Value::Null);
    let mut dependencies = Vec::new();
    if let (Some(source), Some(revision)) = (&metadata.source, &metadata.revision) {
        dependencies.push(json!({
            "uri": format!("git+{source}@{revision}"),
            "digest": {"gitCommit": revision},
        }));
    } else if let Some(revision) = &metadata.revision {
        dependencies.push(json!({"name": "source", "digest": {"gitCommit": revision}}));
    }
    for file in ["go.mod", "go.sum", "go.work", "vendor/modules.txt"] {
        if let Ok(bytes) = std::fs::read(app.dir.join(file)) {
            dependencies.push(json!({
                "name": file,
                "digest": {"sha256": hex::encode(sha2::Sha256::digest(&bytes))},
            }));
        }
    }
    dependencies.push(json!({
        "name": "gopack module tree key",
        "digest": {"sha256": binary.deps_key},
    }));
    dependencies.push(json!({
        "name": "gopack binary key",
        "digest": {"sha256": binary.key},
    }));
    let settings: serde_json::Map<String, Value> = info
        .settings
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let relative_path = app
        .dir
        .strip_prefix(workspace_root)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| app.config.path.to_string());
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{
            "name": app.name(),
            "digest": {"sha256": manifest_digest.trim_start_matches("sha256:")},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    // Flags of the run (--platform, --uid, --app-version, ...) show in
                    // `config`, as resolved; the command line itself is left out so
                    // that the statement does not change with flags such as --push.
                    "command": ["gopack", "pack", app.name()],
                    "app": app.name(),
                    "path": relative_path,
                    "platform": binary.platform.to_string(),
                    "version": metadata.version,
                    "source": {"repository": metadata.source, "revision": metadata.revision},
                    "config": config,
                },
                "internalParameters": {
                    "goVersion": info.go_version,
                    "goBuild": go_build,
                    "goBuildSettings": settings,
                    "sourceDateEpoch": metadata.epoch,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": concat!(env!("CARGO_PKG_REPOSITORY"), "@v", env!("CARGO_PKG_VERSION")),
                    "version": {"gopack": env!("CARGO_PKG_VERSION"), "go": info.go_version},
                },
                "metadata": {},
            },
        },
    });
    let mut bytes = serde_json::to_vec_pretty(&statement).expect("JSON values serialize");
    bytes.push(b'\n');
    Ok(bytes)
}
