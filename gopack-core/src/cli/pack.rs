//! `pack`: build and pack the selected apps into images. The run is planned
//! and checked first ([`crate::plan::Plan`]); then each app's engine makes
//! the image and the publishers send it where the plan says. Apps run side
//! by side (one per core, bounded by memory; in turn with a cache registry),
//! results print in the apps' order, and one app's failure does not stop the
//! others: each failed app is named, and the exit status is the worst.

use super::results::{json_line, write_stdout, PackResult};
use super::{CacheRegistryFlags, Common, Selection, Since};
use crate::config::EngineKind;
use crate::engine::DockerOptions;
use crate::pipeline::{self, Engines, Outcome};
use crate::plan::{PackOptions, Plan};
use crate::report::{Event, Reporter};
use crate::verify::Report;
use crate::{Error, Result};
use std::process::ExitCode;

/// Arguments of `pack`.
#[derive(Debug, clap::Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub since: Since,
    /// Load the image for the engine's platform into the local docker engine, tagged
    /// `name:version` and `name:latest` (or the app's `image-tags`).
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
    /// Send registry credentials over plain HTTP to a host that is not this machine
    /// (refused otherwise, even with --insecure-registry).
    #[arg(long)]
    pub insecure_registry_credentials: bool,
    /// Seconds to wait for the registry to accept a connection, and for each read and write.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_timeout)]
    pub registry_timeout: f64,
    /// Sign the image with this PEM private key (PKCS#8, SEC1, or cosign's encrypted
    /// key with COSIGN_PASSWORD): cosign signatures and attestations in the layout,
    /// the archive and on push (default: the config's `sign-key`, else the PEM in
    /// GOPACK_SIGN_KEY; see docs/signing.md).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<camino::Utf8PathBuf>,
    /// Skip `verify` of the packed image.
    #[arg(long)]
    pub no_verify: bool,
    /// Print what the run would do (engine, platforms, version, tags, outputs,
    /// destinations) and stop; with --json, as one JSON document.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub cache_registry: CacheRegistryFlags,
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
    /// Packs every selected app; prints what was made per app on stdout (one
    /// JSON line per app with `--json`, see [`PackResult`]).
    pub fn run(self, console: &dyn Reporter) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let (apps, reasons): (Vec<_>, Vec<_>) = self
            .since
            .select(&self.selection, &workspace, console)?
            .into_iter()
            .unzip();
        if apps.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        let options = PackOptions {
            engine: self.engine,
            load: self.load,
            push: self.push,
            registry: self.registry.clone(),
            insecure_registry: self.insecure_registry,
            registry_connection: crate::registry::Connection {
                insecure_credentials: self.insecure_registry_credentials,
                timeout: std::time::Duration::from_secs_f64(self.registry_timeout),
                ca_file: self.cache_registry.registry_ca_file.clone(),
            },
            no_verify: self.no_verify,
            docker_flags: !self.docker.build_args.is_empty() || self.docker.builder.is_some(),
        };
        let mut plan = Plan::pack(&workspace, &apps, &options)?;
        for (step, reasons) in plan.apps.iter_mut().zip(reasons) {
            step.reasons = reasons;
        }
        for step in &plan.apps {
            // The docker engine reads the app's history again when it packs, and warns then.
            if step.engine == EngineKind::Oci || self.dry_run {
                for message in &step.warnings {
                    console.report(Event::Warning {
                        message: message.clone(),
                    });
                }
            }
        }
        if self.dry_run {
            if self.common.json {
                for step in &plan.apps {
                    json_line(step)?;
                }
            } else {
                write_stdout(&plan.text())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        let signer = signer(self.sign_key.as_deref(), &workspace)?;
        let signing = signer.as_ref().map(|signer| crate::sign::Signing {
            signer,
            registry: self
                .registry
                .clone()
                .or_else(|| workspace.config.registry.clone()),
        });
        if signing.is_some() {
            if let Some(step) = plan.apps.iter().find(|a| a.engine == EngineKind::Docker) {
                return Err(Error::Invalid {
                    path: step.app.clone(),
                    message: "the docker engine's images are not signed".into(),
                    help: "pack it with --engine oci to sign it, or sign it with cosign after \
                           the push"
                        .into(),
                });
            }
        }
        let remote =
            self.cache_registry
                .open(&workspace, options.registry_connection.clone(), console)?;
        let docker_options = DockerOptions {
            build_args: self.docker.build_args.clone(),
            builder: self.docker.builder.clone(),
        };
        let engines =
            Engines::for_plan(&workspace, &plan, docker_options, remote.as_ref(), console)?
                .with_signing(signing.as_ref());
        // A cache registry shares only what went into a verified image, and
        // each app's end pushes what is pending: with one, apps run in turn.
        let jobs = if remote.is_some() {
            1
        } else {
            jobs(apps.len())
        };
        let one_app = apps.len() == 1;
        let mut exit = ExitCode::SUCCESS;
        let mut failed = false;
        let mut error = None;
        let mut show = |app: &crate::config::App, outcome: Result<Outcome>| -> Result<()> {
            let (err, checks) = match outcome {
                Ok(Outcome::Shipped(shipped)) => {
                    let result = PackResult::of(&shipped, &app.config.expose);
                    return if self.common.json {
                        json_line(&result)
                    } else {
                        write_stdout(&result.text())
                    };
                }
                Ok(Outcome::ChecksFailed { image, report }) => {
                    let e = check_report(&report, &image).expect_err("the report failed");
                    exit = super::checks_failed(console, &e, Some(&report));
                    (e, true)
                }
                // One app: its error ends the run as it always did.
                Err(e) if one_app => {
                    error = Some(e);
                    return Ok(());
                }
                Err(e) => {
                    console.report(crate::report::Event::error(&e));
                    failed = true;
                    (e, false)
                }
            };
            if self.common.json && !one_app {
                json_line(&super::results::FailedResult::of(app.name(), &err, checks))?;
            }
            Ok(())
        };
        let run_app = |index: usize| -> Result<Outcome> {
            let app = &apps[index];
            // Held while this app's outputs are written, verified and published.
            let _lock = crate::output_lock::OutputLock::acquire(
                &workspace.out_dir().join(app.name()),
                console,
            )?;
            pipeline::run(&engines, &workspace, app, &plan.apps[index], console)
        };
        super::parallel::in_order(apps.len(), jobs, run_app, |index, outcome| {
            show(&apps[index], outcome)
        })?;
        if let Some(e) = error {
            return Err(e);
        }
        if failed {
            exit = ExitCode::from(super::ERROR);
        }
        if let Some(remote) = &remote {
            remote.summary();
        }
        Ok(exit)
    }
}

