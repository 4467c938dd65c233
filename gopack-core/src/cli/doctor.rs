//! `doctor`: which tools gopack can use here, and how to get the missing ones.
//!
//! With `--json`, one line per tool on stdout: `tool`, `ok`, `required`,
//! `detail` (docs/ci.md); the exit status is 1 when a required tool (go) is
//! missing, else 0.

use crate::process::Cmd;
use crate::toolchain::{which_utf8, Docker, Go, DOCKER_INSTALL_HINT};
use crate::Result;
use std::process::ExitCode;

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print one JSON line per tool (`tool`, `ok`, `required`, `detail`).
    #[arg(long)]
    pub json: bool,
}

/// One line of the report.
#[derive(serde::Serialize)]
struct Check {
    #[serde(rename = "tool")]
    name: &'static str,
    ok: bool,
    required: bool,
    detail: String,
}

impl DoctorArgs {
    /// Prints one line per tool; fails only when a required tool (go) is missing.
    pub fn run(self) -> Result<ExitCode> {
        let mut checks = vec![Check {
            name: "gopack",
            ok: true,
            required: true,
            detail: crate::VERSION.to_string(),
        }];
        let go = Go::find();
        checks.push(match &go {
            Ok(go) => Check {
                name: "go",
                ok: true,
                required: true,
                detail: format!("{} ({})", go.version, go.path),
            },
            Err(err) => Check {
                name: "go",
                ok: false,
                required: true,
                detail: format!("required: {err}"),
            },
        });
        match Docker::find() {
            Ok(docker) => {
                checks.push(Check {
                    name: "docker",
                    ok: true,
                    required: false,
                    detail: docker.path.to_string(),
                });
                checks.push(match docker.engine_version() {
                    Ok(version) => Check { name: "docker engine", ok: true, required: false, detail: format!("reachable, version {version}") },
                    Err(_) => Check {
                        name: "docker engine",
                        ok: false,
                        required: false,
                        detail: "not reachable; needed only for --load and --engine docker: start it (`systemctl start docker`) or set DOCKER_HOST".into(),
                    },
                });
                let buildx = docker.cmd(["buildx", "version"]).read();
                checks.push(match buildx {
                    Ok(text) => Check { name: "buildx", ok: true, required: false, detail: text.trim().to_string() },
                    Err(_) => Check {
                        name: "buildx",
                        ok: false,
                        required: false,
                        detail: "optional: without it the docker engine uses the classic builder (no cache mounts); install docker-buildx-plugin".into(),
                    },
                });
            }
            Err(_) => checks.push(Check {
                name: "docker",
                ok: false,
                required: false,
                detail: format!("optional, for --load and --engine docker: {DOCKER_INSTALL_HINT}"),
            }),
        }
        for (name, hint) in [
            (
                "git",
                "optional, for version tags and revision labels: apt-get install git",
            ),
            (
                "skopeo",
                "optional, to copy images to registries by hand: apt-get install skopeo",
            ),
            (
                "umoci",
                "optional, to unpack OCI layouts by hand: apt-get install umoci",
            ),
        ] {
            checks.push(match which_utf8(name) {
                Some(path) => {
                    let version = Cmd::new(name, &path)
                        .arg("--version")
                        .read()
                        .unwrap_or_default();
                    let version = version.lines().next().unwrap_or("").trim().to_string();
                    Check {
                        name,
                        ok: true,
                        required: false,
                        detail: format!("{version} ({path})"),
                    }
                }
                None => Check {
                    name,
                    ok: false,
                    required: false,
                    detail: hint.into(),
                },
            });
        }
        for check in &checks {
            if self.json {
                if let Ok(line) = serde_json::to_string(check) {
                    println!("{line}");
                }
                continue;
            }
            let mark = if check.ok { "ok" } else { "missing" };
            println!("{:<14} {:<8} {}", check.name, mark, check.detail);
        }
        Ok(if go.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
