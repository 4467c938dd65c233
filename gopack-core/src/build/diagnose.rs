//! What a failed `go build` means, said only when it is true.
//!
//! go's own error is always shown as go printed it (streamed as it came, and
//! inside the error when the run shows no output); gopack adds a `help:` line
//! for a cause it can prove:
//! - go.sum or go.mod lacking entries, vendor/ out of date (go names them);
//! - cgo: a package the main package imports (as `go list -deps` says, with
//!   the build's GOOS, GOARCH, tags and CGO_ENABLED=1, so build constraints,
//!   `_`/`.`-prefixed folders, testdata and `_test.go` files count as go
//!   counts them) has cgo files that CGO_ENABLED=0 leaves out, and go's
//!   error is about that package;
//! - `main` names a folder without Go files: the help names the `main` key
//!   and lists the module's `package main` folders (`go list ./...`);
//! - `main` names a package that is not `package main` (go wrote a library
//!   archive, not a program).

use super::{tidy_error, BuildFlags};
use crate::config::App;
use crate::error::{Error, Result};
use crate::toolchain::Go;

/// What the diagnosis needs to know about the failed build.
pub(super) struct Failed<'a> {
    pub go: &'a Go,
    pub app: &'a App,
    /// `go build`'s environment (CGO_ENABLED, GOOS, GOARCH, ...).
    pub env: &'a [(String, String)],
    pub flags: &'a BuildFlags,
    /// The main package as go was given it (`./cmd/api`).
    pub main: &'a str,
    /// The manifest, for the `main` key.
    pub manifest: &'a camino::Utf8Path,
}

/// A clearer error than go's for a cause gopack knows by name (go's lines
/// were streamed before): go.sum/go.mod out of date, vendor/ out of date.
pub(super) fn known_cause(app: &App, output: &str) -> Option<Error> {
    if output.contains("missing go.sum entry") || output.contains("updates to go.mod needed") {
        return Some(tidy_error(
            app,
            "go.sum or go.mod lacks entries the build needs",
        ));
    }
    if output.contains("inconsistent vendoring") {
        return Some(Error::Invalid {
            path: app.dir.join("vendor/modules.txt").to_string(),
            message: "vendor/ does not match go.mod".into(),
            help: format!(
                "run \"go mod vendor\" in {} (or \"go work vendor\" next to go.work)",
                app.dir
            ),
        });
    }
    None
}

/// gopack's help for go's failure `output`, when it can prove a cause: the
/// missing main package, the C compiler, or cgo. `None`: go's error speaks
/// for itself.
pub(super) fn help(
    failed: &Failed<'_>,
    output: &str,
    cc: Option<&super::cgo::CCompiler>,
) -> Option<String> {
    if let Some(help) = missing_main(failed, output) {
        return Some(help);
    }
    if let Some(cc) = cc {
        return c_compile_help(failed, output, cc);
    }
    let cgo_off = failed
        .env
        .iter()
        .any(|(name, value)| name == "CGO_ENABLED" && value == "0");
    if cgo_off {
        return cgo_help(failed, output);
    }
    None
}

/// A cgo build whose C compile failed: name the compiler and the `cc` key.
fn c_compile_help(failed: &Failed<'_>, output: &str, cc: &super::cgo::CCompiler) -> Option<String> {
    let c_error = output.lines().any(|line| {
        line.contains("fatal error:")
            || line.contains("cgo: C compiler")
            || line.contains("cgo-gcc-prolog")
            || ((line.contains(".c:") || line.contains(".h:") || line.contains(".go:"))
                && line.contains(": error:"))
            || line.contains("undefined reference to")
            || line.contains("cannot find -l")
    });
    if !c_error {
        return None;
    }
    let header = output
        .lines()
        .find(|l| l.contains(".h: No such file or directory"))
        .map(|_| {
            " A header is missing: install its -dev package (e.g. zlib1g-dev for zlib.h) \
             for this compiler; musl-gcc sees only musl's headers, not the system's."
        })
        .unwrap_or("");
    Some(format!(
        "the C compile of `{}` failed with `{}` ({}; from {}).{header} Choose the C compiler \
         with the app's `cc` key in {} (e.g. cc = {{ \"{}\" = \"gcc\" }}), or `cgo` = \
         \"dynamic\" to link the system's shared libraries",
        failed.app.name(),
        cc.command,
        cc.version,
        cc.origin,
        failed.manifest,
        failed
            .env
            .iter()
            .find(|(k, _)| k == "GOOS")
            .map(|(_, os)| format!(
                "{os}/{}",
                failed
                    .env
                    .iter()
                    .find(|(k, _)| k == "GOARCH")
                    .map(|(_, a)| a.as_str())
                    .unwrap_or("amd64")
            ))
            .unwrap_or_else(|| "linux/amd64".into()),
    ))
}

