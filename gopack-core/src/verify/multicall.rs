//! Multi-call binaries that give a shell (busybox, toybox), told by content
//! whatever their name: their help texts, found in an executable ELF file by
//! streaming it in bounded chunks.

use std::io::{self, Read};

/// Markers of multi-call binaries that give a shell, found in their help texts.
const MULTICALL_MARKERS: &[(&[u8], &str)] = &[
    (b"BusyBox is a multi-call binary", "busybox"),
    (b"BusyBox v1.", "busybox"),
    (b"landley.net/toybox", "toybox"),
];

/// Whether a file with this mode and these first bytes is an executable ELF file.
pub(crate) fn is_executable_elf(mode: u32, head: &[u8]) -> bool {
    mode & 0o111 != 0 && head.starts_with(b"\x7fELF")
}

/// The multi-call binary whose marker is in `bytes`.
pub(crate) fn multicall_in(bytes: &[u8]) -> Option<&'static str> {
    MULTICALL_MARKERS
        .iter()
        .find(|(marker, _)| super::elf::contains(bytes, marker))
        .map(|(_, name)| *name)
}

/// Streams the rest of a file (after `head`) in chunks, keeping an overlap so
/// that a marker across two chunks is found; memory stays bounded.
pub(crate) fn scan_multicall(
    head: &[u8],
    rest: &mut impl Read,
) -> io::Result<Option<&'static str>> {
    let keep = MULTICALL_MARKERS
        .iter()
        .map(|(m, _)| m.len())
        .max()
        .unwrap_or(0);
    let mut window = head.to_vec();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some(found) = multicall_in(&window) {
            // Drain the entry so the tar reader stays in step (it skips anyway).
            io::copy(rest, &mut io::sink())?;
            return Ok(Some(found));
        }
        let n = rest.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        let start = window.len().saturating_sub(keep);
        window.drain(..start);
        window.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_across_two_chunks_is_found() {
        let mut bytes = vec![0u8; 64 * 1024 - 10];
        bytes.extend_from_slice(b"BusyBox is a multi-call binary");
        bytes.extend_from_slice(&[0u8; 100]);
        let found = scan_multicall(b"\x7fELF", &mut &bytes[..]).unwrap();
        assert_eq!(found, Some("busybox"));
        assert_eq!(
            scan_multicall(b"\x7fELF", &mut &[0u8; 10][..]).unwrap(),
            None
        );
        assert!(is_executable_elf(0o755, b"\x7fELF"));
        assert!(!is_executable_elf(0o644, b"\x7fELF"));
    }
}
