//! Layer bytes as they stream: the decompressor (gzip, zstd or none, told by
//! magic bytes), hashing of what goes through, and the walk over a tar's
//! entries within the [`Budget`], which counts bytes as they are decompressed
//! (so a bomb stops at `max-unpacked-size` or `max-seconds`, not after it is
//! unpacked whole).

use super::limits::Budget;
use crate::config::ByteSize;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

/// What a [`Hashing`] reader saw: the running hash and the byte count.
pub(crate) type HashState = Rc<RefCell<(Sha256, u64)>>;

/// Hashes and counts what goes through it into a shared state.
pub(crate) struct Hashing<R> {
    inner: R,
    state: HashState,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.borrow_mut();
        state.0.update(&buf[..n]);
        state.1 += n as u64;
        Ok(n)
    }
}

/// A reader that hashes `inner`, and the state to read the hash from.
pub(crate) fn hashing<R: Read>(inner: R) -> (Hashing<R>, HashState) {
    let state = Rc::new(RefCell::new((Sha256::new(), 0)));
    (
        Hashing {
            inner,
            state: state.clone(),
        },
        state,
    )
}

/// `sha256:<hex>` and the byte count of what went through.
pub(crate) fn finish(state: &HashState) -> (String, u64) {
    let state = state.borrow();
    (
        format!("sha256:{}", hex::encode(state.0.clone().finalize())),
        state.1,
    )
}

/// A reader that fails once the budget's time is up (for stored bytes, which
/// no unpacked-size budget counts).
pub(crate) struct Timed<'b, R> {
    pub inner: R,
    pub budget: &'b Budget,
}

impl<R: Read> Read for Timed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.budget.check_time()?;
        self.inner.read(buf)
    }
}

/// A decompressing reader over a blob, chosen by its first bytes.
pub(crate) fn decompress<'a, R: Read + 'a>(
    raw: R,
) -> io::Result<(Box<dyn Read + 'a>, &'static str)> {
    let mut buffered = BufReader::new(raw);
    let magic = buffered.fill_buf()?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok((
            Box::new(flate2::read::MultiGzDecoder::new(buffered)),
            "gzip",
        ))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok((Box::new(super::zstd::Decoder::new(buffered)?), "zstd"))
    } else {
        Ok((Box::new(buffered), "none"))
    }
}

/// Whether an entry is a sparse file: a GNU sparse header, or the PAX
/// records (`GNU.sparse.*`) of the newer formats.
pub(crate) fn is_sparse<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<bool> {
    if entry.header().entry_type().is_gnu_sparse() {
        return Ok(true);
    }
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(false);
    };
    for extension in extensions {
        if extension?.key_bytes().starts_with(b"GNU.sparse.") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The error for a sparse entry.
pub(crate) fn sparse_error(name: &[u8], what: &str) -> io::Error {
    io::Error::other(format!(
        "{} is a sparse file, which {what} do not hold (a hole is bytes no budget would see)",
        String::from_utf8_lossy(name)
    ))
}

/// Calls `each` with every entry of a layer's tar, within the budget: each
/// entry counts, and the reader may take only a bounded number of bytes for
/// headers between entries. `each` returns whether to go on.
pub(crate) fn for_each_entry<R: Read>(
    archive: &mut tar::Archive<R>,
    budget: &Budget,
    mut each: impl FnMut(&mut tar::Entry<'_, R>) -> io::Result<bool>,
) -> io::Result<()> {
    let mut entries = archive.entries()?;
    while let Some(entry) = budget.next_header(|| entries.next()) {
        let mut entry = entry?;
        budget.entry()?;
        if is_sparse(&mut entry)? {
            // Holes are made up by the reader, not read: no budget would see them.
            return Err(sparse_error(&entry.path_bytes(), "image layers"));
        }
        if !each(&mut entry)? {
            return Ok(());
        }
        // The rest of the data is read here, where it is metered, not while
        // the reader looks for the next header.
        io::copy(&mut entry, &mut io::sink())?;
    }
    Ok(())
}

/// Reads an entry's data whole; its header's size was checked against the budget.
pub(crate) fn read_capped<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    claimed: u64,
    budget: &Budget,
) -> io::Result<Vec<u8>> {
    let max = budget.limits.max_file_size.0;
    // A claim is not trusted for more than a first allocation.
    let first = claimed.min(max).min(8 << 20);
    let mut bytes = Vec::with_capacity(usize::try_from(first).unwrap_or(0));
    entry.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other(super::limits::over(
            "max-file-size",
            format!(
                "a file is larger than its tar header says, and than {}",
                ByteSize(max)
            ),
            "1GiB",
        )));
    }
    bytes.shrink_to_fit();
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    #[test]
    fn a_zero_bomb_stops_at_the_budget_having_read_a_fraction_of_it() {
        // 1 GiB of zeros in one entry, as 1 MiB gzip members (about 1 MiB stored).
        let mut header = tar::Header::new_gnu();
        header.set_path("zeros").unwrap();
        header.set_size(1 << 30);
        header.set_cksum();
        let gz = |bytes: &[u8]| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut encoder, bytes).unwrap();
            encoder.finish().unwrap()
        };
        let mut blob = gz(header.as_bytes());
        let member = gz(&vec![0u8; 1 << 20]);
        for _ in 0..1024 {
            blob.extend_from_slice(&member);
        }
        let budget = Budget::new(Limits {
            max_unpacked_size: ByteSize(16 << 20),
            ..Limits::default()
        });
        let mut stored: &[u8] = &blob;
        let (plain, compression) = decompress(&mut stored).unwrap();
        assert_eq!(compression, "gzip");
        let mut archive = tar::Archive::new(super::super::limits::Metered {
            inner: plain,
            budget: &budget,
        });
        let err = for_each_entry(&mut archive, &budget, |_| Ok(true)).unwrap_err();
        drop(archive);
        let err = err.to_string();
        assert!(
            err.contains("max-unpacked-size") && err.contains("16.0 MiB"),
            "{err}"
        );
        // A few members were decompressed, not the thousand of them.
        let read = blob.len() - stored.len();
        assert!(
            read < blob.len() / 20,
            "{read} of {} stored bytes read",
            blob.len()
        );
    }

    /// A PAX record, `LEN key=value\n`, whose length counts itself.
    pub(crate) fn pax_record(key: &str, value: &str) -> String {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        loop {
            let record = format!("{len}{body}");
            if record.len() == len {
                return record;
            }
            len = record.len();
        }
    }

    #[test]
    fn pax_sparse_records_are_refused() {
        let records = pax_record("GNU.sparse.major", "1") + &pax_record("GNU.sparse.minor", "0");
        let mut builder = tar::Builder::new(Vec::new());
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_size(records.len() as u64);
        builder
            .append_data(&mut pax, "PaxHeaders/f", records.as_bytes())
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(3);
        builder.append_data(&mut header, "f", &b"abc"[..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        let budget = Budget::default();
        let mut archive = tar::Archive::new(&bytes[..]);
        let err = for_each_entry(&mut archive, &budget, |_| Ok(true)).unwrap_err();
        assert!(err.to_string().contains("f is a sparse file"), "{err}");
    }
}