/// The `main` folder has no Go files (or is not there).
fn missing_main(failed: &Failed<'_>, output: &str) -> Option<String> {
    let main_dir = crate::gomod::normalize(&failed.app.dir.join(&failed.app.config.main));
    let relative = failed.main.trim_start_matches("./");
    let about_main = output.lines().any(|line| {
        (line.contains("no Go files in")
            || line.contains("directory not found")
            || line.contains("is not in std"))
            && (line.trim_end().ends_with(main_dir.as_str())
                || line.contains(&format!("{main_dir}:"))
                || (relative != "." && line.contains(relative)))
    });
    if !about_main {
        return None;
    }
    let mains = main_packages(failed);
    let listed = if mains.is_empty() {
        "the module has no `package main` folder".to_string()
    } else {
        format!(
            "the module's `package main` folders: {}",
            mains
                .iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Some(format!(
        "`main` = \"{}\" of app `{}` in {} names a folder without a Go `package main` \
         ({main_dir}); {listed}. Set `main` to the folder of the app's `package main`, \
         relative to `path`",
        failed.app.config.main,
        failed.app.name(),
        failed.manifest,
    ))
}

/// The module's `package main` folders, relative to its root, as go sees
/// them with the build's platform and tags (`go list -e ./...`).
fn main_packages(failed: &Failed<'_>) -> Vec<String> {
    let mut cmd = failed
        .go
        .cmd(["list", "-e", failed.flags.mod_flag])
        .args(tags_arg(failed.flags))
        .args(["-f", "{{if eq .Name \"main\"}}{{.Dir}}{{end}}", "./..."])
        .dir(&failed.app.dir)
        .query();
    for (name, value) in failed.env {
        cmd = cmd.env(name.clone(), value.clone());
    }
    let Ok(listing) = cmd.read() else {
        return Vec::new();
    };
    let root = failed.app.dir.as_str();
    listing
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|dir| match dir.strip_prefix(root) {
            Some("") => ".".to_string(),
            Some(rest) => rest.trim_start_matches('/').to_string(),
            None => dir.to_string(),
        })
        .collect()
}

fn tags_arg(flags: &BuildFlags) -> Vec<String> {
    if flags.tags.is_empty() {
        Vec::new()
    } else {
        vec![format!("-tags={}", flags.tags)]
    }
}

/// A package the main package imports, with its cgo files.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct CgoPackage {
    pub import_path: String,
    pub dir: String,
    pub files: Vec<String>,
}

