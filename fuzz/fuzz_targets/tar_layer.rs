#![no_main]
//! `cargo +nightly fuzz run tar_layer`: see gopack_core::verify::fuzz::tar_layer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gopack_core::verify::fuzz::tar_layer(data);
});
