//! SIGINT and SIGTERM: a run that is told to stop stops its children, removes
//! its temporary files and exits with 128 + the signal (130, 143).
//!
//! The handler only stores the signal's number and wakes a thread through a
//! socket pair (signal-hook's self-pipe); that thread does the work, outside
//! the signal context:
//! - while an [interactive](super::Cmd::interactive) child runs (`cargo xtask
//!   run`'s `docker run`), the signal is passed on to it and gopack waits for
//!   its exit code;
//! - otherwise every running child's process group gets SIGTERM, then
//!   SIGKILL after [`GRACE`]; the `.tmp-*` files this process made in the
//!   folders registered with [`remove_temps_on_interrupt`] are removed; and the
//!   process exits.
//!
//! A child started after the signal is refused ([`stopping`]).

use camino::{Utf8Path, Utf8PathBuf};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// How long children get to end after SIGTERM before they get SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// The last signal received (0: none).
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
/// Set once the run is stopping: no child is started any more.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// Process ids of the running children that are leaders of their own group.
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Process ids of the running interactive children, which get the signal itself.
static FORWARD: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Folders whose `.tmp-*` files are removed on a signal, and whether all of
/// them (an output folder this run has locked) or only this process's.
static TEMP_FOLDERS: Mutex<Vec<(Utf8PathBuf, bool)>> = Mutex::new(Vec::new());

/// Whether this run received SIGINT or SIGTERM and is stopping.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// When the run is stopping, never returns: the signal thread ends the
/// process (130 or 143) once it has stopped the children and removed the
/// temporary files, so the errors of the children it stopped are not
/// reported as the run's own, nor is its exit code replaced by theirs.
pub fn wait_if_stopping() {
    while stopping() {
        std::thread::park_timeout(std::time::Duration::from_secs(1));
    }
}

/// The prefix of this process's temporary files: `.tmp-<pid>-`.
pub fn temp_prefix() -> String {
    format!(".tmp-{}-", std::process::id())
}

/// On a signal, remove the `.tmp-*` files in `folder`: all of them when
/// `all` (a folder only this run writes, under its lock), else only those of
/// this process ([`temp_prefix`]).
pub fn remove_temps_on_interrupt(folder: &Utf8Path, all: bool) {
    let mut folders = lock(&TEMP_FOLDERS);
    if !folders.iter().any(|(f, a)| f == folder && *a == all) {
        folders.push((folder.to_path_buf(), all));
    }
}

/// Installs the handlers of SIGINT and SIGTERM (once; later calls do
/// nothing). Done by the CLI's `main`; a host program that handles signals
/// itself need not call it.
pub fn handle_signals() -> std::io::Result<()> {
    static INSTALL: Once = Once::new();
    let mut result = Ok(());
    INSTALL.call_once(|| result = install());
    result
}

#[cfg(unix)]
fn install() -> std::io::Result<()> {
    let (mut receiver, sender) = std::os::unix::net::UnixStream::pair()?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        signal_hook::flag::register_usize(signal, &RECEIVED, signal as usize)?;
        signal_hook::low_level::pipe::register(signal, sender.try_clone()?)?;
    }
    std::thread::Builder::new()
        .name("gopack-signals".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            while matches!(receiver.read(&mut byte), Ok(1)) {
                on_signal(RECEIVED.load(Ordering::SeqCst) as i32);
            }
        })?;
    Ok(())
}

#[cfg(not(unix))]
fn install() -> std::io::Result<()> {
    Ok(())
}

fn on_signal(signal: i32) {
    let forward = lock(&FORWARD).clone();
    if !forward.is_empty() {
        for pid in forward {
            send(pid as i32, signal);
        }
        return;
    }
    STOPPING.store(true, Ordering::SeqCst);
    stop_groups(&lock(&GROUPS).clone());
    let prefix = temp_prefix();
    for (folder, all) in lock(&TEMP_FOLDERS).iter() {
        remove_temps(folder, if *all { ".tmp-" } else { &prefix });
    }
    std::process::exit(128 + signal);
}

/// SIGTERM to each group, SIGKILL to those still there after [`GRACE`].
fn stop_groups(groups: &[u32]) {
    for pid in groups {
        send(-(*pid as i32), libc::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && groups.iter().any(|pid| alive(-(*pid as i32))) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in groups {
        send(-(*pid as i32), libc::SIGKILL);
    }
}

fn remove_temps(folder: &Utf8Path, prefix: &str) {
    let Ok(entries) = folder.read_dir_utf8() else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().starts_with(prefix) {
            continue;
        }
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(entry.path()),
            _ => std::fs::remove_file(entry.path()),
        };
    }
}

fn send(pid: i32, signal: i32) {
    if pid == 0 || pid == -1 {
        return;
    }
    #[cfg(unix)]
    // SAFETY: kill(2) has no memory effects; pid is a child or a child's group.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn alive(pid: i32) -> bool {
    #[cfg(unix)]
    // SAFETY: kill(2) with signal 0 only checks that the target exists.
    unsafe {
        libc::kill(pid, 0) == 0
    }
    #[cfg(not(unix))]
    false
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Running children in groups of their own, stopped on a signal; they are
/// forgotten when this is dropped (after the children were waited for).
pub(super) struct Children(Vec<u32>);

impl Children {
    pub(super) fn register(pids: Vec<u32>) -> Children {
        lock(&GROUPS).extend(&pids);
        Children(pids)
    }

    /// Stops the children's groups now (SIGKILL).
    pub(super) fn kill(&self) {
        for pid in &self.0 {
            send(-(*pid as i32), libc::SIGKILL);
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        lock(&GROUPS).retain(|pid| !self.0.contains(pid));
    }
}

/// Running interactive children, which receive SIGINT and SIGTERM themselves.
pub(super) struct Forwarding(Vec<u32>);

impl Forwarding {
    pub(super) fn register(pids: Vec<u32>) -> Forwarding {
        RECEIVED.store(0, Ordering::SeqCst);
        lock(&FORWARD).extend(&pids);
        Forwarding(pids)
    }

    /// The signal passed on to the child, if one was.
    pub(super) fn received(&self) -> Option<i32> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal as i32),
        }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        lock(&FORWARD).retain(|pid| !self.0.contains(pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temps_of_this_process_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(dir.path()).unwrap();
        let mine = dir.join(format!("{}abc", temp_prefix()));
        let other = dir.join(".tmp-1-abc");
        let entry = dir.join("entry");
        for path in [&mine, &other, &entry] {
            std::fs::write(path, b"x").unwrap();
        }
        remove_temps(dir, &temp_prefix());
        assert!(!mine.exists() && other.exists() && entry.exists());
        remove_temps(dir, ".tmp-");
        assert!(!other.exists() && entry.exists());
    }
}
