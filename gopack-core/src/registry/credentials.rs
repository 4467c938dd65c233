//! Registry credentials: `GOPACK_REGISTRY_USERNAME` and `GOPACK_REGISTRY_PASSWORD`,
//! else the docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//! the host's `credHelpers` entry, then its `auths` entry, then `credsStore`.
//!
//! A credential helper is `docker-credential-<name> get`, run through
//! `crate::process` with the host on standard input; it answers
//! `{"Username": ..., "Secret": ...}`. As docker finds helpers, gopack looks
//! the program up in the absolute folders of `PATH` only: never in the current
//! folder (a checkout could carry its own `docker-credential-<name>`), never
//! through a relative or empty `PATH` entry.

use crate::error::{Error, Result};
use crate::process::Cmd;
use base64::Engine as _;
use camino::Utf8PathBuf;
use serde_json::Value;
use std::ffi::OsStr;
use std::io::Read;

/// The largest docker config gopack reads.
const CONFIG_LIMIT: u64 = 4 << 20;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password or token.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, secret: <hidden> }}",
            self.user
        )
    }
}

/// Credentials for `host` (`host[:port]`), from the environment or the docker config.
pub fn lookup(host: &str) -> Result<Option<Credentials>> {
    if let (Some(user), Some(secret)) = (
        crate::environment::var("GOPACK_REGISTRY_USERNAME"),
        crate::environment::var("GOPACK_REGISTRY_PASSWORD"),
    ) {
        return Ok(Some(Credentials { user, secret }));
    }
    let Some(dir) = crate::environment::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            crate::environment::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker"))
        })
    else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let mut bytes = Vec::new();
    let read =
        std::fs::File::open(&path).and_then(|f| f.take(CONFIG_LIMIT).read_to_end(&mut bytes));
    if read.is_err() {
        return Ok(None);
    }
    let config: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
        path: path.display().to_string(),
        message: format!("the docker config is not JSON: {e}"),
        help: "fix the file, or set GOPACK_REGISTRY_USERNAME and GOPACK_REGISTRY_PASSWORD".into(),
    })?;
    let search = crate::environment::var_os("PATH").unwrap_or_default();
    from_docker_config(&config, host, &search)
}

/// Credentials for `host` from a parsed docker config; helpers are looked up in
/// `search` (`PATH`'s syntax).
pub fn from_docker_config(
    config: &Value,
    host: &str,
    search: &OsStr,
) -> Result<Option<Credentials>> {
    let matches = |key: &str| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        key == host || key.split('/').next() == Some(host)
    };
    let helper_for_host = config["credHelpers"]
        .as_object()
        .and_then(|helpers| helpers.iter().find(|(key, _)| matches(key)))
        .and_then(|(_, name)| name.as_str());
    if let Some(name) = helper_for_host {
        return run_helper(name, host, search);
    }
    let entry = config["auths"]
        .as_object()
        .and_then(|auths| auths.iter().find(|(key, _)| matches(key)))
        .and_then(|(_, entry)| entry["auth"].as_str());
    if let Some(auth) = entry {
        return Ok(decode_auth(auth));
    }
    match config["credsStore"].as_str() {
        Some(name) if !name.is_empty() => run_helper(name, host, search),
        _ => Ok(None),
    }
}

/// `base64(user:password)`.
fn decode_auth(auth: &str) -> Option<Credentials> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, secret) = text.split_once(':')?;
    Some(Credentials {
        user: user.to_string(),
        secret: secret.to_string(),
    })
}

/// `docker-credential-<name> get` with `host` on standard input.
fn run_helper(name: &str, host: &str, search: &OsStr) -> Result<Option<Credentials>> {
    let tool = format!("docker-credential-{name}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::Invalid {
            path: "docker config".into(),
            message: format!("`{name}` cannot name a credential helper"),
            help: "fix `credsStore`/`credHelpers` in the docker config".into(),
        });
    }
    let missing = || Error::ToolMissing {
        tool: tool.clone(),
        help: format!(
            "the docker config names the credential helper `{name}` for {host}: install {tool} \
             in a folder on PATH (the current folder is never searched), or set \
             GOPACK_REGISTRY_USERNAME and GOPACK_REGISTRY_PASSWORD"
        ),
    };
    let program = find_on_path(&tool, search).ok_or_else(missing)?;
    let captured = Cmd::new(&tool, program)
        .arg("get")
        .stdin(host.as_bytes().to_vec())
        .query()
        .output()
        .map_err(|e| {
            if crate::process::timed_out(&e) {
                e
            } else {
                missing()
            }
        })?;
    if captured.code != Some(0) {
        let said = format!("{}{}", captured.stdout, captured.stderr);
        // What every helper says for a host it has nothing for.
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(Error::Command {
            command: format!("{tool} get"),
            status: format!("exit code {:?}", captured.code),
            output: said,
            help: format!("log in again with `docker login {host}`, or set GOPACK_REGISTRY_USERNAME and GOPACK_REGISTRY_PASSWORD"),
        });
    }
    let answer: Value = serde_json::from_str(&captured.stdout).map_err(|e| Error::Invalid {
        path: tool.clone(),
        message: format!("the helper's answer is not JSON: {e}"),
        help: "check the credential helper with `echo HOST | docker-credential-NAME get`".into(),
    })?;
    match (answer["Username"].as_str(), answer["Secret"].as_str()) {
        (Some(user), Some(secret)) if !secret.is_empty() => Ok(Some(Credentials {
            user: user.to_string(),
            secret: secret.to_string(),
        })),
        _ => Ok(None),
    }
}

