//! `cargo xtask`: the thinnest user of gopack-core's CLI.

use clap::Parser;
use std::process::ExitCode;

/// Pack Go apps into minimal, non-root, reproducible container images.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Xtask {
    #[command(subcommand)]
    command: gopack_core::cli::Command,
}

fn main() -> ExitCode {
    Xtask::parse().command.main()
}
