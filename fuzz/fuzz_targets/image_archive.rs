#![no_main]
//! `cargo +nightly fuzz run image_archive`: see gopack_core::verify::fuzz::image_archive.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gopack_core::verify::fuzz::image_archive(data);
});