/// The executable `tool` in the first absolute folder of `search` that has one.
/// Relative entries (`.`, `bin`, the empty entry, which shells read as the
/// current folder) are skipped, as Go's `exec.LookPath` refuses them for docker.
pub fn find_on_path(tool: &str, search: &OsStr) -> Option<Utf8PathBuf> {
    std::env::split_paths(search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(tool))
        .find(|path| std::fs::metadata(path).is_ok_and(|m| is_executable(&m)))
        .and_then(|path| Utf8PathBuf::from_path_buf(path).ok())
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    metadata.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8Path;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    /// A helper script that answers for `registry.example.com` only and logs its input.
    fn fake_helper(dir: &Utf8Path, name: &str) {
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread host\necho \"$host\" >> {dir}/asked\n\
                 case \"$host\" in\n  registry.example.com) echo '{{\"ServerURL\":\"registry.example.com\",\"Username\":\"ci\",\"Secret\":\"s3cret\"}}' ;;\n\
                 *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn helpers_and_auths() {
        let temp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(temp.path()).unwrap();
        fake_helper(dir, "fake");
        let creds = Credentials {
            user: "ci".into(),
            secret: "s3cret".into(),
        };
        let expected = Some(creds.clone());
        // credHelpers for the host.
        let config = json!({"credHelpers": {"registry.example.com": "fake"}});
        assert_eq!(
            from_docker_config(&config, "registry.example.com", dir.as_os_str()).unwrap(),
            expected
        );
        // credsStore for every host; a host the helper does not know has none.
        let config = json!({"credsStore": "fake", "auths": {"registry.example.com": {}}});
        assert_eq!(
            from_docker_config(&config, "registry.example.com", dir.as_os_str()).unwrap(),
            expected
        );
        assert_eq!(
            from_docker_config(&config, "other.example.com", dir.as_os_str()).unwrap(),
            None
        );
        let asked = std::fs::read_to_string(dir.join("asked")).unwrap();
        assert_eq!(
            asked,
            "registry.example.com\nregistry.example.com\nother.example.com\n"
        );
        // An inline auth wins over the store.
        let config =
            json!({"credsStore": "fake", "auths": {"https://other.example.com": {"auth": "dTpw"}}});
        assert_eq!(
            from_docker_config(&config, "other.example.com", dir.as_os_str()).unwrap(),
            Some(Credentials {
                user: "u".into(),
                secret: "p".into()
            })
        );
        // A missing helper and a hostile helper name are errors that say what to do.
        let config = json!({"credsStore": "absent"});
        let err = from_docker_config(&config, "registry.example.com", dir.as_os_str()).unwrap_err();
        assert!(
            err.to_string().contains("docker-credential-absent"),
            "{err}"
        );
        let config = json!({"credsStore": "../../bin/sh"});
        assert!(from_docker_config(&config, "registry.example.com", dir.as_os_str()).is_err());
        assert!(!format!("{creds:?}").contains("s3cret"));
    }

    #[test]
    fn helpers_are_found_only_in_absolute_path_folders() {
        let temp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(temp.path()).unwrap();
        fake_helper(dir, "fake");
        let found = find_on_path("docker-credential-fake", dir.as_os_str());
        assert_eq!(found, Some(dir.join("docker-credential-fake")));
        // The same folder written relative to the current one is never searched,
        // nor is the empty entry.
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count().saturating_sub(1));
        let relative = format!("{up}{}", dir.as_str().trim_start_matches('/'));
        assert!(Utf8Path::new(&relative)
            .join("docker-credential-fake")
            .is_file());
        for search in [relative.as_str(), "", ":", "."] {
            assert_eq!(
                find_on_path("docker-credential-fake", search.as_ref()),
                None,
                "{search}"
            );
        }
        // Not executable: not a helper.
        std::fs::set_permissions(
            dir.join("docker-credential-fake"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!(
            find_on_path("docker-credential-fake", dir.as_os_str()),
            None
        );
    }
}
