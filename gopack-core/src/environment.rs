//! Every environment variable gopack reads, named in one place. The library
//! reads the process environment only through [`var_os`] and [`var`], and
//! only the names in [`VARIABLES`] (a debug build panics on any other), so
//! what a CI job's environment can change is this list, which
//! docs/configuration.md documents in full (a tidy test keeps them equal).
//! Variables that only become command-line defaults are read by clap at the
//! CLI edge (`env = "..."` on the flags) and are listed here too.

use std::ffi::OsString;

/// Variables of the caller's shell that change what `go build` makes: passed
/// to it and part of the binary's cache key.
pub const GO_BUILD: &[&str] = &[
    "GOFLAGS",
    "GOEXPERIMENT",
    "GOAMD64",
    "GOARM64",
    "GO386",
    "GOPPC64",
    "GORISCV64",
    "GOWORK",
    "GOTOOLCHAIN",
    "CGO_CFLAGS",
    "CGO_CPPFLAGS",
    "CGO_CXXFLAGS",
    "CGO_LDFLAGS",
];

/// gopack's own variables and the standard ones it honours, besides [`GO_BUILD`].
pub const VARIABLES: &[&str] = &[
    "GOPACK_GO",
    "GOPACK_DOCKER",
    "GOPACK_TOOL_TIMEOUT",
    "GOPACK_CACHE_DIR",
    "GOPACK_CACHE_REGISTRY",
    "GOPACK_CACHE_REGISTRY_MODE",
    "GOPACK_REGISTRY_USERNAME",
    "GOPACK_REGISTRY_PASSWORD",
    "GOPACK_REGISTRY_CA_FILE",
    "GOPACK_SIGN_KEY",
    "COSIGN_PASSWORD",
    "SSL_CERT_FILE",
    "SOURCE_DATE_EPOCH",
    "DOCKER_CONFIG",
    "HOME",
    "PATH",
    "GOROOT",
    "CC",
    "CARGO",
    "RUSTUP_TOOLCHAIN",
    "RUSTUP_HOME",
];

/// Families of variables gopack reads as a whole, by the start of their
/// names: every `CARGO_*` variable is part of the key of the remembered
/// `cargo metadata` answer (`config/memo.rs`), since cargo reads any of them.
pub const FAMILIES: &[&str] = &["CARGO_", "__CARGO"];

/// Whether gopack reads `name`.
pub fn is_known(name: &str) -> bool {
    VARIABLES.contains(&name) || GO_BUILD.contains(&name)
}

/// The value of `name`, if set.
pub fn var_os(name: &str) -> Option<OsString> {
    debug_assert!(
        is_known(name),
        "{name} is read but not listed in environment::VARIABLES"
    );
    std::env::var_os(name)
}

/// The value of `name` when it is set and UTF-8.
pub fn var(name: &str) -> Option<String> {
    var_os(name).and_then(|value| value.into_string().ok())
}

/// Every variable whose name starts with one of [`FAMILIES`]' `prefix`, with
/// its value, sorted by name.
pub fn vars_with_prefix(prefix: &str) -> Vec<(OsString, OsString)> {
    debug_assert!(
        FAMILIES.contains(&prefix),
        "{prefix}* is read but not listed in environment::FAMILIES"
    );
    let mut found: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(name, _)| name.as_encoded_bytes().starts_with(prefix.as_bytes()))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_once() {
        let mut all: Vec<&str> = VARIABLES.iter().chain(GO_BUILD).copied().collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "a name is listed twice");
    }
}
