//! Checks of single settings that would otherwise give a broken image with exit 0:
//! the environment gopack reads (`SOURCE_DATE_EPOCH`, `GOPACK_CACHE_DIR`), the
//! binary's place in the image, and text that ends up in the image's config.
//!
//! Each check returns why a value is refused and the fix; the caller names the key.

use camino::Utf8PathBuf;
use std::ffi::OsString;

/// 9999-12-31T23:59:59Z: the last second an RFC 3339 timestamp (four-digit year) can show.
pub const MAX_EPOCH: u64 = 253_402_300_799;

/// A refused value: what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong with the value.
    pub message: String,
    /// What to write instead.
    pub help: String,
}

fn refuse(message: impl Into<String>, help: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        help: help.into(),
    }
}

/// The environment variables gopack honours, read once at the edge (the
/// CLI's clap `env`, or [`Environment::from_process`]) and passed into the
/// library; nothing deeper reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `GOPACK_GO`: the `go` binary to use.
    pub go: Option<OsString>,
    /// `GOPACK_CACHE_DIR`: the cache folder (overrides `cache-dir`).
    pub cache_dir: Option<OsString>,
    /// `SOURCE_DATE_EPOCH`: the one timestamp of the image.
    pub source_date_epoch: Option<OsString>,
    /// `GOPACK_SIGN_KEY`: a signing key's PEM (a CI secret), used when no
    /// `--sign-key` or `sign-key` names a file.
    pub sign_key: Option<Secret>,
    /// `COSIGN_PASSWORD`: opens cosign's encrypted keys.
    pub cosign_password: Option<Secret>,
}

/// A value that must not show in logs or `Debug` output (a key, a password).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub OsString);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret from the environment variable `name`, if set.
    pub fn from_env(name: &str) -> Option<Secret> {
        crate::environment::var_os(name).map(Secret)
    }
}

impl Environment {
    /// Reads `GOPACK_GO`, `GOPACK_CACHE_DIR`, `SOURCE_DATE_EPOCH`, `GOPACK_SIGN_KEY`
    /// and `COSIGN_PASSWORD` from this process.
    pub fn from_process() -> Environment {
        Environment {
            go: crate::environment::var_os("GOPACK_GO"),
            cache_dir: crate::environment::var_os("GOPACK_CACHE_DIR"),
            source_date_epoch: crate::environment::var_os("SOURCE_DATE_EPOCH"),
            sign_key: Secret::from_env("GOPACK_SIGN_KEY"),
            cosign_password: Secret::from_env("COSIGN_PASSWORD"),
        }
    }
}

/// `SOURCE_DATE_EPOCH`: `None` when unset, an error when it is set but is not
/// whole seconds between 0 and [`MAX_EPOCH`].
pub fn source_date_epoch(env: &Environment) -> Result<Option<u64>, Refusal> {
    parse_epoch(env.source_date_epoch.clone())
}

fn parse_epoch(value: Option<OsString>) -> Result<Option<u64>, Refusal> {
    let Some(value) = value else {
        return Ok(None);
    };
    let help = "set SOURCE_DATE_EPOCH to whole seconds since 1970-01-01 UTC, e.g. `SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`, or unset it to use the last commit's time";
    let Some(text) = value.to_str() else {
        return Err(refuse("the value is not UTF-8", help));
    };
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse(format!("`{text}` is not a number of seconds"), help));
    }
    match digits.parse::<u64>() {
        Ok(epoch) if epoch <= MAX_EPOCH => Ok(Some(epoch)),
        _ => Err(refuse(
            format!("`{text}` is after the year 9999 (the largest value is {MAX_EPOCH})"),
            help,
        )),
    }
}

/// `GOPACK_CACHE_DIR`: `None` when unset; an error when it is empty or not UTF-8.
pub fn cache_dir_env(env: &Environment) -> Result<Option<Utf8PathBuf>, Refusal> {
    parse_cache_dir(env.cache_dir.clone())
}

fn parse_cache_dir(value: Option<OsString>) -> Result<Option<Utf8PathBuf>, Refusal> {
    let Some(value) = value else {
        return Ok(None);
    };
    let help = "set GOPACK_CACHE_DIR to a UTF-8 folder path, or unset it to use `cache-dir` or <target>/gopack/cache";
    if value.is_empty() {
        return Err(refuse("the value is empty", help));
    }
    match Utf8PathBuf::from_path_buf(value.into()) {
        Ok(dir) => Ok(Some(dir)),
        Err(dir) => Err(refuse(format!("`{}` is not UTF-8", dir.display()), help)),
    }
}

/// Paths gopack writes into every image, or that hold its files: the binary must not
/// be one of them, a folder above one of them, or inside one of its files.
const RESERVED: &[&str] = &[
    "/tmp",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl/certs/ca-certificates.crt",
    "/usr/share/zoneinfo",
    "/etc/localtime",
    "/etc/timezone",
];

