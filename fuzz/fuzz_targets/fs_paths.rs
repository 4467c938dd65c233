#![no_main]
//! `cargo +nightly fuzz run fs_paths`: see gopack_core::verify::fuzz::fs_paths.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gopack_core::verify::fuzz::fs_paths(data);
});
