//! Facts about a Go binary read from its bytes, never by running it: the
//! build information `go version -m` prints ([`buildinfo`]) and its ELF
//! headers ([`elf`]). A leaf: the SBOM, provenance and verify all read
//! binaries through it.

pub mod buildinfo;
pub mod elf;
