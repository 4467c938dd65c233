//! The terminal [`Reporter`]: cargo-style status lines, or JSON lines.

use crate::report::{Event, Reporter};
use std::io::Write;

/// Prints events on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    json: bool,
    quiet: bool,
    verbose: bool,
}

impl Console {
    /// A console printing JSON lines when `json`, nothing when `quiet` (errors
    /// still carry the tools' output).
    pub fn new(json: bool, quiet: bool) -> Self {
        Console {
            json,
            quiet,
            verbose: false,
        }
    }

    /// Also prints the details shown only with `--verbose`.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }
}

fn status(word: &str, text: &str) {
    let _ = writeln!(std::io::stderr(), "{word:>12} {text}");
}

impl Reporter for Console {
    fn shows_output(&self) -> bool {
        !self.json && !self.quiet
    }

    fn report(&self, event: Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&event) {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            return;
        }
        if self.quiet {
            return;
        }
        if let Event::Output { line, .. } = &event {
            let _ = writeln!(std::io::stderr(), "{line}");
            return;
        }
        match event {
            Event::DepsDownload { app, key } => {
                status("Downloading", &format!("{app} dependencies (go.sum {key})"))
            }
            Event::DepsCached { .. } => {}
            Event::GoBuild { app, platform } => status("Building", &format!("{app} {platform}")),
            Event::BinaryCached { app, platform, .. } => {
                status("Fresh", &format!("{app} {platform}"))
            }
            Event::BinaryReady { .. } => {}
            Event::Layer {
                app,
                platform,
                role,
                digest,
                size,
                cached,
            } => {
                let how = if cached { "Reused" } else { "Layer" };
                status(
                    how,
                    &format!("{app} {platform} {role} {digest} ({size} bytes)"),
                )
            }
            Event::ImageReady {
                app,
                digest,
                archive,
                ..
            } => status("Packed", &format!("{app} {digest} -> {archive}")),
            Event::Loaded { app, tags } => {
                status("Loaded", &format!("{app} as {}", tags.join(", ")))
            }
            Event::Pushed { app, reference } => status("Pushed", &format!("{app} to {reference}")),
            Event::Note { message } => status("Note", &message),
            Event::Libraries {
                app,
                platform,
                libraries,
            } => {
                if self.verbose {
                    status(
                        "Libraries",
                        &format!("{app} {platform}: {} objects", libraries.len()),
                    );
                    for line in libraries {
                        status("", &line);
                    }
                }
            }
            Event::Warning { message } => status("Warning", &message),
            Event::Output { .. } => {}
        }
    }
}