/// Folders of a Linux system that are not the place for a file.
const SYSTEM_FOLDERS: &[&str] = &[
    "/", "/bin", "/dev", "/proc", "/sys", "/usr/bin", "/go", "/go/bin",
];

/// `binary-path`: an absolute, normal file path that shadows none of gopack's files.
pub fn check_binary_path(path: &str) -> Result<(), Refusal> {
    let help = "write an absolute file path such as /go/bin/app or /usr/local/bin/app";
    if !path.starts_with('/') || path.ends_with('/') {
        return Err(refuse(
            format!("`{path}` is not an absolute file path"),
            help,
        ));
    }
    let parts: Vec<&str> = path[1..].split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(refuse(
            format!("`{path}` has an empty, `.` or `..` component"),
            help,
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(refuse(format!("{path:?} has a control character"), help));
    }
    if SYSTEM_FOLDERS.contains(&path) {
        return Err(refuse(format!("`{path}` is a folder"), help));
    }
    for reserved in RESERVED {
        let inside = |outer: &str, inner: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
        };
        if path == *reserved || inside(path, reserved) || inside(reserved, path) {
            return Err(refuse(
                format!("`{path}` would replace or shadow {reserved}, which gopack writes into the image"),
                help,
            ));
        }
    }
    Ok(())
}

/// `image-env` names: what `KEY=value` in the image's config can carry.
pub fn check_env_name(name: &str) -> Result<(), Refusal> {
    if name.is_empty() || name.contains('=') || name.chars().any(|c| c.is_control() || c == ' ') {
        return Err(refuse(
            format!("{name:?} cannot name an environment variable"),
            "use a name without `=`, spaces or control characters, e.g. LOG_LEVEL",
        ));
    }
    Ok(())
}

/// Text copied into the image's config or files (locale, time zone, labels, env
/// values): no newline or other control character.
pub fn check_text(value: &str) -> Result<(), Refusal> {
    if value.chars().any(char::is_control) {
        return Err(refuse(
            format!("{value:?} has a newline or another control character"),
            "write the value on one line without control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_values() {
        assert_eq!(parse_epoch(None), Ok(None));
        assert_eq!(
            parse_epoch(Some("1700000000".into())),
            Ok(Some(1_700_000_000))
        );
        assert_eq!(parse_epoch(Some(" 0 ".into())), Ok(Some(0)));
        assert_eq!(
            parse_epoch(Some(MAX_EPOCH.to_string().into())),
            Ok(Some(MAX_EPOCH))
        );
        for bad in [
            "yesterday",
            "",
            "-1",
            "1.5",
            "99999999999999",
            "253402300800",
            "99999999999999999999999",
        ] {
            let err = parse_epoch(Some(bad.into())).unwrap_err();
            assert!(err.help.contains("SOURCE_DATE_EPOCH"), "{bad}: {err:?}");
        }
        assert!(parse_epoch(Some("yesterday".into()))
            .unwrap_err()
            .message
            .contains("not a number"));
        assert!(parse_epoch(Some("99999999999999".into()))
            .unwrap_err()
            .message
            .contains("9999"));
    }

    #[test]
    fn cache_dir_values() {
        use std::os::unix::ffi::OsStringExt;
        assert_eq!(parse_cache_dir(None), Ok(None));
        assert_eq!(parse_cache_dir(Some("/c".into())), Ok(Some("/c".into())));
        assert!(parse_cache_dir(Some("".into()))
            .unwrap_err()
            .message
            .contains("empty"));
        let bad = OsString::from_vec(vec![b'/', 0xff, b'x']);
        assert!(parse_cache_dir(Some(bad))
            .unwrap_err()
            .message
            .contains("UTF-8"));
    }

    #[test]
    fn binary_paths() {
        for good in [
            "/go/bin/app",
            "/usr/local/bin/app",
            "/app",
            "/etc/app/app",
            "/tmpfoo",
        ] {
            assert_eq!(check_binary_path(good), Ok(()), "{good}");
        }
        for bad in [
            "relative/app",
            "/go/bin/",
            "/go/../etc/app",
            "/go//app",
            "/./app",
            "/tmp",
            "/tmp/app",
            "/etc/passwd",
            "/etc/group",
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/ssl/certs",
            "/etc/ssl",
            "/etc",
            "/usr/share/zoneinfo",
            "/usr/share/zoneinfo/UTC",
            "/usr/share",
            "/etc/passwd/app",
            "/etc/localtime",
            "/",
            "/go/bin",
            "/a\nb",
        ] {
            assert!(check_binary_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names_and_text() {
        assert!(check_env_name("LOG_LEVEL").is_ok());
        for bad in ["", "A=B", "A B", "A\nB"] {
            assert!(check_env_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_text("en_US.UTF-8").is_ok());
        assert!(check_text("Ünïcode label").is_ok());
        for bad in ["en_US\nLC_ALL=C", "a\rb", "a\u{0}b", "tab\there"] {
            assert!(check_text(bad).is_err(), "{bad:?}");
        }
    }
}
