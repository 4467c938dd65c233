//! Facts about an ELF binary, read from its headers (never by running it):
//! machine, interpreter, needed libraries, symbols and debug sections, and the
//! package names a Go binary links.

use goblin::elf::{header, program_header, Elf};

/// What the verifier needs to know about an executable.
#[derive(Debug, Clone)]
pub struct ElfFacts {
    /// `e_machine`.
    pub machine: u16,
    /// Byte order (`EI_DATA`): little-endian or not.
    pub little_endian: bool,
    /// `ET_EXEC`, `ET_DYN`, ...
    pub kind: u16,
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` libraries.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` and `DT_RPATH` folders.
    pub search_paths: Vec<String>,
    /// Whether a `.symtab` section is there.
    pub has_symtab: bool,
    /// `.debug_*` and `.zdebug_*` sections.
    pub debug_sections: Vec<String>,
}

impl ElfFacts {
    /// Parses the headers of an ELF file.
    pub fn parse(bytes: &[u8]) -> Result<ElfFacts, String> {
        let elf = Elf::parse(bytes).map_err(|e| format!("not a readable ELF file: {e}"))?;
        let mut search_paths: Vec<String> = elf.runpaths.iter().map(|s| s.to_string()).collect();
        search_paths.extend(elf.rpaths.iter().map(|s| s.to_string()));
        let section_names: Vec<&str> = elf
            .section_headers
            .iter()
            .filter_map(|s| elf.shdr_strtab.get_at(s.sh_name))
            .collect();
        Ok(ElfFacts {
            machine: elf.header.e_machine,
            little_endian: elf.little_endian,
            kind: elf.header.e_type,
            interpreter: elf.interpreter.map(String::from),
            needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
            search_paths: search_paths
                .iter()
                .flat_map(|p| p.split(':'))
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
            has_symtab: section_names.contains(&".symtab"),
            debug_sections: section_names
                .iter()
                .filter(|n| n.starts_with(".debug_") || n.starts_with(".zdebug_"))
                .map(|n| n.to_string())
                .collect(),
        })
    }

    /// Static: no interpreter, no needed library, and not position-independent.
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty() && self.kind == header::ET_EXEC
    }

    /// Whether the file is position-independent (`ET_DYN`).
    pub fn is_pie(&self) -> bool {
        self.kind == header::ET_DYN
    }
}

/// Every architecture gopack knows: GOARCH, ELF machine, byte order
/// (little-endian?), and the machine's name as `readelf` prints it. The one
/// table for these facts.
const ARCHES: &[(&str, u16, bool, &str)] = &[
    ("amd64", header::EM_X86_64, true, "x86-64"),
    ("arm64", header::EM_AARCH64, true, "AArch64"),
    ("arm", header::EM_ARM, true, "ARM"),
    ("386", header::EM_386, true, "Intel 80386"),
    ("ppc64le", header::EM_PPC64, true, "PowerPC64"),
    ("ppc64", header::EM_PPC64, false, "PowerPC64"),
    ("s390x", header::EM_S390, false, "IBM S/390"),
    ("riscv64", header::EM_RISCV, true, "RISC-V"),
    ("mips64le", header::EM_MIPS, true, "MIPS"),
    ("mips64", header::EM_MIPS, false, "MIPS"),
    ("loong64", header::EM_LOONGARCH, true, "LoongArch"),
];

/// The ELF machine and byte order (little-endian?) a GOARCH runs.
pub fn machine_for_arch(arch: &str) -> Option<(u16, bool)> {
    ARCHES
        .iter()
        .find(|a| a.0 == arch)
        .map(|&(_, machine, little, _)| (machine, little))
}

/// A machine and byte order as a person reads them: `x86-64 (amd64)`.
pub fn machine_name(machine: u16, little_endian: bool) -> String {
    match ARCHES
        .iter()
        .find(|a| a.1 == machine && a.2 == little_endian)
    {
        Some((arch, _, _, name)) => format!("{name} ({arch})"),
        None => format!(
            "ELF machine {machine}, {}-endian",
            if little_endian { "little" } else { "big" }
        ),
    }
}

/// Maps a virtual address to a file offset through the `PT_LOAD` segments
/// (whose fields are the file's claims: the arithmetic is checked).
pub(crate) fn file_offset(elf: &Elf<'_>, address: u64) -> Option<usize> {
    elf.program_headers
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
        .find(|p| address >= p.p_vaddr && address - p.p_vaddr < p.p_filesz)
        .and_then(|p| p.p_offset.checked_add(address - p.p_vaddr))
        .and_then(|offset| usize::try_from(offset).ok())
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bytes() {
        assert!(contains(b"xxcrypto/x509.Parse", b"crypto/x509."));
        assert!(!contains(b"crypto/x50", b"crypto/x509"));
        assert!(contains(b"abc", b""));
    }

    #[test]
    fn reads_the_test_binary() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let facts = ElfFacts::parse(&bytes).unwrap();
        assert_eq!(
            machine_for_arch(crate::platform::Platform::host().arch.as_str()),
            Some((facts.machine, facts.little_endian))
        );
        assert_eq!(machine_name(header::EM_PPC64, false), "PowerPC64 (ppc64)");
        assert_eq!(machine_name(header::EM_PPC64, true), "PowerPC64 (ppc64le)");
        assert!(ElfFacts::parse(b"#!/bin/sh\n").is_err());
    }
}
