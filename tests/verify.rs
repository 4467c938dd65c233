//! `cargo xtask verify` end-to-end tests.

mod support;
