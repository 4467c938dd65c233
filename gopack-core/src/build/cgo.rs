//! cgo builds: which C compiler builds for which platform, the flags of a
//! fully static cgo binary, and the compiler's identity for the binary's key.
//!
//! The compiler is the app's `cc` for the platform, else (for the build
//! machine's own platform) `$CC`, else `musl-gcc` for a static build when
//! musl-tools is installed (and `gcc` when musl-gcc cannot see a header the
//! app includes: musl's include path has no system headers such as zlib.h;
//! gopack says so in a warning), else `gcc`, else `cc`; for another platform,
//! Debian's cross compiler `<triplet>-gcc` when it is on PATH. Its identity is
//! its resolved path and its `--version` text: a compiler upgrade rebuilds.

use super::Binary;
use crate::cache::KeyHasher;
use crate::config::{App, Cgo};
use crate::error::{Error, IoContext, Result};
use crate::ldso::{self, Entry, Files, HostFiles};
use crate::oci::tree::{Content, Tree};
use crate::platform::Platform;
use crate::process::Cmd;
use crate::toolchain::which_utf8;
use camino::{Utf8Path, Utf8PathBuf};

/// The image label that lists a dynamic binary's loader and libraries.
pub const LIBRARIES_LABEL: &str = "io.gopack.cgo.libraries";

/// Go build tags of a static cgo binary: Go's own DNS resolver and user
/// lookup, so that glibc's NSS (which cannot be linked statically) is unused.
pub const STATIC_TAGS: &[&str] = &["netgo", "osusergo"];
/// `-ldflags` words of a static cgo binary: the external linker, told `-static`.
pub const STATIC_LDFLAGS: &str = "-linkmode=external -extldflags=-static";

/// The C compiler of one platform.
#[derive(Debug, Clone)]
pub struct CCompiler {
    /// The command as `CC` gets it (words separated by spaces).
    pub command: String,
    /// The resolved path of its first word.
    pub path: Utf8PathBuf,
    /// The first line of `--version`.
    pub version: String,
    /// Where the setting came from, for messages (`cc."linux/arm64"`, `$CC`, `default`).
    pub origin: String,
    version_text: String,
}

impl CCompiler {
    /// Finds and identifies the C compiler for `platform`. `Ok(None)` when the
    /// app builds without cgo.
    pub fn for_platform(
        app: &App,
        platform: &Platform,
        manifest: &Utf8Path,
    ) -> Result<Option<CCompiler>> {
        let mode = app.config.cgo;
        if !mode.enabled() {
            return Ok(None);
        }
        let native = *platform == Platform::host();
        let configured = app
            .config
            .cc
            .iter()
            .find(|(p, _)| p.parse::<Platform>().ok().as_ref() == Some(platform))
            .map(|(p, c)| (c.clone(), format!("cc.\"{p}\"")));
        let (command, origin) = match configured {
            Some(found) => found,
            None => {
                let from_env =
                    crate::environment::var("CC").filter(|cc| native && !cc.trim().is_empty());
                match from_env {
                    Some(cc) => (cc, "$CC".to_string()),
                    None => match default_compiler(mode, platform, native) {
                        Some(cc) => (cc, "default".to_string()),
                        None => return Err(no_compiler(app, platform, manifest, native)),
                    },
                }
            }
        };
        CCompiler::identify(app, platform, manifest, command, origin).map(Some)
    }

    /// Identifies `command` as the C compiler for `platform` (`origin` says
    /// where the setting came from, for messages).
    fn identify(
        app: &App,
        platform: &Platform,
        manifest: &Utf8Path,
        command: String,
        origin: String,
    ) -> Result<CCompiler> {
        let key = platform.to_string();
        let native = *platform == Platform::host();
        let mut words = command.split_whitespace();
        let program = words.next().unwrap_or_default();
        let path = if program.contains('/') {
            Utf8PathBuf::from(program)
        } else {
            which_utf8(program).ok_or_else(|| Error::Config {
                manifest: manifest.to_path_buf(),
                key: format!(
                    "workspace.metadata.gopack.apps (name = \"{}\").{origin}",
                    app.name()
                ),
                message: format!("the C compiler `{program}` for {key} is not on PATH"),
                help: install_hint(platform, native),
            })?
        };
        let version_text = Cmd::new("cc", &path)
            .args(words.clone())
            .arg("--version")
            .help(format!(
                "the C compiler `{command}` ({origin}) for {key} does not run; install it or fix the setting"
            ))
            .read()?;
        let version = version_text.lines().next().unwrap_or("").trim().to_string();
        Ok(CCompiler {
            command,
            path,
            version,
            origin,
            version_text,
        })
    }

