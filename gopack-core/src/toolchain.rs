//! Finding the tools gopack shells out to: `go` always, `docker` only when an
//! engine or `--load` needs it. Each is looked up once; a missing tool is one
//! error that says what to install.

use crate::error::{Error, Result};
use crate::process::Cmd;
use camino::{Utf8Path, Utf8PathBuf};
use std::ffi::OsStr;

/// How to get Go, shown when it is missing.
pub const GO_INSTALL_HINT: &str = "install Go 1.21 or newer (https://go.dev/dl/; on Debian: \
     `apt-get install golang-1.23-go` from bookworm-backports) and put its bin/ on PATH, \
     or set GOPACK_GO to the `go` binary";

/// How to get docker, shown when it is missing.
pub const DOCKER_INSTALL_HINT: &str = "install the docker client and engine \
     (https://docs.docker.com/engine/install/; on Debian: `apt-get install docker.io`), \
     or use the default daemonless `oci` engine without --load";

/// The oldest Go gopack builds with (README and GO_INSTALL_HINT say so too).
pub const GO_MINIMUM: (u32, u32) = (1, 21);

/// The Go toolchain gopack builds with.
#[derive(Debug, Clone)]
pub struct Go {
    /// Path of the `go` binary.
    pub path: Utf8PathBuf,
    /// The version `go version` prints, e.g. `go1.23.5`.
    pub version: String,
}

impl Go {
    /// Finds `go`: `$GOPACK_GO` of this process, then PATH, then the usual install folders.
    pub fn find() -> Result<Go> {
        Go::find_with(crate::environment::var_os("GOPACK_GO").as_deref())
    }

    /// Finds `go`: `gopack_go` (the value of `GOPACK_GO`, read by the caller),
    /// then PATH, then the usual install folders.
    pub fn find_with(gopack_go: Option<&OsStr>) -> Result<Go> {
        let path = Go::locate(gopack_go)?;
        let version = Go::read_version(&path)?;
        Ok(Go { path, version })
    }

    /// Like [`Go::find`], with `go version`'s answer remembered in `cache` per
    /// identity of the go binary (path, size, mtime, ctime, inode), so a run
    /// does not start `go` only to ask its version. The remembered answer is
    /// used only while the toolchain's own `VERSION` file (beside its `bin/`)
    /// says the same: a record that the cache's writer made up, or that the
    /// toolchain contradicts, is reported and `go` is asked again.
    pub fn find_cached(
        cache: &crate::cache::Cache,
        gopack_go: Option<&OsStr>,
        reporter: &dyn crate::report::Reporter,
    ) -> Result<Go> {
        let path = Go::locate(gopack_go)?;
        let goroot = crate::environment::var("GOROOT").unwrap_or_default();
        let installed = installed_version(&path);
        let confirm = |answer: &str| installed.as_deref().map(|v| v == answer);
        let version =
            crate::cache::stat::remembered(cache, &path, &goroot, confirm, reporter, || {
                Go::read_version(&path)
            })?;
        Ok(Go { path, version })
    }

    fn locate(gopack_go: Option<&OsStr>) -> Result<Utf8PathBuf> {
        if let Some(path) = gopack_go {
            if !std::path::Path::new(path).is_file() {
                return Err(Error::ToolMissing {
                    tool: format!("go (--go or GOPACK_GO={})", path.to_string_lossy()),
                    help: format!(
                        "the `--go` flag (or GOPACK_GO, its environment variable) names no \
                         file: pass the path of a `go` binary, or leave both out to find go on \
                         PATH; or {GO_INSTALL_HINT}"
                    ),
                });
            }
        }
        find_go_binary(gopack_go).ok_or_else(|| Error::ToolMissing {
            tool: "go".into(),
            help: GO_INSTALL_HINT.into(),
        })
    }

