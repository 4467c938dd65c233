//! `cargo xtask`: the thinnest user of gopack-core's CLI, plus the project's
//! own `bench`.

mod bench;

use clap::Parser;
use std::process::ExitCode;

/// Pack Go apps into minimal, non-root, reproducible container images.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version = gopack_core::VERSION,
    about
)]
enum Xtask {
    #[command(flatten)]
    Gopack(gopack_core::cli::Command),
    /// Measure gopack against plain `go build` and write docs/benchmarks.md.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    match gopack_core::cli::parse::<Xtask>() {
        Xtask::Gopack(command) => command.main(),
        Xtask::Bench(args) => match args.run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(gopack_core::cli::ERROR)
            }
        },
    }
}
