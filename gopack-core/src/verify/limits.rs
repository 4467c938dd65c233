//! The fixed budgets verify reads an image within: an image is hostile input,
//! and nothing it claims (a size in a tar header, a layer listed 300 times, a
//! gzip of zeros) may make verify allocate or work without bound.
//!
//! [`Limits`] are the knobs (`verify = { limits = { ... } }` in an app's policy,
//! or `verify --limit NAME=VALUE`); a [`Budget`] is what is left of them while
//! one `verify` runs. Readers charge it through [`Metered`]; a spent budget is
//! an I/O error whose text names the limit and how to raise it.

use crate::config::{ByteSize, Limits};
use std::cell::Cell;
use std::io::{self, Read};
use std::time::{Duration, Instant};

/// How a spent budget reads, naming the limit and how to raise it.
pub(crate) fn over(name: &str, what: String, example: &str) -> String {
    format!(
        "{what}: over verify's `{name}` budget; if the image is trusted, raise it with \
         `--limit {name}={example}` or `limits = {{ {name} = ... }}` in the app's verify policy"
    )
}

/// The most bytes a tar reader may take between two entries (headers, long names,
/// PAX records); more is a hostile or broken archive.
const MAX_HEADER_BYTES: u64 = 4 << 20;

/// What is left of the [`Limits`] during one `verify`.
#[derive(Debug)]
pub(crate) struct Budget {
    pub limits: Limits,
    unpacked: Cell<u64>,
    entries: Cell<u64>,
    started: Instant,
    /// Bytes a tar reader took since it was asked for its next entry, while it is.
    header_bytes: Cell<Option<u64>>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(Limits::default())
    }
}

impl Budget {
    /// A full budget; the clock starts now.
    pub(crate) fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            unpacked: Cell::new(0),
            entries: Cell::new(0),
            started: Instant::now(),
            header_bytes: Cell::new(None),
        }
    }

    /// Fails when the time is up.
    pub(crate) fn check_time(&self) -> io::Result<()> {
        let limit = Duration::from_secs(self.limits.max_seconds);
        if self.started.elapsed() > limit {
            return Err(io::Error::other(over(
                "max-seconds",
                format!(
                    "reading the image took more than {} seconds",
                    self.limits.max_seconds
                ),
                &(self.limits.max_seconds * 4).to_string(),
            )));
        }
        Ok(())
    }

    /// Counts one tar entry.
    pub(crate) fn entry(&self) -> io::Result<()> {
        let count = self.entries.get() + 1;
        self.entries.set(count);
        if count > self.limits.max_entries {
            return Err(io::Error::other(over(
                "max-entries",
                format!("more than {} tar entries", self.limits.max_entries),
                &(self.limits.max_entries * 4).to_string(),
            )));
        }
        Ok(())
    }

    /// Fails when a file of `size` bytes is too large to read whole.
    pub(crate) fn file(&self, path: &str, size: u64) -> Result<(), String> {
        let max = self.limits.max_file_size;
        if size > max.0 {
            return Err(over(
                "max-file-size",
                format!(
                    "{path} is {} ({size} bytes), more than {max}",
                    ByteSize(size)
                ),
                &format!("{}MiB", size.div_ceil(1 << 20)),
            ));
        }
        Ok(())
    }

    fn unpacked(&self, n: u64) -> io::Result<()> {
        let total = self.unpacked.get().saturating_add(n);
        self.unpacked.set(total);
        if total > self.limits.max_unpacked_size.0 {
            return Err(io::Error::other(over(
                "max-unpacked-size",
                format!(
                    "the layers unpack to more than {}",
                    self.limits.max_unpacked_size
                ),
                "32GiB",
            )));
        }
        if let Some(taken) = self.header_bytes.get() {
            let taken = taken + n;
            self.header_bytes.set(Some(taken));
            if taken > MAX_HEADER_BYTES {
                return Err(io::Error::other(format!(
                    "a tar header (long name or PAX records) is larger than {}: \
                     the layer is damaged or hostile",
                    ByteSize(MAX_HEADER_BYTES)
                )));
            }
        }
        self.check_time()
    }

    /// Runs `next` (a tar reader's step to its next entry) with the bytes it may
    /// take bounded: the data of the previous entry must be read already.
    pub(crate) fn next_header<T>(&self, next: impl FnOnce() -> T) -> T {
        self.header_bytes.set(Some(0));
        let result = next();
        self.header_bytes.set(None);
        result
    }
}

/// A reader of uncompressed layer bytes that charges a [`Budget`].
pub(crate) struct Metered<'b, R> {
    pub inner: R,
    pub budget: &'b Budget,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.unpacked(n as u64)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_run_out_with_their_names() {
        let budget = Budget::new(Limits {
            max_entries: 2,
            max_unpacked_size: ByteSize(10),
            ..Limits::default()
        });
        budget.entry().unwrap();
        budget.entry().unwrap();
        let err = budget.entry().unwrap_err().to_string();
        assert!(err.contains("--limit max-entries=8"), "{err}");
        let mut reader = Metered {
            inner: &[0u8; 64][..],
            budget: &budget,
        };
        let err = io::copy(&mut reader, &mut io::sink())
            .unwrap_err()
            .to_string();
        assert!(err.contains("max-unpacked-size"), "{err}");
        let err = budget.file("/app", 1 << 30).unwrap_err();
        assert!(err.contains("--limit max-file-size=1024MiB"), "{err}");
        let header = Budget::default();
        let mut big = Metered {
            inner: io::repeat(0).take(MAX_HEADER_BYTES + 1),
            budget: &header,
        };
        let err = header.next_header(|| io::copy(&mut big, &mut io::sink()));
        assert!(err.is_err());
    }
}
