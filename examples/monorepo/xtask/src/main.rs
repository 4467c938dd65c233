//! `cargo xtask`: the monorepo's own tasks, and gopack's.

use clap::Parser;
use std::process::{Command, ExitCode};

/// The monorepo's tasks.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
enum Xtask {
    /// gopack: build, pack, run, verify, dockerfile, clean, doctor.
    #[command(flatten)]
    Gopack(gopack_core::cli::Command),
    /// Check that the Go services are gofmt-formatted.
    Lint,
}

fn main() -> ExitCode {
    // gopack's parse: with `--json`, a bad command line is a JSON `usage`
    // event (exit 2), as gopack's CI contract says; `Xtask::parse()` is not.
    match gopack_core::cli::parse::<Xtask>() {
        Xtask::Gopack(command) => command.main(),
        Xtask::Lint => lint(),
    }
}

/// Runs `gofmt -l services`: it lists the files that are not formatted.
fn lint() -> ExitCode {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = match Command::new("gofmt")
        .arg("-l")
        .arg("services")
        .current_dir(&root)
        .output()
    {
        Ok(output) => output,
        Err(err) => {
            eprintln!("error: cannot run gofmt ({err}): install Go and put its bin/ on PATH");
            return ExitCode::from(2);
        }
    };
    let unformatted = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !unformatted.trim().is_empty() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        eprint!("{unformatted}");
        eprintln!("error: run `gofmt -w services` to format these files");
        return ExitCode::FAILURE;
    }
    println!("lint: the Go services are formatted");
    ExitCode::SUCCESS
}
