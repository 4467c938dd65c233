//! The terminal [`Reporter`]: cargo-style status lines, or JSON lines.
//!
//! With `--json` every line on stderr is one JSON event (progress, the tools'
//! output, warnings, the error that ended the run); errors print even with
//! `--quiet`. While `go build` runs, a terminal shows its elapsed time; a log
//! (no terminal, or `--json`) gets a line (a `progress` event) every 10 s.

use super::elapsed::Elapsed;
use super::heartbeat::Heartbeat;
use crate::report::{Event, Reporter};
use std::io::{IsTerminal, Write};

/// Prints events on stderr.
#[derive(Debug, Clone)]
pub struct Console {
    json: bool,
    quiet: bool,
    verbose: bool,
    /// The elapsed time of a running `go build`, on a terminal only.
    elapsed: Option<Elapsed>,
    /// "still building" lines of a running `go build`, when stderr is no terminal.
    heartbeat: Option<Heartbeat>,
}

impl Console {
    /// A console printing JSON lines when `json`, nothing when `quiet` (errors
    /// still carry the tools' output).
    pub fn new(json: bool, quiet: bool) -> Self {
        let terminal = !json && !quiet && std::io::stderr().is_terminal();
        Console {
            json,
            quiet,
            verbose: false,
            elapsed: terminal.then(Elapsed::default),
            heartbeat: (!terminal && (json || !quiet)).then(Heartbeat::default),
        }
    }

    /// Also prints the details shown only with `--verbose`.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    fn line(&self, text: &str) {
        match &self.elapsed {
            Some(elapsed) => elapsed.print(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }
}

impl Drop for Console {
    /// A run that ends with an error leaves no status line for the error to follow.
    fn drop(&mut self) {
        if let Some(elapsed) = &self.elapsed {
            elapsed.stop();
        }
        if let Some(heartbeat) = &self.heartbeat {
            heartbeat.stop();
        }
    }
}

/// The text line of a `progress` event.
fn progress_line(event: &Event) -> Option<String> {
    match event {
        Event::Progress {
            app,
            platform,
            seconds,
            ..
        } => Some(format!(
            "{:>12} {app} {platform}: still building ({seconds} s)",
            "Building"
        )),
        _ => None,
    }
}

impl Reporter for Console {
    fn shows_output(&self) -> bool {
        !self.json && !self.quiet
    }

    fn report(&self, event: Event) {
        if let Some(heartbeat) = &self.heartbeat {
            match &event {
                Event::GoBuild { app, platform } => {
                    let json = self.json;
                    heartbeat.start(app.clone(), platform.clone(), move |beat| {
                        let line = if json {
                            serde_json::to_string(&beat).ok()
                        } else {
                            progress_line(&beat)
                        };
                        if let Some(line) = line {
                            let _ = writeln!(std::io::stderr(), "{line}");
                        }
                    });
                }
                Event::Output { .. } | Event::Note { .. } | Event::Progress { .. } => {}
                _ => heartbeat.stop(),
            }
        }
        if self.json {
            if let Ok(line) = serde_json::to_string(&event) {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            return;
        }
        if let Event::Error {
            message,
            help,
            text: above,
            ..
        } = &event
        {
            if let Some(elapsed) = &self.elapsed {
                elapsed.stop();
            }
            let mut text = above.clone();
            text.push_str(&format!("error: {message}"));
            if !help.is_empty() {
                text.push_str(&format!("\nhelp: {help}"));
            }
            let _ = writeln!(std::io::stderr(), "{text}");
            return;
        }
        if self.quiet {
            return;
        }
        if let Event::Output { line, .. } = &event {
            self.line(line);
            return;
        }
        if let Some(elapsed) = &self.elapsed {
            match &event {
                Event::GoBuild { app, platform } => {
                    elapsed.start(format!("{app} {platform}"));
                }
                Event::Note { .. } => {}
                _ => elapsed.stop(),
            }
        }
        let status = |word: &str, text: &str| self.line(&format!("{word:>12} {text}"));
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
                // A person needs only enough of the digest to tell layers apart.
                let hex = digest.trim_start_matches("sha256:");
                let digest = hex.get(..12).unwrap_or(hex);
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
            Event::CacheRemoteHit {
                app,
                kind,
                key,
                size,
                millis,
            } => status(
                "Downloaded",
                &format!("{app} {kind} {key} from the cache registry ({size} bytes, {millis} ms)"),
            ),
            Event::CacheRemoteMiss { .. } => {}
            Event::CacheRemotePush {
                app,
                kind,
                key,
                size,
                millis,
            } => status(
                "Shared",
                &format!("{app} {kind} {key} to the cache registry ({size} bytes, {millis} ms)"),
            ),
            Event::CacheRemoteSummary {
                registry,
                hits,
                misses,
                pushed,
            } => status(
                "Cache",
                &format!("{hits} entries from {registry}, {misses} not there, {pushed} pushed"),
            ),
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
            Event::Progress { .. } => {
                if let Some(line) = progress_line(&event) {
                    self.line(&line);
                }
            }
            Event::Output { .. } | Event::Error { .. } => {}
        }
    }
}
