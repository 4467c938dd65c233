//! The only place where gopack runs child processes.
//!
//! Commands are argument vectors (never shell strings). Output either comes
//! back as a string ([`Cmd::read`]) or streams line by line to the
//! [`Reporter`] ([`Cmd::stream`]); on failure the error carries the command,
//! its exit status and what it printed.
//!
//! On Linux every child gets SIGKILL when gopack dies, however it dies: a killed
//! gopack leaves no `go build` running and writing. Each child (but an
//! [interactive](Cmd::interactive) one) runs in its own process group, so
//! stopping it stops what it started too (`go build`'s compilers, a script's
//! `sleep`).
//!
//! Every child whose output gopack waits for has a time limit ([`Cmd::query`]
//! for quick questions such as `go version`, [`LONG_TIMEOUT`] for the rest of
//! [`Cmd::read`] and [`Cmd::output`]); builds streamed with [`Cmd::stream`] may
//! take as long as they take. SIGINT and SIGTERM are handled once
//! [`handle_signals`] ran: see [`crate::process::signals`].

use crate::error::{Error, Result};
use crate::report::{Event, Reporter};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

pub mod signals;
pub use signals::{handle_signals, remove_temps_on_interrupt, wait_if_stopping};

/// The limit of a [`Cmd::read`] or [`Cmd::output`] that sets none: bounded,
/// but long enough for `docker save`, `docker load` or a push of a large image.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The default limit of a [`Cmd::query`] (`go version`, `git log`, `docker
/// image inspect`, a credential helper); `GOPACK_TOOL_TIMEOUT` (seconds) sets another.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether `err` is a child stopped at its time limit (as opposed to one
/// that could not start or failed).
pub fn timed_out(err: &Error) -> bool {
    matches!(err, Error::Command { status, .. } if status.ends_with(STOPPED))
}

/// The end of the status of a child stopped at its time limit.
const STOPPED: &str = "and was stopped";

/// The limit of a quick question to a tool: `GOPACK_TOOL_TIMEOUT` seconds, else [`QUERY_TIMEOUT`].
pub fn query_timeout() -> Duration {
    crate::environment::var("GOPACK_TOOL_TIMEOUT")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs > 0.0 && *secs < 1e9)
        .map(Duration::from_secs_f64)
        .unwrap_or(QUERY_TIMEOUT)
}

/// How many lines of a failed command's output the error keeps.
const KEPT_LINES: usize = 60;