    /// `go version`'s version, checked: the output must be Go's, and the
    /// release at least [`GO_MINIMUM`].
    fn read_version(path: &Utf8Path) -> Result<String> {
        let printed = Cmd::new("go", path)
            .args(["version"])
            .query()
            .env("GOTOOLCHAIN", "local")
            .help(format!(
                "`{path}` does not run; reinstall Go or set GOPACK_GO"
            ))
            .read()?;
        let version = parse_go_version(&printed).ok_or_else(|| Error::ToolMissing {
            tool: format!("go ({path})"),
            help: format!(
                "`{path} version` printed {:?}, which is not Go's `go version goX.Y.Z os/arch`; \
                 {GO_INSTALL_HINT}",
                printed.trim().chars().take(200).collect::<String>()
            ),
        })?;
        if let Some((major, minor)) = release(&version) {
            if (major, minor) < GO_MINIMUM {
                return Err(Error::ToolMissing {
                    tool: format!(
                        "go {}.{} or newer ({path} is {version})",
                        GO_MINIMUM.0, GO_MINIMUM.1
                    ),
                    help: GO_INSTALL_HINT.into(),
                });
            }
        }
        Ok(version)
    }

    /// A `go` command with the given arguments.
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Cmd::new("go", &self.path).args(args)
    }
}

/// The first line of the `VERSION` file of the Go installation whose `bin/go`
/// is `go` (links resolved), when it has one and it names a release.
fn installed_version(go: &Utf8Path) -> Option<String> {
    let real = std::fs::canonicalize(go).ok()?;
    let root = real.parent()?.parent()?;
    let file = root.join("VERSION");
    let meta = std::fs::symlink_metadata(&file).ok()?;
    if !meta.is_file() || meta.len() > 4096 {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let first = text.lines().next()?.trim();
    release(first).map(|_| first.to_string())
}

/// `go version go1.23.5 linux/amd64` → `go1.23.5` (`devel ...` versions are kept whole).
pub fn parse_go_version(printed: &str) -> Option<String> {
    let rest = printed.lines().next()?.trim().strip_prefix("go version ")?;
    let mut words = rest.split_whitespace();
    let version = words.next()?;
    if version == "devel" {
        return Some(format!("devel {}", words.next()?));
    }
    let platform = words.next()?;
    (version.starts_with("go") && release(version).is_some() && platform.contains('/'))
        .then(|| version.to_string())
}

/// `go1.23.5` or `go1.24rc1` → (1, 23).
fn release(version: &str) -> Option<(u32, u32)> {
    let rest = version.strip_prefix("go")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?;
    let digits: String = minor.chars().take_while(char::is_ascii_digit).collect();
    Some((major, digits.parse().ok()?))
}

fn find_go_binary(gopack_go: Option<&OsStr>) -> Option<Utf8PathBuf> {
    if let Some(path) = gopack_go {
        return Utf8PathBuf::from_path_buf(path.into()).ok();
    }
    if let Some(path) = which_utf8("go") {
        return Some(path);
    }
    let mut candidates = Vec::new();
    if let Some(root) = crate::environment::var("GOROOT") {
        candidates.push(Utf8PathBuf::from(root).join("bin/go"));
    }
    candidates.push("/usr/local/go/bin/go".into());
    candidates.push("/usr/lib/go/bin/go".into());
    // Debian and Ubuntu install versioned toolchains side by side; take the newest.
    let mut versioned: Vec<(Vec<u32>, Utf8PathBuf)> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix("go-")?;
            let key = version
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, Utf8PathBuf::from(format!("/usr/lib/{name}/bin/go"))))
        })
        .collect();
    versioned.sort();
    candidates.extend(versioned.into_iter().rev().map(|(_, path)| path));
    candidates.into_iter().find(|path| path.is_file())
}

/// Looks `name` up on PATH.
pub fn which_utf8(name: &str) -> Option<Utf8PathBuf> {
    which::which(name)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
}

/// The docker client, found on first need.
#[derive(Debug, Clone)]
pub struct Docker {
    /// Path of the `docker` binary.
    pub path: Utf8PathBuf,
}

