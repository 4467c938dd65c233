//! The one deterministic tar header: every tar gopack writes (layers, the
//! image archive, the smoke run's docker archive) is made of these, so the
//! same content gives the same bytes on any machine.

/// A GNU header with uid/gid 0, no user or group names, the given mode,
/// size and fixed mtime.
pub fn header(kind: tar::EntryType, mode: u32, mtime: u64, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}
