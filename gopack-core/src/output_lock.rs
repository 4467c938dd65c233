//! One writer per output: a run that writes an app's outputs
//! (`<target>/gopack/<app>/`: binaries, layout, archive) holds an exclusive lock
//! on `<target>/gopack/<app>/.lock` (`flock`, released by the kernel when the
//! process ends, however it ends). Concurrent runs of one app wait their turn;
//! the cache takes no lock.
//!
//! Holding the lock, a run knows that every `.tmp-*` left in the app's folder
//! belongs to a run that has ended, and removes it.

use crate::error::{IoContext, Result};
use crate::report::{Event, Reporter};
use camino::{Utf8Path, Utf8PathBuf};

/// The lock on one app's outputs; released when dropped.
#[derive(Debug)]
pub struct OutputLock {
    _file: std::fs::File,
    dir: Utf8PathBuf,
}

impl OutputLock {
    /// Locks `dir` (created if needed), waiting for another run that holds it,
    /// then sweeps what killed runs left there.
    pub fn acquire(dir: &Utf8Path, reporter: &dyn Reporter) -> Result<OutputLock> {
        std::fs::create_dir_all(dir).at(dir, "create")?;
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path, "open the lock file")?;
        use rustix::fs::{flock, FlockOperation};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                reporter.report(Event::Note {
                    message: format!("waiting for another gopack run that writes {dir}"),
                });
                flock(&file, FlockOperation::LockExclusive)
                    .map_err(std::io::Error::from)
                    .at(&path, "lock")?;
            }
            Err(e) => return Err(std::io::Error::from(e)).at(&path, "lock"),
        }
        let lock = OutputLock {
            _file: file,
            dir: dir.to_path_buf(),
        };
        lock.sweep();
        crate::process::remove_temps_on_interrupt(dir, true);
        Ok(lock)
    }

    /// Removes `.tmp-*` files and folders in the app's folder and its binary
    /// folders: with the lock held, no live run owns them.
    fn sweep(&self) {
        let mut folders = vec![self.dir.clone()];
        if let Ok(platforms) = self.dir.join("bin").read_dir_utf8() {
            folders.extend(platforms.flatten().map(|e| e.path().to_path_buf()));
        }
        for folder in folders {
            let Ok(entries) = folder.read_dir_utf8() else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_name().starts_with(".tmp-") {
                    continue;
                }
                let path = entry.path();
                let _ = match entry.file_type() {
                    Ok(t) if t.is_dir() => std::fs::remove_dir_all(path),
                    _ => std::fs::remove_file(path),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Silent;

    #[test]
    fn one_holder_at_a_time_and_leftovers_swept() {
        let temp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(temp.path()).unwrap().join("app");
        std::fs::create_dir_all(dir.join(".tmp-layout-x/blobs")).unwrap();
        std::fs::create_dir_all(dir.join("bin/linux_amd64")).unwrap();
        std::fs::write(dir.join("bin/linux_amd64/.tmp-abc"), b"half").unwrap();
        std::fs::write(dir.join(".tmp-old-123"), b"").unwrap();
        std::fs::create_dir_all(dir.join("oci")).unwrap();
        let lock = OutputLock::acquire(&dir, &Silent).unwrap();
        let mut left: Vec<String> = walk(&dir);
        left.sort();
        assert_eq!(left, [".lock", "bin", "bin/linux_amd64", "oci"]);
        // A second holder (another open file, as another process has) must wait.
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(".lock"))
            .unwrap();
        use rustix::fs::{flock, FlockOperation::NonBlockingLockExclusive};
        assert_eq!(
            flock(&other, NonBlockingLockExclusive),
            Err(rustix::io::Errno::WOULDBLOCK)
        );
        drop(lock);
        flock(&other, NonBlockingLockExclusive).unwrap();
    }

    fn walk(dir: &Utf8Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in dir.read_dir_utf8().unwrap().flatten() {
            let name = entry.file_name().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.extend(
                    walk(entry.path())
                        .into_iter()
                        .map(|n| format!("{name}/{n}")),
                );
            }
            out.push(name);
        }
        out
    }
}
