//! `pack`: build and pack the selected apps into images.

use super::{Common, Selection};
use crate::config::EngineKind;
use crate::engine::{DockerEngine, DockerOptions, OciEngine};
use crate::publish::{self, Destination};
use crate::verify::Report;
use crate::{Error, Result};
use std::process::ExitCode;

/// Arguments of `pack`.
#[derive(Debug, clap::Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Load the image for the engine's platform into the local docker engine, tagged.
    #[arg(long)]
    pub load: bool,
    /// The engine: `oci` (daemonless) or `docker` (the multi-stage Dockerfile run by
    /// `docker build`); default: each app's `engine`, else oci.
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineKind>,
    #[command(flatten)]
    pub docker: Box<DockerFlags>,
    /// Push the image (every platform, every tag) to the registry, without a daemon.
    #[arg(long)]
    pub push: bool,
    /// The registry prefix to push to, e.g. ghcr.io/acme (default: the config's `registry`).
    #[arg(long, value_name = "HOST[/PATH]")]
    pub registry: Option<String>,
    /// Speak plain HTTP to the registry (loopback registries always do).
    #[arg(long)]
    pub insecure_registry: bool,
    /// Skip `verify` of the packed image.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The flags only the docker engine takes.
#[derive(Debug, Clone, clap::Args)]
pub struct DockerFlags {
    /// A build argument for the docker engine, `K=V`; repeat for several.
    #[arg(long = "build-arg", value_name = "K=V", value_parser = parse_build_arg)]
    pub build_args: Vec<(String, String)>,
    /// The buildx builder the docker engine uses (only with buildx).
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
}

impl PackArgs {
    /// Packs every selected app; prints `name@digest` and the archive per app on stdout.
    pub fn run(self) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let apps = workspace.select(&self.selection.apps, &self.selection.overrides())?;
        let console = self.common.console();
        let engine_of = |app: &crate::config::App| self.engine.unwrap_or(app.config.engine);
        let docker_engine = if apps.iter().any(|a| engine_of(a) == EngineKind::Docker) {
            let options = DockerOptions {
                build_args: self.docker.build_args.clone(),
                builder: self.docker.builder.clone(),
            };
            Some(DockerEngine::new(&workspace, options, &console)?)
        } else {
            if !self.docker.build_args.is_empty() || self.docker.builder.is_some() {
                return Err(Error::Flag {
                    flag: "--build-arg/--builder".into(),
                    message: "only the docker engine takes them".into(),
                    help: "add --engine docker, or set engine = \"docker\" in the app's config"
                        .into(),
                });
            }
            None
        };
        // The docker engine needs no host `go`: find it only for the oci engine.
        let oci_engine = if apps.iter().any(|a| engine_of(a) == EngineKind::Oci) {
            Some(OciEngine::new(&workspace, &console)?)
        } else {
            None
        };
        // Options that cannot work are refused before anything is built.
        let push_prefix = if self.push {
            Some(
                self.registry
                    .clone()
                    .or_else(|| workspace.config.registry.clone())
                    .ok_or_else(|| Error::Flag {
                        flag: "--push".into(),
                        message: "no registry to push to".into(),
                        help: "pass --registry HOST/PATH, or set `registry` in [workspace.metadata.gopack]"
                            .into(),
                    })?,
            )
        } else {
            None
        };
        if let Some(app) = apps.iter().find(|a| engine_of(a) == EngineKind::Docker) {
            if self.push {
                return Err(Error::Flag {
                    flag: "--push".into(),
                    message: format!("{} uses the docker engine, whose images live in the engine", app.name()),
                    help: "push them with `docker push`, or pack with --engine oci, which pushes without a daemon".into(),
                });
            }
        }
        let mut destinations = Vec::new();
        if self.load {
            destinations.push(Destination::Docker);
        }
        if let Some(prefix) = push_prefix {
            destinations.push(Destination::Registry {
                prefix,
                insecure: self.insecure_registry,
            });
        }
        if self.load {
            for app in apps.iter().filter(|a| engine_of(a) == EngineKind::Oci) {
                publish::docker::check_loadable(app.name(), &app.platforms())?;
            }
        }
        for app in &apps {
            let engine = match (&oci_engine, &docker_engine) {
                (Some(engine), _) if engine_of(app) == EngineKind::Oci => engine,
                (_, Some(docker)) => {
                    // The image is built inside the engine: --load has nothing left to do.
                    let packed = docker.pack(app)?;
                    check_report(&packed.report, &format!("docker:{}", packed.references[0]))?;
                    println!("{} {}", packed.references.join(" "), packed.image_id);
                    continue;
                }
                (None, None) => continue,
                (Some(engine), None) => engine,
            };
            let packed = engine.pack(app)?;
            if !self.no_verify {
                if let Some(report) = engine.verify(app, &packed)? {
                    check_report(&report, packed.layout.as_str())?;
                }
            }
            for destination in &destinations {
                destination.publish(engine.cache(), &packed, &console)?;
            }
            println!(
                "{}@{} {}",
                packed.app,
                packed.image.digest(),
                packed.archive
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A failed verify stops the run before the image is loaded or pushed.
fn check_report(report: &Report, image: &str) -> Result<()> {
    if report.passed() {
        return Ok(());
    }
    eprint!("{}", report.table());
    Err(Error::Invalid {
        path: image.to_string(),
        message: "the image fails verify (see the table above)".into(),
        help: "fix the failed checks, allow them in the app's `verify` config, or pass --no-verify"
            .into(),
    })
}

/// `K=V` for `--build-arg`.
fn parse_build_arg(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}
