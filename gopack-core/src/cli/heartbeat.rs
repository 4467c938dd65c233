//! While `go build` runs and stderr is no terminal (a CI log, `--json`), a
//! line every [`EVERY`]: `still building api linux/amd64 (20 s)`, or a
//! `progress` event, so that a log shows the run is alive. A terminal gets
//! the redrawn elapsed-time line instead (see `elapsed`).

use crate::report::Event;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often a running step says it still runs.
pub const EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    /// The running step's app and platform, and its start.
    step: Option<(String, String, Instant)>,
    /// Bumped when a step starts or ends, so a sleeping ticker wakes and ends.
    generation: u64,
}

/// The heartbeat of one console; `print` gets each beat.
#[derive(Clone, Default)]
pub struct Heartbeat {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl std::fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Heartbeat")
    }
}

impl Heartbeat {
    /// Starts beating for `app` `platform`; each beat is a
    /// [`Event::Progress`] handed to `print`.
    pub fn start(&self, app: String, platform: String, print: impl Fn(Event) + Send + 'static) {
        let generation = {
            let mut state = self.lock();
            state.step = Some((app, platform, Instant::now()));
            state.generation += 1;
            state.generation
        };
        self.shared.1.notify_all();
        let shared = Arc::clone(&self.shared);
        std::thread::spawn(move || beat(&shared, generation, print));
    }

    /// Stops the running step's beats.
    pub fn stop(&self) {
        let mut state = self.lock();
        if state.step.take().is_some() {
            state.generation += 1;
        }
        drop(state);
        self.shared.1.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn beat(shared: &(Mutex<State>, Condvar), generation: u64, print: impl Fn(Event)) {
    let (lock, wake) = shared;
    let mut beats: u32 = 0;
    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let Some((_, _, start)) = &state.step else {
            return;
        };
        if state.generation != generation {
            return;
        }
        let next = EVERY * (beats + 1);
        let wait = next.saturating_sub(start.elapsed());
        state = wake
            .wait_timeout(state, wait)
            .map(|(s, _)| s)
            .unwrap_or_else(|e| e.into_inner().0);
        if state.generation != generation {
            return;
        }
        if let Some((app, platform, start)) = &state.step {
            if start.elapsed() >= next {
                beats += 1;
                print(Event::Progress {
                    app: app.clone(),
                    platform: platform.clone(),
                    step: "go-build".into(),
                    seconds: start.elapsed().as_secs(),
                });
            }
        }
    }
}