impl Docker {
    /// Finds the `docker` client (`$GOPACK_DOCKER`, else PATH).
    pub fn find() -> Result<Docker> {
        let path = crate::environment::var_os("GOPACK_DOCKER")
            .and_then(|p| Utf8PathBuf::from_path_buf(p.into()).ok())
            .or_else(|| which_utf8("docker"))
            .ok_or_else(|| Error::ToolMissing {
                tool: "docker".into(),
                help: DOCKER_INSTALL_HINT.into(),
            })?;
        Ok(Docker { path })
    }

    /// A `docker` command with the given arguments.
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Cmd::new("docker", &self.path).args(args)
    }

    /// The engine's version, or an error that says how to start it.
    pub fn engine_version(&self) -> Result<String> {
        self.cmd(["version", "--format", "{{.Server.Version}}"])
            .help(
                "the docker engine is not reachable: start it (`systemctl start docker` or \
                 `dockerd &`), or point DOCKER_HOST at a running engine",
            )
            .query()
            .read()
            .map(|v| v.trim().to_string())
    }

    /// The id of a local image, or None when the engine has none by that name.
    pub fn image_id(&self, reference: &str) -> Option<String> {
        let out = self
            .cmd(["image", "inspect", "--format", "{{.Id}}", reference])
            .query()
            .output()
            .ok()?;
        (out.code == Some(0)).then(|| out.stdout.trim().to_string())
    }

    /// Each reference with the id of the image it names now, before a load or
    /// build moves it (see [`Docker::warn_dangling`]).
    pub fn image_ids(&self, references: &[String]) -> Vec<(String, Option<String>)> {
        references
            .iter()
            .map(|r| (r.clone(), self.image_id(r)))
            .collect()
    }

    /// Warns about each image a tag was moved away from (`before`, from
    /// [`Docker::image_ids`]) when that image has no tag left: one warning per
    /// old image, naming it and how to remove it.
    pub fn warn_dangling(
        &self,
        before: &[(String, Option<String>)],
        reporter: &dyn crate::report::Reporter,
    ) {
        let mut old: Vec<(&str, Vec<&str>)> = Vec::new();
        for (tag, id) in before {
            let Some(id) = id else { continue };
            if self.image_id(tag).as_deref() == Some(id.as_str()) {
                continue;
            }
            match old.iter_mut().find(|(known, _)| known == id) {
                Some((_, tags)) => tags.push(tag),
                None => old.push((id, vec![tag])),
            }
        }
        for (id, moved) in old {
            let tags_left = self
                .cmd(["image", "inspect", "--format", "{{len .RepoTags}}", id])
                .query()
                .output()
                .ok()
                .filter(|out| out.code == Some(0))
                .map(|out| out.stdout.trim().to_string());
            if tags_left.as_deref() != Some("0") {
                continue;
            }
            let short = id.strip_prefix("sha256:").unwrap_or(id);
            let short = &short[..short.len().min(12)];
            reporter.report(crate::report::Event::Warning {
                message: format!(
                    "{} moved to the new image; the old image {short} has no tag left (dangling): \
                     remove it with `docker rmi {short}`, or every dangling image with \
                     `docker image prune`",
                    moved.join(" and ")
                ),
            });
        }
    }

    /// The engine's platform as `os/arch`.
    pub fn engine_platform(&self) -> Result<String> {
        let text = self
            .cmd(["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"])
            .help("the docker engine is not reachable: start it, or point DOCKER_HOST at one")
            .query()
            .read()?;
        Ok(text.trim().to_string())
    }
}

/// Whether `path` looks like an executable file.
pub fn is_executable(path: &Utf8Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_version_output() {
        assert_eq!(
            parse_go_version("go version go1.23.5 linux/amd64\n").as_deref(),
            Some("go1.23.5")
        );
        assert_eq!(
            parse_go_version("go version go1.24rc1 linux/arm64").as_deref(),
            Some("go1.24rc1")
        );
        assert_eq!(parse_go_version(""), None);
        assert_eq!(parse_go_version("Python 3.11.2"), None);
        assert_eq!(parse_go_version("go version banana"), None);
        assert_eq!(release("go1.19.13"), Some((1, 19)));
        assert!(release("go1.19.13").unwrap() < GO_MINIMUM);
    }
}
