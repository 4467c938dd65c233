//! `bench --levels FILE...`: the layer compression level chosen by numbers.
//! Each file (a real app's stripped binary) is compressed at gzip levels 1
//! to 9 the way gopack writes layers (blocks of 128 KiB on the machine's
//! cores, [`gopack_core::oci::pgzip`]); the table gives bytes and time.

use super::ms;
use flate2::Compression;
use gopack_core::oci::pgzip::ParallelGzip;
use std::time::{Duration, Instant};

/// Times of a level are the median of this many runs.
const RUNS: usize = 3;

/// The table for `files`, on `threads` threads.
pub fn table(files: &[std::path::PathBuf], threads: usize) -> Result<String, String> {
    let inputs = files
        .iter()
        .map(|path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())))
        .collect::<Result<Vec<_>, _>>()?;
    let total: u64 = inputs.iter().map(|b| b.len() as u64).sum();
    let mut out = format!(
        "{} binaries, {total} bytes in all ({}), compressed as layers are (128 KiB blocks) on {threads} threads; time: median of {RUNS} runs.\n\n\
         | level | bytes | of the input | time | MB/s |\n|---|---|---|---|---|\n",
        inputs.len(),
        files
            .iter()
            .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for level in 1..=9 {
        let mut bytes = 0u64;
        let mut time = Duration::ZERO;
        for input in &inputs {
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..RUNS {
                let start = Instant::now();
                let mut gz =
                    ParallelGzip::with_threads(Vec::new(), Compression::new(level), threads)
                        .map_err(|e| e.to_string())?;
                std::io::Write::write_all(&mut gz, input).map_err(|e| e.to_string())?;
                size = gz.finish().map_err(|e| e.to_string())?.len();
                times.push(start.elapsed());
            }
            times.sort();
            time += times[RUNS / 2];
            bytes += size as u64;
        }
        eprintln!("level {level}: {bytes} bytes, {}", ms(time));
        out.push_str(&format!(
            "| {level} | {bytes} | {:.1} % | {} | {:.0} |\n",
            bytes as f64 * 100.0 / total as f64,
            ms(time),
            total as f64 / 1e6 / time.as_secs_f64()
        ));
    }
    Ok(out)
}