/// What a finished child left: its exit code (`None` when killed by a signal) and output.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A command to run: program, arguments, environment and working folder.
#[derive(Debug, Clone)]
pub struct Cmd {
    tool: String,
    program: Utf8PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    dir: Option<Utf8PathBuf>,
    help: String,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

impl Cmd {
    /// A command running `program`, reported under the name `tool`.
    pub fn new(tool: &str, program: impl Into<Utf8PathBuf>) -> Self {
        Cmd {
            tool: tool.to_string(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            help: format!("see the output of `{tool}` above"),
            stdin: None,
            timeout: None,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable for the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the child in `dir`.
    pub fn dir(mut self, dir: impl AsRef<Utf8Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// What [`Cmd::output`] writes to the child's standard input (default: nothing).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The time [`Cmd::read`] or [`Cmd::output`] waits before the child (and
    /// what it started) is stopped and the run fails naming the tool.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// A quick question to a tool (a version, an inspect, a credential):
    /// limited to [`query_timeout`].
    pub fn query(self) -> Self {
        self.timeout(query_timeout())
    }

    /// The `help:` line of the error when the command fails.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// The command as a user would type it, for messages.
    pub fn display(&self) -> String {
        let mut text = self.tool.clone();
        for arg in &self.args {
            let arg = arg.to_string_lossy();
            if arg.is_empty() || arg.contains([' ', '"', '\'']) {
                text.push_str(&format!(" {arg:?}"));
            } else {
                text.push(' ');
                text.push_str(&arg);
            }
        }
        text
    }

    fn expression(&self) -> duct::Expression {
        self.expression_in(true)
    }

    /// The duct expression; `own_group` puts the child in a process group of
    /// its own, so that stopping the group stops its children too.
    fn expression_in(&self, own_group: bool) -> duct::Expression {
        let mut expr = duct::cmd(self.program.as_std_path(), &self.args);
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir.as_std_path());
        }
        for (key, value) in &self.env {
            expr = expr.env(key, value);
        }
        #[cfg(target_os = "linux")]
        {
            expr = expr.before_spawn(move |cmd| die_with_parent(cmd, own_group));
        }
        #[cfg(not(target_os = "linux"))]
        let _ = own_group;
        expr
    }

    fn interrupted_error(&self) -> Error {
        Error::Command {
            command: self.display(),
            status: "not started: gopack is stopping on a signal".into(),
            output: String::new(),
            help: "run the command again".into(),
        }
    }

    /// Starts the expression with captured output, waits for it within the
    /// command's limit, and stops the child's whole group when it runs over.
    fn run_bounded(&self, expression: duct::Expression) -> Result<std::process::Output> {
        if signals::stopping() {
            return Err(self.interrupted_error());
        }
        let handle = expression
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .start()
            .map_err(|e| self.spawn_error(e))?;
        let children = signals::Children::register(handle.pids());
        let limit = self.timeout.unwrap_or(LONG_TIMEOUT);
        let waited = handle
            .wait_deadline(Instant::now() + limit)
            .map_err(|e| self.spawn_error(e))?
            .cloned();
        let output = match waited {
            Some(output) => output,
            None => {
                children.kill();
                let output = handle.wait().map_err(|e| self.spawn_error(e))?;
                return Err(Error::Command {
                    command: self.display(),
                    status: format!(
                        "`{}` did not finish within {} s {STOPPED}",
                        self.tool,
                        limit.as_secs_f64()
                    ),
                    output: String::from_utf8_lossy(&output.stderr).into_owned(),
                    help: format!(
                        "`{}` ({}) hangs: check that it answers when run by hand; \
                         GOPACK_TOOL_TIMEOUT sets the limit of quick tool questions in seconds",
                        self.tool, self.program
                    ),
                });
            }
        };
        drop(children);
        Ok(output)
    }

    fn spawn_error(&self, err: std::io::Error) -> Error {
        Error::Command {
            command: self.display(),
            status: format!("could not start {}: {err}", self.program),
            output: String::new(),
            help: format!("check that `{}` is installed and executable", self.program),
        }
    }

    /// Runs the command and returns its standard output; stderr goes into the error.
    pub fn read(&self) -> Result<String> {
        let output = self.run_bounded(self.expression().stdin_null())?;
        if !output.status.success() {
            return Err(Error::Command {
                command: self.display(),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
                help: self.help.clone(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs the command to its end and returns its exit code and output, whatever
    /// the exit status; only a child that cannot start is an error.
    pub fn output(&self) -> Result<Captured> {
        let expression = match &self.stdin {
            Some(bytes) => self.expression().stdin_bytes(bytes.clone()),
            None => self.expression().stdin_null(),
        };
        let output = self.run_bounded(expression)?;
        Ok(Captured {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs the command, sending each line it prints (stdout and stderr) to the
    /// reporter as [`Event::Output`].
    pub fn stream(&self, reporter: &dyn Reporter) -> Result<()> {
        self.stream_explained(reporter, |_| None)
    }

    /// [`Cmd::stream`], and when the command fails, `explain` sees the last lines it
    /// printed and may return a clearer error than the generic one.
    pub fn stream_explained(
        &self,
        reporter: &dyn Reporter,
        explain: impl Fn(&str) -> Option<Error>,
    ) -> Result<()> {
        let (status, tail) = self.stream_lines(reporter)?;
        if !status.success() {
            let tail = Vec::from(tail).join("\n");
            if let Some(error) = explain(&tail) {
                return Err(error);
            }
            // What the user already saw scroll by is not printed twice.
            let shown = if reporter.shows_output() {
                String::new()
            } else {
                tail
            };
            return Err(Error::Command {
                command: self.display(),
                status: status.to_string(),
                output: shown,
                help: self.help.clone(),
            });
        }
        Ok(())
    }

    /// [`Cmd::stream`] that returns the child's exit code, whatever it is
    /// (`None` when a signal ended it): for a program whose failure is its
    /// own business (`run --json`'s container), not gopack's error.
    pub fn stream_code(&self, reporter: &dyn Reporter) -> Result<Option<i32>> {
        let (status, _) = self.stream_lines(reporter)?;
        Ok(status.code())
    }

    /// Streams the child's lines to `reporter`; its exit status and last lines.
    fn stream_lines(
        &self,
        reporter: &dyn Reporter,
    ) -> Result<(std::process::ExitStatus, VecDeque<String>)> {
        if signals::stopping() {
            return Err(self.interrupted_error());
        }
        let handle = self
            .expression()
            .stderr_to_stdout()
            .stdin_null()
            .unchecked()
            .reader()
            .map_err(|e| self.spawn_error(e))?;
        let _children = signals::Children::register(handle.pids());
        let mut tail = VecDeque::with_capacity(KEPT_LINES);
        let mut reader = BufReader::new(&handle);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| self.spawn_error(e))?;
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if tail.len() == KEPT_LINES {
                tail.pop_front();
            }
            tail.push_back(text.clone());
            reporter.report(Event::Output {
                tool: self.tool.clone(),
                line: text,
            });
        }
        let output = handle
            .try_wait()
            .map_err(|e| self.spawn_error(e))?
            .expect("the child has exited once its output is closed");
        Ok((output.status, tail))
    }
}

impl Cmd {
    /// Runs the command attached to gopack's own terminal (stdin, stdout and
    /// stderr inherited) and returns its exit code (`None` when a signal
    /// killed it). The child stays in gopack's process group, so Ctrl-C on the
    /// terminal reaches it; a SIGINT or SIGTERM sent to gopack alone is
    /// passed on to it (`docker run` passes it on to the container). gopack
    /// waits for the child instead of dying first: the child's exit code is
    /// what gopack gives, or 128 + the signal when the child exited 0 after one.
    pub fn interactive(&self) -> Result<Option<i32>> {
        let _ = handle_signals();
        if signals::stopping() {
            return Err(self.interrupted_error());
        }
        let handle = self
            .expression_in(false)
            .unchecked()
            .start()
            .map_err(|e| self.spawn_error(e))?;
        let forwarding = signals::Forwarding::register(handle.pids());
        let output = handle.wait().map_err(|e| self.spawn_error(e))?;
        let code = output.status.code();
        Ok(match forwarding.received() {
            Some(signal) if code.unwrap_or(0) == 0 => Some(128 + signal),
            _ => code,
        })
    }
}

/// The cargo gopack asks about the workspace: the cargo that runs us (`cargo
/// xtask` sets `CARGO`), else the one on PATH, so a host's own binary run
/// directly reads the workspace too.
pub fn cargo_program() -> Result<Utf8PathBuf> {
    crate::environment::var("CARGO")
        .filter(|cargo| !cargo.trim().is_empty())
        .map(Utf8PathBuf::from)
        .or_else(|| {
            let found = which::which("cargo").ok()?;
            Utf8PathBuf::from_path_buf(found).ok()
        })
        .ok_or_else(|| Error::Metadata {
            message: "cargo is not on PATH, and CARGO names no cargo: gopack reads the \
                      workspace with `cargo metadata`"
                .into(),
        })
}

/// `cargo metadata --no-deps` by `program` ([`cargo_program`]) for the
/// workspace around the current folder (or `manifest`), run like every other
/// child: through [`Cmd`], stopped with gopack on a signal. cargo's own error
/// text is kept for the message.
pub fn cargo_metadata(
    program: &Utf8Path,
    manifest: Option<&Utf8Path>,
) -> Result<cargo_metadata::Metadata> {
    let mut cmd =
        Cmd::new("cargo", program).args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(path) = manifest {
        cmd = cmd.arg("--manifest-path").arg(path.as_str());
    }
    let out = cmd.output().map_err(|e| Error::Metadata {
        message: e.to_string(),
    })?;
    if out.code != Some(0) {
        return Err(Error::Metadata {
            message: out.stderr.trim_end().to_string(),
        });
    }
    cargo_metadata::MetadataCommand::parse(&out.stdout).map_err(|e| Error::Metadata {
        message: e.to_string(),
    })
}

/// Whether gopack's standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// Asks the kernel to kill the child when gopack's spawning thread ends, and
/// puts the child in a process group of its own when `own_group`.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut std::process::Command, own_group: bool) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the hook calls only async-signal-safe functions
    // (prctl, getppid, setpgid, _exit) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if own_group && libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // gopack died before the request took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_over_its_time_is_stopped_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let started = Instant::now();
        let err = Cmd::new("slow", "/bin/sh")
            .args([
                "-c",
                &format!("sleep 300 & echo $! > {}; wait", pid_file.display()),
            ])
            .timeout(Duration::from_millis(500))
            .read()
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(20), "{err}");
        assert!(
            err.contains("`slow` did not finish within 0.5 s")
                && err.contains("GOPACK_TOOL_TIMEOUT"),
            "{err}"
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        // The group was sent SIGKILL; give the kernel a moment to end it.
        let gone = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "the grandchild outlived the limit");
        // Within its limit, a command answers as before.
        let out = Cmd::new("echo", "/bin/echo")
            .arg("hi")
            .query()
            .read()
            .unwrap();
        assert_eq!(out, "hi\n");
    }
}
