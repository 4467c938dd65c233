//! What a `pack` run will do, decided and validated before anything runs:
//! per app, the engine, platforms, version and tags, the outputs and the
//! destinations. Options that cannot work together are refused here, so a run
//! never fails half-way for a reason it could have known at the start.
//! `pack --dry-run` prints the plan and stops.

use crate::config::{App, EngineKind, Workspace};
use crate::error::{Error, Result};
use crate::image::ImageMetadata;
use crate::publish::{self, Destination};
use crate::report::{Event, Recorder};
use camino::Utf8PathBuf;
use serde::Serialize;
use std::fmt::Write as _;

/// What `pack` was asked, besides the apps.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// `--engine`: overrides each app's `engine`.
    pub engine: Option<EngineKind>,
    /// `--load`.
    pub load: bool,
    /// `--push`.
    pub push: bool,
    /// `--registry`: overrides the config's `registry`.
    pub registry: Option<String>,
    /// `--insecure-registry`.
    pub insecure_registry: bool,
    /// `--insecure-registry-credentials` and `--registry-timeout`.
    pub registry_connection: crate::registry::Connection,
    /// `--no-verify`.
    pub no_verify: bool,
    /// Whether docker-engine-only flags (`--build-arg`, `--builder`) were given.
    pub docker_flags: bool,
}

/// One app's part of a run.
#[derive(Debug, Clone, Serialize)]
pub struct AppPlan {
    /// The app's name.
    pub app: String,
    /// `oci` or `docker`.
    pub engine: EngineKind,
    /// `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// The version stamped into the binary and the image.
    pub version: String,
    /// The image's tags.
    pub tags: Vec<String>,
    /// The OCI layout folder (oci engine; `null` for the docker engine).
    pub layout: Option<String>,
    /// The archive (oci engine; `null` for the docker engine).
    pub archive: Option<String>,
    /// Whether the packed image is verified before it is published; in JSON
    /// `"planned"` or `"skipped"` (`--no-verify`), as a pack result says
    /// `"passed"` or `"skipped"`.
    #[serde(serialize_with = "verify_word")]
    pub verify: bool,
    /// Where the image goes besides its layout and archive.
    #[serde(skip)]
    pub destinations: Vec<Destination>,
    /// The version, revision and date the image records.
    #[serde(skip)]
    pub metadata: ImageMetadata,
    /// The destinations, described.
    #[serde(rename = "destinations")]
    pub destination_names: Vec<String>,
    /// What reading the app's history found worth a warning (no history,
    /// dirty files); always present in JSON (`[]` when there are none).
    pub warnings: Vec<String>,
    /// Why `--since` selected the app (empty without `--since`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// A plan's `verify` in JSON: `"planned"` or `"skipped"`.
fn verify_word<S: serde::Serializer>(verify: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if *verify { "planned" } else { "skipped" })
}

/// Everything a `pack` run will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// One entry per selected app, in order.
    pub apps: Vec<AppPlan>,
}

