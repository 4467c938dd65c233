//! The one error type of gopack-core.
//!
//! Every variant carries what a user needs to act: the file, the key, the tool or
//! the command, what went wrong, and a `help:` line that says what to do.

use camino::Utf8PathBuf;

/// Result alias used across gopack-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in gopack-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value in `[workspace.metadata.gopack]` is invalid.
    #[error("{manifest}: `{key}`: {message}\nhelp: {help}")]
    Config {
        manifest: Utf8PathBuf,
        key: String,
        message: String,
        help: String,
    },

    /// A command line value is invalid.
    #[error("{flag}: {message}\nhelp: {help}")]
    Flag {
        flag: String,
        message: String,
        help: String,
    },

    /// An app named on the command line is not configured.
    #[error("unknown app `{name}` in {manifest}; known apps: {known}\nhelp: {suggestion}name one of the apps listed in [[workspace.metadata.gopack.apps]], or add `{name}` there")]
    UnknownApp {
        name: String,
        manifest: Utf8PathBuf,
        known: String,
        /// "did you mean `x`? " or empty.
        suggestion: String,
    },

    /// A tool gopack shells out to could not be found.
    #[error("`{tool}` was not found\nhelp: {help}")]
    ToolMissing { tool: String, help: String },

    /// A child process could not be started or failed.
    #[error("`{command}` failed: {status}\n{}help: {help}", fence(.output))]
    Command {
        command: String,
        status: String,
        output: String,
        help: String,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {action}: {source}")]
    Io {
        path: Utf8PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// A file or image has content gopack cannot use.
    #[error("{path}: {message}\nhelp: {help}")]
    Invalid {
        path: String,
        message: String,
        help: String,
    },

    /// Reading the workspace with `cargo metadata` failed.
    #[error("could not read the cargo workspace: {message}\nhelp: run gopack from inside a cargo workspace, or pass --manifest-path")]
    Metadata {
        /// What `cargo metadata` said.
        message: String,
    },
}

/// Where the help line starts in every variant's text.
const HELP: &str = "\nhelp: ";

/// Shows a child's output between fences so it stands apart from gopack's words.
fn fence(output: &str) -> String {
    let output = output.trim_end();
    if output.is_empty() {
        return String::new();
    }
    format!("---\n{output}\n---\n")
}

impl Error {
    /// A stable name of the kind of error, for scripts and CI (`--json` prints it
    /// as the error event's `code`): `config`, `flag`, `unknown-app`,
    /// `tool-missing`, `command-failed`, `io`, `invalid`, `metadata`. A new
    /// variant gets a new code; a code never changes meaning.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::Flag { .. } => "flag",
            Error::UnknownApp { .. } => "unknown-app",
            Error::ToolMissing { .. } => "tool-missing",
            Error::Command { .. } => "command-failed",
            Error::Io { .. } => "io",
            Error::Invalid { .. } => "invalid",
            Error::Metadata { .. } => "metadata",
        }
    }

    /// What went wrong, without the `help:` line.
    pub fn message(&self) -> String {
        let text = self.to_string();
        match text.rsplit_once(HELP) {
            Some((message, _)) => message.to_string(),
            None => text,
        }
    }

    /// What to do about it: the `help:` line's text.
    pub fn help(&self) -> String {
        match self {
            Error::Io { .. } => {
                "check that the path exists, that gopack may read and write there, and that the disk has room".into()
            }
            _ => {
                let text = self.to_string();
                text.rsplit_once(HELP)
                    .map(|(_, help)| help.to_string())
                    .unwrap_or_default()
            }
        }
    }

    /// An I/O error on `path` while doing `action` ("read", "create", ...).
    pub fn io(path: impl Into<Utf8PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

/// Attaches a path and an action to `std::io::Result`s.
pub trait IoContext<T> {
    /// Turns an I/O error into [`Error::Io`] naming `path`.
    fn at(self, path: impl Into<Utf8PathBuf>, action: &'static str) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<Utf8PathBuf>, action: &'static str) -> Result<T> {
        self.map_err(|e| Error::io(path, action, e))
    }
}
