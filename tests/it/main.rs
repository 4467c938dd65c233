//! gopack's integration tests, one binary with a module per topic (as cargo
//! and uv do): one link, shared fixtures (the module proxy folder, the test
//! builder images) built once per run. `cargo test --test it pack::` runs
//! one topic; any substring of a test's path filters as usual.

mod support;

mod adopt;
mod build;
mod cache_damage;
mod cache_registry;
mod cgo;
mod cli_contract;
mod commands;
mod diff;
mod docker_edges;
mod docker_engine;
mod edge_errors;
mod hostile;
mod images;
mod inputs;
mod interrupt;
mod metadata_memo;
mod modules;
mod pack;
mod registry_security;
mod repack;
mod signing;
mod since;
mod supply_chain;
mod tidy;
mod trust;
mod verify;
mod verify_crafted;