/// Parses `go list -deps` lines of `Standard<TAB>ImportPath<TAB>Dir<TAB>CgoFiles`
/// (comma separated): the packages outside the standard library that have cgo files.
pub(super) fn parse_cgo_listing(listing: &str) -> Vec<CgoPackage> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let standard = fields.next()?;
            let import_path = fields.next()?;
            let dir = fields.next()?;
            let files = fields.next()?;
            if standard != "false" || files.trim().is_empty() {
                return None;
            }
            Some(CgoPackage {
                import_path: import_path.to_string(),
                dir: dir.to_string(),
                files: files.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Whether go's `output` is about `package`: its `# import/path` header, its
/// folder ("build constraints exclude all Go files in DIR"), or its files.
pub(super) fn output_is_about(output: &str, package: &CgoPackage, module_dir: &str) -> bool {
    let relative = package
        .dir
        .strip_prefix(module_dir)
        .map(|rest| rest.trim_start_matches('/'))
        .filter(|rest| !rest.is_empty());
    output.lines().any(|line| {
        let line = line.trim();
        line == format!("# {}", package.import_path)
            || (line.contains("build constraints exclude all Go files in")
                && line.trim_end().ends_with(package.dir.as_str()))
            || relative.is_some_and(|rel| {
                line.starts_with(&format!("{rel}/")) || line.starts_with(&format!("./{rel}/"))
            })
    })
}

/// The cgo hint: only for a package the main package imports, that has cgo
/// files for this platform, and that go's error is about.
fn cgo_help(failed: &Failed<'_>, output: &str) -> Option<String> {
    let mut cmd = failed
        .go
        .cmd(["list", "-e", "-deps", failed.flags.mod_flag])
        .args(tags_arg(failed.flags))
        .args([
            "-f",
            "{{.Standard}}\t{{.ImportPath}}\t{{.Dir}}\t{{join .CgoFiles \",\"}}",
            failed.main,
        ])
        .dir(&failed.app.dir)
        .query();
    for (name, value) in failed.env {
        let value = if name == "CGO_ENABLED" {
            "1".to_string()
        } else {
            value.clone()
        };
        cmd = cmd.env(name.clone(), value);
    }
    let listing = cmd.read().ok()?;
    let culprits: Vec<CgoPackage> = parse_cgo_listing(&listing)
        .into_iter()
        .filter(|p| output_is_about(output, p, failed.app.dir.as_str()))
        .collect();
    let first = culprits.first()?;
    let files: Vec<String> = first
        .files
        .iter()
        .map(|f| format!("{}/{f}", first.dir))
        .collect();
    Some(format!(
        "`{}` needs cgo: the package {} (imported by the main package) has cgo files \
         ({}, with `import \"C\"`) that CGO_ENABLED=0 leaves out, and go's error above is \
         about it. Turn cgo on with the app's `cgo` key (`cgo = \"static\"` or \
         \"dynamic\"), or give the package a pure-Go build (a `//go:build !cgo` file)",
        failed.app.name(),
        first.import_path,
        files.join(", ")
    ))
}

/// Refuses what `go build` wrote when it is no executable: `go build -o` of a
/// package that is not `package main` writes an ar archive.
pub(super) fn check_executable(app: &App, path: &std::path::Path) -> Result<()> {
    use std::io::Read;
    let mut magic = [0u8; 8];
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io(path.display().to_string(), "read", e))?;
    let n = file
        .read(&mut magic)
        .map_err(|e| Error::io(path.display().to_string(), "read", e))?;
    if magic[..n].starts_with(b"\x7fELF") {
        return Ok(());
    }
    let main = app.dir.join(&app.config.main);
    let message = if magic[..n].starts_with(b"!<arch>") {
        format!(
            "`{}` is not `package main`: go built a library archive, not a program",
            app.config.main
        )
    } else {
        format!(
            "go wrote no executable for `{}` ({n} bytes)",
            app.config.main
        )
    };
    Err(Error::Invalid {
        path: main.to_string(),
        message,
        help: "point `main` at the folder of the app's `package main` (with `func main`), relative to `path`".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_standard_packages_with_cgo_files() {
        let listing = "true\tnet\t/usr/lib/go/src/net\tcgo_linux.go\n\
                       false\texample.com/app/db\t/src/app/db\tsqlite.go,blob.go\n\
                       false\texample.com/app\t/src/app\t\n";
        let found = parse_cgo_listing(listing);
        assert_eq!(
            found,
            [CgoPackage {
                import_path: "example.com/app/db".into(),
                dir: "/src/app/db".into(),
                files: vec!["sqlite.go".into(), "blob.go".into()],
            }]
        );
    }

    #[test]
    fn the_hint_needs_an_error_about_the_package() {
        let db = CgoPackage {
            import_path: "example.com/app/db".into(),
            dir: "/src/app/db".into(),
            files: vec!["sqlite.go".into()],
        };
        assert!(output_is_about(
            "# example.com/app/db\ndb/open.go:3:9: undefined: open",
            &db,
            "/src/app"
        ));
        assert!(output_is_about(
            "package example.com/app\n\timports example.com/app/db: build constraints exclude all Go files in /src/app/db",
            &db,
            "/src/app"
        ));
        // An ordinary compile error in main says nothing about db.
        assert!(!output_is_about(
            "# example.com/app\ncmd/app/main.go:33:17: undefined: undefinedThing",
            &db,
            "/src/app"
        ));
    }
}
