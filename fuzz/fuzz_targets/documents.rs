#![no_main]
//! `cargo +nightly fuzz run documents`: see gopack_core::verify::fuzz::documents.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gopack_core::verify::fuzz::documents(data);
});
