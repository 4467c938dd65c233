#![no_main]
//! `cargo +nightly fuzz run elf_binary`: see gopack_core::verify::fuzz::elf_binary.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gopack_core::verify::fuzz::elf_binary(data);
});
