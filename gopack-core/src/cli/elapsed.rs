//! While a long step runs (`go build`), a terminal shows that it runs and
//! for how long: one status line, redrawn every second once the step has
//! taken more than a second, erased before anything else is printed.
//! Nothing of this reaches a pipe or a log file.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a step runs before its elapsed time is shown.
const SHOW_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// The running step's label and start, if one runs.
    step: Option<(String, Instant)>,
    /// Whether a status line is on screen (to be erased).
    drawn: bool,
    /// Bumped when a step starts or ends, so a sleeping ticker wakes.
    generation: u64,
}

/// The elapsed-time line of one terminal (stderr).
#[derive(Clone, Default)]
pub struct Elapsed {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl std::fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Elapsed")
    }
}

impl Elapsed {
    /// Starts showing `label` with its elapsed time, after a second.
    pub fn start(&self, label: String) {
        let generation = {
            let mut state = self.lock();
            state.step = Some((label, Instant::now()));
            state.generation += 1;
            state.generation
        };
        self.shared.1.notify_all();
        let shared = Arc::clone(&self.shared);
        std::thread::spawn(move || tick(&shared, generation));
    }

    /// Stops the running step's line.
    pub fn stop(&self) {
        let mut state = self.lock();
        if state.step.take().is_some() {
            state.generation += 1;
        }
        erase(&mut state);
        drop(state);
        self.shared.1.notify_all();
    }

    /// Prints `text` (a whole line) on stderr, keeping the status line below it.
    pub fn print(&self, text: &str) {
        let mut state = self.lock();
        erase(&mut state);
        let _ = writeln!(std::io::stderr(), "{text}");
        if let Some((label, start)) = &state.step {
            if start.elapsed() >= SHOW_AFTER {
                let line = status_line(label, start.elapsed());
                draw(&mut state, &line);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn tick(shared: &(Mutex<State>, Condvar), generation: u64) {
    let (lock, wake) = shared;
    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let Some((_, start)) = &state.step else {
            return;
        };
        if state.generation != generation {
            return;
        }
        let elapsed = start.elapsed();
        let wait = if elapsed < SHOW_AFTER {
            SHOW_AFTER - elapsed
        } else {
            Duration::from_secs(1) - Duration::from_nanos(elapsed.subsec_nanos() as u64)
        };
        state = wake
            .wait_timeout(state, wait)
            .map(|(s, _)| s)
            .unwrap_or_else(|e| e.into_inner().0);
        if state.generation != generation {
            return;
        }
        if let Some((label, start)) = &state.step {
            if start.elapsed() >= SHOW_AFTER {
                let line = status_line(label, start.elapsed());
                draw(&mut state, &line);
            }
        }
    }
}

fn status_line(label: &str, elapsed: Duration) -> String {
    format!("{:>12} {label} ({}s)", "Building", elapsed.as_secs())
}

fn draw(state: &mut State, line: &str) {
    let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
    let _ = std::io::stderr().flush();
    state.drawn = true;
}

fn erase(state: &mut State) {
    if state.drawn {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
        state.drawn = false;
    }
}
