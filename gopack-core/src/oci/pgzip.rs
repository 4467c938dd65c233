//! Gzip compressed on several cores with bytes that do not depend on how
//! many, the way pigz does it: the input is cut into fixed blocks of
//! [`BLOCK`] bytes; each block is deflated on its own, primed with the 32 KiB
//! before it as dictionary, and ends on a byte boundary (a sync flush), so the
//! compressed blocks concatenate into one deflate stream. Block boundaries,
//! dictionaries and flushes are functions of the input alone: one core or
//! eight, the same layer digest.
//!
//! Memory is bounded by the number of threads times [`BLOCK`].

use flate2::{Compress, CompressError, Compression, Crc, FlushCompress, Status};
use std::io::{self, Write};

/// The size of the blocks compressed independently (pigz's default).
pub const BLOCK: usize = 128 * 1024;
/// The deflate window: how much of the input before a block primes it.
const DICTIONARY: usize = 32 * 1024;
const _: () = assert!(BLOCK > DICTIONARY);
/// At most this many blocks are compressed at once.
const MAX_THREADS: usize = 8;

/// A gzip writer that compresses full blocks on several threads.
pub struct ParallelGzip<W: Write> {
    out: W,
    level: Compression,
    threads: usize,
    /// The last `DICTIONARY` bytes before `pending` (fewer at the start).
    window: Vec<u8>,
    /// Input not compressed yet.
    pending: Vec<u8>,
    crc: Crc,
}

impl<W: Write> ParallelGzip<W> {
    /// A writer at `level` on as many threads as the machine has cores (at most 8).
    pub fn new(out: W, level: Compression) -> io::Result<Self> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_THREADS);
        Self::with_threads(out, level, threads)
    }

    /// A writer on `threads` threads (the output is the same for any number).
    pub fn with_threads(mut out: W, level: Compression, threads: usize) -> io::Result<Self> {
        // No mtime, no name, OS "unknown": nothing of the host.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(ParallelGzip {
            out,
            level,
            threads: threads.max(1),
            window: Vec::new(),
            pending: Vec::with_capacity(threads.max(1) * BLOCK + 1),
            crc: Crc::new(),
        })
    }

    /// Compresses the rest (the last block is the final one) and writes the
    /// gzip trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let rest = std::mem::take(&mut self.pending);
        self.compress(&rest, true)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.out.write_all(&trailer)?;
        Ok(self.out)
    }

    /// Compresses `input` (a whole number of blocks unless `last`) as blocks
    /// of [`BLOCK`] bytes, in parallel, and writes them in order.
    fn compress(&mut self, input: &[u8], last: bool) -> io::Result<()> {
        self.crc.update(input);
        let blocks: Vec<&[u8]> = if input.is_empty() {
            vec![input]
        } else {
            input.chunks(BLOCK).collect()
        };
        let count = blocks.len();
        // A block's dictionary: the window before the first, else the 32 KiB
        // of input before it (a block is larger than the window).
        let dictionary = |i: usize| -> &[u8] {
            if i == 0 {
                &self.window
            } else {
                &input[i * BLOCK - DICTIONARY..i * BLOCK]
            }
        };
        let jobs: Vec<(&[u8], &[u8], bool)> = blocks
            .iter()
            .enumerate()
            .map(|(i, block)| (dictionary(i), *block, last && i + 1 == count))
            .collect();
        let level = self.level;
        let outputs: Vec<Result<Vec<u8>, CompressError>> = if self.threads == 1 || count == 1 {
            jobs.iter()
                .map(|(dict, block, fin)| deflate_block(dict, block, *fin, level))
                .collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = jobs
                    .iter()
                    .map(|(dict, block, fin)| {
                        scope.spawn(move || deflate_block(dict, block, *fin, level))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("deflate does not panic"))
                    .collect()
            })
        };
        for output in outputs {
            self.out.write_all(&output.map_err(io::Error::other)?)?;
        }
        let keep = input.len().min(DICTIONARY);
        let mut window = std::mem::take(&mut self.window);
        if keep < DICTIONARY {
            window.extend_from_slice(input);
            let excess = window.len().saturating_sub(DICTIONARY);
            window.drain(..excess);
        } else {
            window.clear();
            window.extend_from_slice(&input[input.len() - keep..]);
        }
        self.window = window;
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let batch = self.threads * BLOCK;
        // Strictly more than a batch: the block holding the last byte is only
        // known at `finish`, and it alone is compressed as final. One large
        // write can hold many batches: compress them all, so what waits in
        // memory stays under one batch whatever the caller writes at once.
        while self.pending.len() > batch {
            let rest = self.pending.split_off(batch);
            let full = std::mem::replace(&mut self.pending, rest);
            self.compress(&full, false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Deflates one block primed with `dictionary`: a sync flush at its end, or
/// the end of the stream when `last`.
fn deflate_block(
    dictionary: &[u8],
    block: &[u8],
    last: bool,
    level: Compression,
) -> Result<Vec<u8>, CompressError> {
    let mut deflate = Compress::new(level, false);
    if !dictionary.is_empty() {
        deflate.set_dictionary(dictionary)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(block.len() / 2 + 64);
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = deflate.total_in() as usize;
        let status = deflate.compress_vec(&block[consumed..], &mut out, flush)?;
        let all_in = deflate.total_in() as usize == block.len();
        match status {
            Status::StreamEnd => break,
            // Room left after the flush: the block is complete.
            Status::Ok | Status::BufError if !last && all_in && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn input(len: usize) -> Vec<u8> {
        // Compressible text with matches across block boundaries.
        let text: String = (0..len / 8 + 1)
            .map(|i| format!("line {} of {}\n", i % 977, i % 13))
            .collect();
        text.as_bytes()[..len].to_vec()
    }

    fn gzip(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut gz =
            ParallelGzip::with_threads(Vec::new(), Compression::default(), threads).unwrap();
        for piece in data.chunks(chunk.max(1)) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn same_bytes_on_any_number_of_threads_and_writes() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 5 * BLOCK + 77] {
            let data = input(len);
            let one = gzip(&data, 1, 1 << 20);
            assert_eq!(gunzip(&one), data, "len {len}");
            for (threads, chunk) in [(2, 1000), (3, BLOCK), (8, 4096), (1, 13)] {
                assert_eq!(
                    gzip(&data, threads, chunk),
                    one,
                    "len {len}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn one_large_write_leaves_at_most_one_batch_waiting() {
        let data = input(9 * BLOCK + 3);
        let mut gz = ParallelGzip::with_threads(Vec::new(), Compression::default(), 2).unwrap();
        gz.write_all(&data).unwrap();
        assert!(
            gz.pending.len() <= 2 * BLOCK,
            "{} bytes wait after one write",
            gz.pending.len()
        );
        let bytes = gz.finish().unwrap();
        assert_eq!(bytes, gzip(&data, 1, 1000));
        assert_eq!(gunzip(&bytes), data);
    }

    #[test]
    fn the_system_gzip_reads_it() {
        let data = input(4 * BLOCK + 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.gz");
        std::fs::write(&path, gzip(&data, 2, 9000)).unwrap();
        let gzip =
            crate::toolchain::which_utf8("gzip").expect("gzip is installed (apt-get install gzip)");
        let out = crate::process::Cmd::new("gzip", &gzip)
            .args(["-dc", path.to_str().unwrap()])
            .read()
            .unwrap();
        assert_eq!(out.as_bytes(), data.as_slice());
    }
}