    /// Whether this is gopack's default `musl-gcc` (no `cc`, no `$CC`): the
    /// one compiler gopack may replace when it cannot see a header.
    pub fn is_default_musl(&self) -> bool {
        self.origin == "default" && self.command == "musl-gcc"
    }

    /// The compiler that replaces the default `musl-gcc` when musl's include
    /// path lacks the app's headers (zlib.h, sqlite3.h are installed for
    /// glibc): the build machine's `gcc`, linking glibc statically.
    pub fn glibc_fallback(
        app: &App,
        platform: &Platform,
        manifest: &Utf8Path,
    ) -> Option<CCompiler> {
        let gcc = ["gcc", "cc"]
            .into_iter()
            .find(|c| which_utf8(c).is_some())?;
        CCompiler::identify(
            app,
            platform,
            manifest,
            gcc.to_string(),
            "default (musl-gcc lacks the app's headers)".to_string(),
        )
        .ok()
    }

    /// Adds the compiler's identity to a binary's key.
    pub fn hash_into(&self, hasher: &mut KeyHasher) {
        hasher
            .text("cc", &self.command)
            .text("cc-path", self.path.as_str())
            .text("cc-version", &self.version_text);
    }

    /// The `CC` value for `go build`: the resolved path and the other words.
    pub fn cc_env(&self) -> String {
        let mut words: Vec<&str> = self.command.split_whitespace().collect();
        let path = self.path.as_str();
        if let Some(first) = words.first_mut() {
            *first = path;
        }
        words.join(" ")
    }

    /// The folder that stands for `/` when looking up the target's shared
    /// libraries: `/` for the build machine's platform; for a cross compiler,
    /// the root of its libc (`/usr/aarch64-linux-gnu` for Debian's), found by
    /// asking where it links `libc.so.6` from.
    pub fn target_root(&self, native: bool) -> Option<Utf8PathBuf> {
        if native {
            return Some(Utf8PathBuf::from("/"));
        }
        let words: Vec<&str> = self.command.split_whitespace().skip(1).collect();
        let answer = Cmd::new("cc", &self.path)
            .args(words)
            .arg("-print-file-name=libc.so.6")
            .read()
            .ok()?;
        let real = std::fs::canonicalize(answer.trim()).ok()?;
        let real = Utf8PathBuf::from_path_buf(real).ok()?;
        // <root>/lib/libc.so.6, <root>/lib/<triplet>/libc.so.6, <root>/usr/lib/...
        let mut dir = real.parent()?;
        loop {
            let name = dir.file_name()?;
            let parent = dir.parent()?;
            if name == "lib" || name == "lib64" {
                return Some(if parent.file_name() == Some("usr") {
                    parent.parent()?.to_path_buf()
                } else {
                    parent.to_path_buf()
                });
            }
            dir = parent;
        }
    }
}

/// The loader and shared libraries of a `cgo = "dynamic"` binary, found on
/// the build machine (or under a cross compiler's root) by the loader's rules.
#[derive(Debug, Clone)]
pub struct RuntimeFiles {
    /// One line per object, in load order: `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1`.
    pub listing: Vec<String>,
    /// The paths the loader looks up, in load order (the image label's value).
    pub paths: Vec<String>,
    /// What goes into the app layer: symlinks as symlinks, files from the host.
    pub entries: Vec<(String, Content)>,
}