impl Plan {
    /// Decides what packing `apps` with `options` does, or refuses options
    /// that cannot work. With `--load`, asks the docker engine its platform.
    pub fn pack(workspace: &Workspace, apps: &[App], options: &PackOptions) -> Result<Plan> {
        let engine_of = |app: &App| options.engine.unwrap_or(app.config.engine);
        let uses_docker = apps.iter().any(|a| engine_of(a) == EngineKind::Docker);
        if options.docker_flags && !uses_docker {
            return Err(Error::Flag {
                flag: "--build-arg/--builder".into(),
                message: "only the docker engine takes them".into(),
                help: "add --engine docker, or set engine = \"docker\" in the app's config".into(),
            });
        }
        // git's answers are remembered in an existing cache; a plan creates none.
        let cache_dir = workspace.cache_dir();
        let memo = if cache_dir.is_dir() {
            crate::cache::Cache::open(cache_dir).ok()
        } else {
            None
        };
        let push_prefix = if options.push {
            Some(
                options
                    .registry
                    .clone()
                    .or_else(|| workspace.config.registry.clone())
                    .ok_or_else(|| Error::Flag {
                        flag: "--push".into(),
                        message: "no registry to push to".into(),
                        help: "pass --registry HOST/PATH, or set `registry` in [workspace.metadata.gopack]".into(),
                    })?,
            )
        } else {
            None
        };
        // One `git status` for every app of the run, not one per app.
        let changes = crate::vcs::Changes::read(&input_paths(apps));
        let mut plans = Vec::new();
        for app in apps {
            let engine = engine_of(app);
            let mut destinations = Vec::new();
            if engine == EngineKind::Docker && options.push {
                return Err(Error::Flag {
                    flag: "--push".into(),
                    message: format!("{} uses the docker engine, whose images live in the engine", app.name()),
                    help: "push them with `docker push`, or pack with --engine oci, which pushes without a daemon".into(),
                });
            }
            if engine == EngineKind::Docker {
                // cgo = "dynamic", and `files` the build context cannot hold.
                crate::engine::dockerfile::supported(app)?;
            }
            // The docker engine builds inside the engine: --load has nothing left to do.
            if engine == EngineKind::Oci && options.load {
                publish::docker::check_loadable(app.name(), &app.platforms())?;
                destinations.push(Destination::Docker);
            }
            if let Some(prefix) = &push_prefix {
                // Refuses a malformed prefix before anything is built.
                crate::registry::Target::new(prefix, app.image_name(), options.insecure_registry)?;
                destinations.push(Destination::Registry {
                    prefix: prefix.clone(),
                    insecure: options.insecure_registry,
                    connection: options.registry_connection.clone(),
                });
            }
            let recorder = Recorder::default();
            let metadata = ImageMetadata::read_with(app, memo.as_ref(), Some(&changes), &recorder)?;
            let warnings = recorder
                .events()
                .into_iter()
                .filter_map(|event| match event {
                    Event::Warning { message } => Some(message),
                    _ => None,
                })
                .collect();
            let out = workspace.out_dir().join(app.name());
            let oci = engine == EngineKind::Oci;
            plans.push(AppPlan {
                app: app.name().to_string(),
                engine,
                platforms: app.platforms().iter().map(|p| p.to_string()).collect(),
                // Templates are rendered and every tag checked before anything is built.
                tags: crate::engine::image_tags(app, &metadata, &crate::report::Silent)?,
                version: metadata.version.clone(),
                metadata,
                layout: oci.then(|| out.join("oci").to_string()),
                archive: oci.then(|| out.join(format!("{}.tar", app.name())).to_string()),
                verify: !options.no_verify,
                destination_names: destinations.iter().map(Destination::describe).collect(),
                destinations,
                warnings,
                reasons: Vec::new(),
            });
        }
        Ok(Plan { apps: plans })
    }

    /// The plan as a person reads it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for app in &self.apps {
            let _ = writeln!(
                out,
                "{}: {} engine, {}, version {} (tags {})",
                app.app,
                app.engine,
                app.platforms.join(", "),
                app.version,
                app.tags.join(", ")
            );
            if let Some(layout) = &app.layout {
                let _ = writeln!(out, "  layout  {layout}");
            }
            if let Some(archive) = &app.archive {
                let _ = writeln!(out, "  archive {archive}");
            }
            let _ = writeln!(
                out,
                "  verify  {}",
                if app.verify {
                    "yes"
                } else {
                    "no (--no-verify)"
                }
            );
            for destination in &app.destination_names {
                let _ = writeln!(out, "  then    {destination}");
            }
            for reason in &app.reasons {
                let _ = writeln!(out, "  why     {reason}");
            }
        }
        out
    }
}

/// Each app's module folder and the inputs its history is read from; an app
/// whose module cannot be read is left out (its own read says why).
pub(crate) fn input_paths(apps: &[App]) -> Vec<(Utf8PathBuf, Vec<Utf8PathBuf>)> {
    apps.iter()
        .filter_map(|app| {
            let setup = crate::gomod::ModuleSetup::detect(app).ok()?;
            Some((app.dir.clone(), setup.input_paths(app).ok()?))
        })
        .collect()
}
