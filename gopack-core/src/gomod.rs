//! How Go sees an app's module: vendored or not, inside a `go.work` or not,
//! and the files each of those makes an input of the build.
//!
//! gopack never lets `go` write into the user's folders: builds run with
//! `-mod=vendor` when Go would use vendor/ and `-mod=readonly` otherwise
//! (given on the command line, so a `GOFLAGS=-mod=mod` cannot undo it), and
//! `go mod download` writes its go.mod/go.sum updates into a temporary copy.

use crate::config::App;
use crate::error::{Error, IoContext, Result};
use crate::fingerprint::local_replacements;
use camino::{Utf8Path, Utf8PathBuf};

/// How the go command resolves the app's dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deps {
    /// From the module cache, filled by `go mod download`; go.sum must be complete.
    Modules,
    /// From `vendor/` (of the module, or of the go.work folder): no download, no network.
    Vendor {
        /// The vendor/modules.txt that lists them.
        modules_txt: Utf8PathBuf,
    },
}

/// A `go.work` that the app builds inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoWork {
    /// The go.work file.
    pub file: Utf8PathBuf,
    /// Every folder it `use`s (and every local folder its `replace`s name), absolute.
    pub modules: Vec<Utf8PathBuf>,
}

/// The module setup of one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSetup {
    /// Where dependencies come from.
    pub deps: Deps,
    /// The go.work in effect, unless `go-work = false` or `GOWORK=off`.
    pub work: Option<GoWork>,
}

impl ModuleSetup {
    /// Reads go.mod, vendor/modules.txt and go.work around `app` the way the go command does.
    pub fn detect(app: &App) -> Result<ModuleSetup> {
        let work = find_go_work(app)?;
        let vendor_root = match &work {
            Some(work) => work
                .file
                .parent()
                .expect("a file has a folder")
                .to_path_buf(),
            None => app.dir.clone(),
        };
        let modules_txt = vendor_root.join("vendor/modules.txt");
        // Go uses vendor/ by itself when the go line says 1.14 or later (go.work: 1.22).
        let minimum = if work.is_some() { 22 } else { 14 };
        let go_line = match &work {
            Some(work) => go_line_minor(&read(&work.file)?),
            None => go_line_minor(&read(&app.dir.join("go.mod"))?),
        };
        let deps = if modules_txt.is_file() && go_line.is_some_and(|minor| minor >= minimum) {
            Deps::Vendor { modules_txt }
        } else {
            Deps::Modules
        };
        Ok(ModuleSetup { deps, work })
    }

    /// Whether dependencies come from vendor/.
    pub fn vendored(&self) -> bool {
        matches!(self.deps, Deps::Vendor { .. })
    }

    /// The `-mod` flag of every `go build`.
    pub fn mod_flag(&self) -> &'static str {
        if self.vendored() {
            "-mod=vendor"
        } else {
            "-mod=readonly"
        }
    }

    /// Files whose content is the deps key (besides the Go version): go.mod and
    /// go.sum, vendor/modules.txt, go.work and go.work.sum, and the go.mod and
    /// go.sum of every module the go.work uses. A missing file counts as empty.
    pub fn deps_files(&self, app: &App) -> Vec<Utf8PathBuf> {
        let mut files = vec![app.dir.join("go.mod"), app.dir.join("go.sum")];
        if let Deps::Vendor { modules_txt } = &self.deps {
            files.push(modules_txt.clone());
        }
        if let Some(work) = &self.work {
            files.push(work.file.clone());
            files.push(work.file.with_extension("work.sum"));
            for module in &work.modules {
                files.push(module.join("go.mod"));
                files.push(module.join("go.sum"));
            }
        }
        files.sort();
        files.dedup();
        files
    }

    /// Folders besides the app's own module whose sources go into the binary:
    /// local `replace` targets and the modules of the go.work.
    pub fn source_folders(&self, app: &App) -> Result<Vec<Utf8PathBuf>> {
        let mut folders: Vec<Utf8PathBuf> = local_replacements(&read(&app.dir.join("go.mod"))?)
            .into_iter()
            .map(|target| normalize(&app.dir.join(target)))
            .collect();
        if let Some(work) = &self.work {
            folders.extend(work.modules.iter().cloned());
        }
        folders.retain(|folder| folder != &app.dir);
        folders.sort();
        folders.dedup();
        Ok(folders)
    }

    /// Everything the app is built from, for the version control history:
    /// its module folder, the other source folders, go.work and go.work.sum.
    pub fn input_paths(&self, app: &App) -> Result<Vec<Utf8PathBuf>> {
        let mut paths = vec![app.dir.clone()];
        paths.extend(self.source_folders(app)?);
        if let Some(work) = &self.work {
            paths.push(work.file.clone());
            paths.push(work.file.with_extension("work.sum"));
        }
        Ok(paths)
    }
}