impl RuntimeFiles {
    /// Resolves what `binary` (placed at `image_path`) needs to start.
    pub fn find(binary: &Binary, image_path: &str) -> Result<RuntimeFiles> {
        let native = binary.platform == Platform::host();
        let root = binary
            .cc
            .as_ref()
            .and_then(|cc| cc.target_root(native))
            .ok_or_else(|| Error::Invalid {
                path: binary.path.to_string(),
                message: format!(
                    "cannot tell where the {} shared libraries are: the C compiler does not say where it links libc.so.6 from",
                    binary.platform
                ),
                help: "use a cross gcc with the target's libc installed (Debian: gcc-aarch64-linux-gnu), or cgo = \"static\"".into(),
            })?;
        let bytes = std::fs::read(&binary.path).at(&binary.path, "read")?;
        let files = HostFiles { root: root.clone() };
        let resolution =
            ldso::resolve(&files, image_path, &bytes).map_err(|why| Error::Invalid {
                path: binary.path.to_string(),
                message: why,
                help: "cgo = \"dynamic\" needs a dynamically linked ELF binary".into(),
            })?;
        if !resolution.missing.is_empty() {
            let names: Vec<String> = resolution
                .missing
                .iter()
                .map(|m| format!("{} (needed by {})", m.name, m.needed_by))
                .collect();
            return Err(Error::Invalid {
                path: binary.path.to_string(),
                message: format!(
                    "shared objects not found under {root} by the loader's rules: {}",
                    names.join(", ")
                ),
                help: "install the packages that hold them (e.g. zlib1g for libz.so.1), or build with cgo = \"static\"".into(),
            });
        }
        let mut entries: Vec<(String, Content)> = Vec::new();
        for path in resolution.image_paths() {
            let content = match files.entry(&path) {
                Entry::Symlink(target) => Content::Symlink(target),
                _ => Content::Host(files.host_path(&path)),
            };
            entries.push((path, content));
        }
        Ok(RuntimeFiles {
            listing: resolution
                .found
                .iter()
                .map(|o| {
                    let what = if o.interpreter { " (loader)" } else { "" };
                    format!("{}{what} => {}", o.name, o.path)
                })
                .collect(),
            paths: resolution.found.iter().map(|o| o.path.clone()).collect(),
            entries,
        })
    }

    /// Adds the loader and libraries to an app layer's tree.
    pub fn add_to(&self, tree: &mut Tree) {
        for (path, content) in &self.entries {
            let mode = match content {
                Content::Symlink(_) => 0o777,
                _ => 0o755,
            };
            tree.file(path, mode, content.clone());
        }
    }
}

/// The compiler gopack picks when the app configures none.
fn default_compiler(mode: Cgo, platform: &Platform, native: bool) -> Option<String> {
    if native {
        let mut candidates = Vec::new();
        if mode == Cgo::Static {
            candidates.push("musl-gcc");
        }
        candidates.extend(["gcc", "cc"]);
        return candidates
            .into_iter()
            .find(|c| which_utf8(c).is_some())
            .map(String::from);
    }
    let cross = format!("{}-gcc", triplet(platform)?);
    which_utf8(&cross).map(|_| cross)
}

/// Debian's GNU triplet of a platform.
pub fn triplet(platform: &Platform) -> Option<&'static str> {
    Some(match platform.arch.as_str() {
        "amd64" => "x86_64-linux-gnu",
        "arm64" => "aarch64-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "386" => "i686-linux-gnu",
        "ppc64le" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "mips64le" => "mips64el-linux-gnuabi64",
        "loong64" => "loongarch64-linux-gnu",
        _ => return None,
    })
}

fn install_hint(platform: &Platform, native: bool) -> String {
    if native {
        return "install a C compiler (Debian: `apt-get install gcc`, and `musl-tools` for \
                cgo = \"static\" against musl), or set cc for this platform"
            .into();
    }
    let package = triplet(platform)
        .map(|t| format!("gcc-{}", t.replace("_", "-")))
        .unwrap_or_else(|| "a cross gcc".into());
    let zig_target = format!(
        "{}-linux-musl",
        match platform.arch.as_str() {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            "386" => "x86",
            "ppc64le" => "powerpc64le",
            other => other,
        }
    );
    format!(
        "install a C cross compiler for {platform} (Debian: `apt-get install {package}`, or zig: \
         `pip install ziglang`) and set cc = {{ \"{platform}\" = \"{}\" }} (or \
         \"python3 -m ziglang cc -target {zig_target}\")",
        triplet(platform)
            .map(|t| format!("{t}-gcc"))
            .unwrap_or_else(|| "<triplet>-gcc".into())
    )
}

fn no_compiler(app: &App, platform: &Platform, manifest: &Utf8Path, native: bool) -> Error {
    Error::Config {
        manifest: manifest.to_path_buf(),
        key: format!(
            "workspace.metadata.gopack.apps (name = \"{}\").cc",
            app.name()
        ),
        message: format!(
            "cgo = \"{}\" needs a C compiler for {platform}, and none is configured or installed",
            app.config.cgo.as_str()
        ),
        help: install_hint(platform, native),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplets_and_hints() {
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(triplet(&arm64), Some("aarch64-linux-gnu"));
        let hint = install_hint(&arm64, false);
        assert!(hint.contains("gcc-aarch64-linux-gnu"), "{hint}");
        assert!(hint.contains("aarch64-linux-musl"), "{hint}");
    }
}