/// How many apps a run packs at once: one per core, and no more than the
/// memory available holds (a `go build` of a large app peaks near 1 GiB).
fn jobs(apps: usize) -> usize {
    const PER_JOB: u64 = 1 << 30;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(cores, |kib| {
            usize::try_from(kib * 1024 / PER_JOB).unwrap_or(cores)
        });
    cores.min(memory).min(apps).max(1)
}

/// The signer of a run: `--sign-key`, else the config's `sign-key` (from the
/// workspace root), else the PEM in `GOPACK_SIGN_KEY`; `COSIGN_PASSWORD` opens
/// cosign's encrypted keys. `None`: the run does not sign (an empty
/// `GOPACK_SIGN_KEY` too).
fn signer(
    flag: Option<&camino::Utf8Path>,
    workspace: &crate::config::Workspace,
) -> Result<Option<crate::sign::KeySigner>> {
    use std::os::unix::ffi::OsStrExt;
    let env = &workspace.environment;
    let password = env.cosign_password.as_ref().map(|p| p.0.as_bytes());
    if let Some(path) = flag {
        return crate::sign::KeySigner::from_file(path, password).map(Some);
    }
    if let Some(path) = &workspace.config.sign_key {
        let path = workspace.root.join(path);
        return crate::sign::KeySigner::from_file(&path, password).map(Some);
    }
    // An empty value is no key, as a CI secret reads on a fork's pull request.
    let Some(pem) = env.sign_key.as_ref().filter(|pem| !pem.0.is_empty()) else {
        return Ok(None);
    };
    let pem = pem.0.to_str().ok_or_else(|| Error::Invalid {
        path: crate::sign::KEY_ENV.into(),
        message: "the value is not UTF-8".into(),
        help: "put the key's PEM text in GOPACK_SIGN_KEY, or unset it".into(),
    })?;
    crate::sign::KeySigner::from_env(crate::sign::KEY_ENV, pem, password).map(Some)
}

/// A failed verify stops the run before the image is loaded or pushed.
pub(super) fn check_report(report: &Report, image: &str) -> Result<()> {
    if report.passed() {
        return Ok(());
    }
    let failed: Vec<&str> = report
        .all_checks()
        .filter(|c| c.status == crate::verify::Status::Fail)
        .map(|c| c.id.as_str())
        .collect();
    Err(Error::Invalid {
        path: image.to_string(),
        message: format!("the image fails verify: {}", failed.join(", ")),
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

fn parse_timeout(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 3600.0 => Ok(seconds),
        _ => Err(format!(
            "`{text}` is not a number of seconds greater than 0 and at most 3600 (such as 0.5 or 30)"
        )),
    }
}