/// The go.work in effect for `app`: `GOWORK` (env of the app, then of the
/// process; `off` disables it), else the nearest go.work above the module.
fn find_go_work(app: &App) -> Result<Option<GoWork>> {
    if !app.config.go_work {
        return Ok(None);
    }
    let setting = app
        .config
        .env
        .get("GOWORK")
        .cloned()
        .or_else(|| crate::environment::var("GOWORK"))
        .filter(|v| !v.is_empty());
    let file = match setting.as_deref() {
        Some("off") => return Ok(None),
        Some(path) => {
            let path = Utf8Path::new(path);
            if !path.is_absolute() {
                return Err(Error::Invalid {
                    path: format!("GOWORK={path}"),
                    message: "GOWORK must be an absolute path or `off`".into(),
                    help: "set GOWORK to the go.work file's absolute path, or unset it".into(),
                });
            }
            path.to_path_buf()
        }
        None => match app
            .dir
            .ancestors()
            .map(|d| d.join("go.work"))
            .find(|f| f.is_file())
        {
            Some(file) => file,
            None => return Ok(None),
        },
    };
    let text = read(&file)?;
    let folder = file.parent().expect("a file has a folder");
    let mut modules: Vec<Utf8PathBuf> = work_uses(&text)
        .into_iter()
        .chain(local_replacements(&text))
        .map(|dir| normalize(&folder.join(dir)))
        .collect();
    modules.sort();
    modules.dedup();
    if !modules.contains(&app.dir) {
        return Err(Error::Invalid {
            path: file.to_string(),
            message: format!(
                "the module of `{}` ({}) is not in this go.work's `use` list, so go would refuse to build it",
                app.name(),
                app.dir
            ),
            help: format!(
                "add `use {}` to {file}, or set `go-work = false` in the app's config to build it alone (GOWORK=off)",
                pathdiff(&app.dir, folder)
            ),
        });
    }
    Ok(Some(GoWork { file, modules }))
}

/// The folders of go.work's `use` directives (single-line and block form).
pub fn work_uses(text: &str) -> Vec<String> {
    let mut uses = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        if in_block {
            if line == ")" {
                in_block = false;
            } else if !line.is_empty() {
                uses.push(unquote(line));
            }
        } else if let Some(rest) = line.strip_prefix("use") {
            let rest = rest.trim();
            if rest == "(" {
                in_block = true;
            } else if !rest.is_empty() && (line.starts_with("use ") || line.starts_with("use\t")) {
                uses.push(unquote(rest));
            }
        }
    }
    uses
}

fn unquote(word: &str) -> String {
    word.trim().trim_matches('"').trim_matches('`').to_string()
}

/// The minor version of a `go 1.N[.P]` line.
pub fn go_line_minor(text: &str) -> Option<u32> {
    text.lines()
        .filter_map(|line| line.split("//").next()?.trim().strip_prefix("go "))
        .find_map(|version| {
            let mut parts = version.trim().split('.');
            (parts.next()? == "1").then_some(())?;
            let minor = parts.next()?.split(|c: char| !c.is_ascii_digit()).next()?;
            minor.parse().ok()
        })
}

/// Whether go.mod requires any module (then go.sum must exist).
pub fn has_requirements(go_mod: &str) -> bool {
    go_mod.lines().any(|line| {
        let line = line.split("//").next().unwrap_or_default().trim();
        line.starts_with("require ") || line.starts_with("require\t") || line == "require ("
    })
}

/// `a/./b/../c` → `a/c`, without touching the filesystem.
pub fn normalize(path: &Utf8Path) -> Utf8PathBuf {
    let mut out = Utf8PathBuf::new();
    for component in path.components() {
        match component {
            camino::Utf8Component::CurDir => {}
            camino::Utf8Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_str()),
        }
    }
    out
}

fn pathdiff(path: &Utf8Path, base: &Utf8Path) -> String {
    match path.strip_prefix(base) {
        Ok(rest) => format!("./{rest}"),
        Err(_) => path.to_string(),
    }
}

fn read(path: &Utf8Path) -> Result<String> {
    crate::config::confine::read_text(path).at(path, "read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_work_uses_and_go_lines() {
        let text = "go 1.22\n\nuse ./app // the app\nuse (\n\t./lib\n\t\"./other lib\"\n)\n";
        assert_eq!(work_uses(text), vec!["./app", "./lib", "./other lib"]);
        assert_eq!(go_line_minor(text), Some(22));
        assert_eq!(go_line_minor("module x\n\ngo 1.13\n"), Some(13));
        assert_eq!(go_line_minor("module x\n"), None);
        assert!(has_requirements("module x\nrequire example.com/a v1.0.0\n"));
        assert!(has_requirements("module x\nrequire (\n\ta v1\n)\n"));
        assert!(!has_requirements("module x\n\ngo 1.22\n"));
        assert_eq!(normalize(Utf8Path::new("/a/b/./../c")), "/a/c");
    }
}
