//! Progress reporting: the library never prints, it tells a [`Reporter`].
//!
//! The CLI implements the trait (plain lines, or JSON lines with `--json`);
//! tests implement it to observe what a run did — a cache hit is an event,
//! not a guess from timing.

use serde::Serialize;
use std::sync::Mutex;

/// What happened during a run, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// Dependencies of an app were downloaded (`go mod download`) for a new deps key.
    DepsDownload { app: String, key: String },
    /// The deps key was already in the cache: no download ran.
    DepsCached { app: String, key: String },
    /// `go build` is running for one platform.
    GoBuild { app: String, platform: String },
    /// The binary came from the cache: no `go build` ran.
    BinaryCached {
        app: String,
        platform: String,
        key: String,
    },
    /// A binary is ready at `path`.
    BinaryReady {
        app: String,
        platform: String,
        path: String,
        cached: bool,
    },
    /// The loader and shared libraries a `cgo = "dynamic"` binary needs, put
    /// into its image (shown with `--verbose`).
    Libraries {
        app: String,
        platform: String,
        libraries: Vec<String>,
    },
    /// A layer was written (compressed) or reused from the cache.
    Layer {
        app: String,
        platform: String,
        role: String,
        digest: String,
        size: u64,
        cached: bool,
    },
    /// An image for an app is complete.
    ImageReady {
        app: String,
        digest: String,
        layout: String,
        archive: String,
    },
    /// An image was loaded into the docker engine.
    Loaded { app: String, tags: Vec<String> },
    /// An image was pushed to a registry.
    Pushed { app: String, reference: String },
    /// A line a child process (go, docker) wrote.
    Output { tool: String, line: String },
    /// A cache entry (`kind`: `binary`, `layer` or `deps-image`) came from the
    /// cache registry: `size` bytes downloaded and checked in `millis` ms.
    CacheRemoteHit {
        app: String,
        kind: String,
        key: String,
        size: u64,
        millis: u64,
    },
    /// The cache registry has no entry for the key: it is built here.
    CacheRemoteMiss {
        app: String,
        kind: String,
        key: String,
    },
    /// A new cache entry was sent to the cache registry (`size` bytes of blobs,
    /// those the registry already had included) in `millis` ms.
    CacheRemotePush {
        app: String,
        kind: String,
        key: String,
        size: u64,
        millis: u64,
    },
    /// The run's use of the cache registry: entries taken from it, asked for
    /// and not found, and pushed.
    CacheRemoteSummary {
        registry: String,
        hits: u64,
        misses: u64,
        pushed: u64,
    },
    /// A long step (`step`: `go-build`) still runs after `seconds`: sent every
    /// few seconds by the CLI when stderr is no terminal, so a log shows
    /// the run is alive.
    Progress {
        app: String,
        platform: String,
        step: String,
        seconds: u64,
    },
    /// Something worth knowing that is not an error.
    Note { message: String },
    /// Something the user should look at: the run goes on.
    Warning { message: String },
    /// The run failed: an [`crate::Error`] (its [`crate::Error::code`]), or
    /// `checks-failed` when an image fails verify (with verify's report).
    Error {
        code: String,
        message: String,
        help: String,
        /// Verify's report of the image that failed, as `verify --json` prints it.
        #[serde(skip_serializing_if = "Option::is_none")]
        report: Option<serde_json::Value>,
        /// What a person reads above the error (verify's table); not in the JSON.
        #[serde(skip)]
        text: String,
    },
}

impl Event {
    /// The event of an error that ends a run.
    pub fn error(err: &crate::Error) -> Event {
        Event::Error {
            code: err.code().to_string(),
            message: err.message(),
            help: err.help(),
            report: None,
            text: String::new(),
        }
    }
}

/// Receives [`Event`]s. Implementations must be cheap and must not fail.
pub trait Reporter: Sync {
    /// Called once per event.
    fn report(&self, event: Event);

    /// Whether the user sees [`Event::Output`] lines as they come. When true, an
    /// error of a streamed command does not repeat them.
    fn shows_output(&self) -> bool {
        false
    }
}

/// Drops every event.
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event) {}
}

/// Keeps every event, for tests and embedders that inspect a run afterwards.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Reporter for Recorder {
    fn report(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}
