//! The only place where gopack runs child processes.
//!
//! Commands are argument vectors (never shell strings). Output either comes
//! back as a string ([`Cmd::read`]) or streams line by line to the
//! [`Reporter`] ([`Cmd::stream`]); on failure the error carries the command,
//! its exit status and what it printed.
//!
//! On Linux every child gets SIGKILL when gopack dies, however it dies: a killed
//! gopack leaves no `go build` running and writing.

use crate::error::{Error, Result};
use crate::report::{Event, Reporter};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};

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
        let mut expr = duct::cmd(self.program.as_std_path(), &self.args);
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir.as_std_path());
        }
        for (key, value) in &self.env {
            expr = expr.env(key, value);
        }
        #[cfg(target_os = "linux")]
        {
            expr = expr.before_spawn(die_with_parent);
        }
        expr
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
        let output = self
            .expression()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(|e| self.spawn_error(e))?;
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
        let output = expression
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(|e| self.spawn_error(e))?;
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
        let handle = self
            .expression()
            .stderr_to_stdout()
            .stdin_null()
            .unchecked()
            .reader()
            .map_err(|e| self.spawn_error(e))?;
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
        if !output.status.success() {
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
                status: output.status.to_string(),
                output: shown,
                help: self.help.clone(),
            });
        }
        Ok(())
    }
}

impl Cmd {
    /// Runs the command attached to gopack's own terminal (stdin, stdout and
    /// stderr inherited) and returns its exit code (`None` when a signal
    /// killed it). Ctrl-C and SIGTERM reach the child (the terminal's process
    /// group, or the child's own signal forwarding): gopack waits for it
    /// instead of dying first, so the child's exit code is what gopack gives.
    pub fn interactive(&self) -> Result<Option<i32>> {
        let _signals = ForwardedSignals::install();
        let output = self
            .expression()
            .unchecked()
            .run()
            .map_err(|e| self.spawn_error(e))?;
        Ok(output.status.code())
    }
}

/// While alive, SIGINT and SIGTERM do not end gopack (a handler that does
/// nothing; unlike an ignored signal, a handler is not inherited by the child).
struct ForwardedSignals {
    #[cfg(unix)]
    old: [(libc::c_int, libc::sigaction); 2],
}

#[cfg(unix)]
extern "C" fn ignore_signal(_: libc::c_int) {}

impl ForwardedSignals {
    #[cfg(unix)]
    fn install() -> ForwardedSignals {
        let signals = [libc::SIGINT, libc::SIGTERM];
        // SAFETY: sigaction with a zeroed struct, an empty mask and a handler
        // that does nothing (async-signal-safe); the old actions are kept and
        // restored on drop.
        unsafe {
            let mut old: [(libc::c_int, libc::sigaction); 2] = std::mem::zeroed();
            for (i, signal) in signals.iter().enumerate() {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut action.sa_mask);
                action.sa_flags = libc::SA_RESTART;
                old[i].0 = *signal;
                libc::sigaction(*signal, &action, &mut old[i].1);
            }
            ForwardedSignals { old }
        }
    }

    #[cfg(not(unix))]
    fn install() -> ForwardedSignals {
        ForwardedSignals {}
    }
}

impl Drop for ForwardedSignals {
    fn drop(&mut self) {
        #[cfg(unix)]
        for (signal, action) in &self.old {
            // SAFETY: restores the action saved by `install`.
            unsafe {
                libc::sigaction(*signal, action, std::ptr::null_mut());
            }
        }
    }
}

/// Whether gopack's standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// Asks the kernel to kill the child when gopack's spawning thread ends.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut std::process::Command) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the hook calls only async-signal-safe functions
    // (prctl, getppid, _exit) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
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
