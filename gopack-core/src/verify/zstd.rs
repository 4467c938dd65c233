//! zstd layers, decoded in pure Rust (`ruzstd`): rare in images, so a C
//! library is not worth its build time. A stream may hold several frames,
//! decoded one after the other; the window size is bounded by the decoder,
//! so a hostile frame header cannot make it allocate without limit.

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use std::io::{self, BufRead, Read};

/// Decodes the concatenated zstd frames of `source`.
pub(crate) struct Decoder<R: BufRead> {
    frame: Option<StreamingDecoder<R, FrameDecoder>>,
}

impl<R: BufRead> Decoder<R> {
    /// Starts on the first frame (an error when it is not a zstd frame).
    pub(crate) fn new(source: R) -> io::Result<Self> {
        Ok(Decoder {
            frame: Some(StreamingDecoder::new(source).map_err(io::Error::other)?),
        })
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(frame) = self.frame.as_mut() else {
                return Ok(0);
            };
            let n = frame.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // This frame is done: go on with the next one, if any.
            let mut source = self.frame.take().expect("a frame").into_inner();
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.frame = Some(StreamingDecoder::new(source).map_err(io::Error::other)?);
        }
    }
}
