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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_code_a_message_and_help() {
        let errors = [
            Error::Config {
                manifest: "Cargo.toml".into(),
                key: "apps[0].nme".into(),
                message: "unknown field".into(),
                help: "did you mean `name`?\nsee the docs".into(),
            },
            Error::UnknownApp {
                name: "helo".into(),
                manifest: "Cargo.toml".into(),
                known: "hello".into(),
                suggestion: "did you mean `hello`? ".into(),
            },
            Error::Command {
                command: "go build".into(),
                status: "exit status: 1".into(),
                output: "main.go:1: syntax error\nhelp: not gopack's".into(),
                help: "fix the Go error".into(),
            },
            Error::io("target/x", "write", std::io::Error::other("disk full")),
            Error::Metadata {
                message: "no Cargo.toml".into(),
            },
        ];
        let codes: Vec<&str> = errors.iter().map(Error::code).collect();
        assert_eq!(
            codes,
            ["config", "unknown-app", "command-failed", "io", "metadata"]
        );
        for err in &errors {
            assert!(
                !err.message().contains(&format!("help: {}", err.help())),
                "{err}"
            );
            assert!(!err.help().is_empty(), "{err}");
        }
        assert_eq!(errors[0].help(), "did you mean `name`?\nsee the docs");
        assert!(errors[1].help().starts_with("did you mean `hello`? "));
        // The child's own "help:" stays in the message; gopack's help is the last one.
        assert!(errors[2]
            .message()
            .contains("syntax error\nhelp: not gopack's"));
        assert_eq!(errors[2].help(), "fix the Go error");
    }
}
