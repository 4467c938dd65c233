//! `run APP [-- ARGS]`: pack the app (its engine: oci unless configured
//! otherwise), load the image for the engine's platform into docker, and run
//! it with `docker run --rm`, as the image's user (its numeric `USER`).
//!
//! The app's configured ports (`expose`) are published on the same port
//! numbers on 127.0.0.1 only (`-p 127.0.0.1:8080:8080/tcp`), so a service is
//! reachable from this machine and not from the network. `--init` runs
//! docker's tiny init as PID 1, so Ctrl-C stops an app that installs no
//! signal handler. `-i -t` only when stdin is a terminal. gopack exits with
//! the container's exit code.
//!
//! With `--json` the CI contract holds (docs/ci.md): the container's
//! stdout and stderr become `output` events (`"tool":"container"`) on
//! stderr, never gopack's stdout; stdout is one result line (`name`,
//! `image`, `exit_code`); the exit status is gopack's: 0 when the container
//! exited 0, [`APP_FAILED`] (3) when it exited otherwise (its code is the
//! result's `exit_code`), 1 and 2 as for every command.

use super::{Common, Selection};
use crate::config::EngineKind;
use crate::engine::DockerOptions;
use crate::pipeline::{self, Engines, Outcome};
use crate::plan::{PackOptions, Plan};
use crate::process::stdin_is_terminal;
use crate::report::{Event, Reporter};
use crate::toolchain::Docker;
use crate::{Error, Result};
use std::process::ExitCode;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Arguments for the app (after `--`), in place of the image's CMD.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
    /// The engine: `oci` or `docker` (default: the app's `engine`, else oci).
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineKind>,
    /// Skip `verify` of the packed image.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub common: Common,
}

impl RunArgs {
    /// Packs, loads and runs the one selected app; returns the container's exit code.
    pub fn run(self, console: &dyn Reporter) -> Result<ExitCode> {
        let workspace = self.common.workspace()?;
        let apps = workspace.select(&self.selection.apps, &self.selection.overrides())?;
        let [app] = apps.as_slice() else {
            return Err(Error::Flag {
                flag: "APP".into(),
                message: format!("`run` runs one app, and {} are selected", apps.len()),
                help: "name the app: cargo xtask run APP -- ARGS".into(),
            });
        };
        let options = PackOptions {
            engine: self.engine,
            load: true,
            push: false,
            registry: None,
            insecure_registry: false,
            registry_connection: Default::default(),
            no_verify: self.no_verify,
            docker_flags: false,
        };
        let plan = Plan::pack(&workspace, &apps, &options)?;
        let step = &plan.apps[0];
        let _lock = crate::output_lock::OutputLock::acquire(
            &workspace.out_dir().join(app.name()),
            console,
        )?;
        if step.engine == EngineKind::Oci {
            for message in &step.warnings {
                console.report(Event::Warning {
                    message: message.clone(),
                });
            }
        }
        let engines =
            Engines::for_plan(&workspace, &plan, DockerOptions::default(), None, console)?;
        let shipped = match pipeline::run(&engines, &workspace, app, step, console)? {
            Outcome::Shipped(shipped) => shipped,
            Outcome::ChecksFailed { image, report } => {
                let e = super::pack::check_report(&report, &image).expect_err("the report failed");
                return Ok(super::checks_failed(console, &e, Some(&report)));
            }
        };
        let image = shipped
            .loaded
            .first()
            .cloned()
            .ok_or_else(|| Error::Invalid {
                path: app.name().to_string(),
                message: "the image was loaded with no tag".into(),
                help: "check the app's `image-tags`".into(),
            })?;
        drop(_lock);
        let json = self.common.json;
        let command = docker_run_args(
            &image,
            &app.config.expose,
            &self.args,
            !json && stdin_is_terminal(),
        );
        console.report(Event::Note {
            message: format!("docker {}", command.join(" ")),
        });
        if json {
            let docker = Docker::find()?;
            let exit_code = crate::process::Cmd::new("container", &docker.path)
                .args(&command)
                .help("`docker run` could not start: check the docker engine")
                .stream_code(console)?;
            let result = RunResult {
                name: app.name().to_string(),
                image,
                exit_code,
            };
            if let Ok(line) = serde_json::to_string(&result) {
                println!("{line}");
            }
            return Ok(ExitCode::from(if exit_code == Some(0) {
                0
            } else {
                APP_FAILED
            }));
        }
        let code = Docker::find()?
            .cmd(&command)
            .help("`docker run` could not start: check the docker engine")
            .interactive()?;
        Ok(match code {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(super::ERROR)),
            None => ExitCode::from(super::ERROR),
        })
    }
}

/// The exit status of `run --json` when the container exited with a code
/// other than 0 (or was killed): the code is the result's `exit_code`.
pub const APP_FAILED: u8 = 3;

/// The stdout line of `run --json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// The app.
    pub name: String,
    /// The image that ran (`name:tag` in the docker engine).
    pub image: String,
    /// The container's exit code (`null` when a signal ended it).
    pub exit_code: Option<i32>,
}

/// `run --rm --init [-i -t] [-p 127.0.0.1:PORT:PORT/PROTO]... IMAGE [ARGS]...`.
pub fn docker_run_args(image: &str, expose: &[String], args: &[String], tty: bool) -> Vec<String> {
    let mut command: Vec<String> = vec!["run".into(), "--rm".into(), "--init".into()];
    if tty {
        command.extend(["-i".into(), "-t".into()]);
    }
    for port in expose {
        let (number, protocol) = port.split_once('/').unwrap_or((port.as_str(), "tcp"));
        command.push("-p".into());
        command.push(format!("127.0.0.1:{number}:{number}/{protocol}"));
    }
    command.push(image.to_string());
    command.extend(args.iter().cloned());
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_go_to_loopback_on_the_same_number() {
        let args = docker_run_args(
            "api:1.0",
            &["8080/tcp".into(), "53/udp".into(), "9090".into()],
            &["--flag".into()],
            false,
        );
        assert_eq!(
            args.join(" "),
            "run --rm --init -p 127.0.0.1:8080:8080/tcp -p 127.0.0.1:53:53/udp \
             -p 127.0.0.1:9090:9090/tcp api:1.0 --flag"
        );
        assert!(docker_run_args("a", &[], &[], true).contains(&"-t".to_string()));
    }
}
