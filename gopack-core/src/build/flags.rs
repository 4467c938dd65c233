//! The flags of `go build`: the idioms' (`-trimpath`, `-ldflags="-s -w"`,
//! no build id), the app's ldflags and tags, the version stamp, and what cgo
//! and an embedded zoneinfo add.

use super::cgo;
use crate::config::{App, Tzdata};
use crate::error::Result;
use crate::gomod::ModuleSetup;

/// The flags gopack passes to `go build`.
#[derive(Debug, Clone)]
pub struct BuildFlags {
    /// `-mod=readonly` or `-mod=vendor`.
    pub mod_flag: &'static str,
    /// The value of `-ldflags`.
    pub ldflags: String,
    /// The value of `-tags` (comma separated), maybe empty.
    pub tags: String,
}

impl BuildFlags {
    /// The idioms' flags plus the app's ldflags, tags and version stamp (`version`,
    /// used when the app has a `version-variable`).
    pub fn for_app(app: &App, version: &str, setup: &ModuleSetup) -> Result<BuildFlags> {
        let mut ldflags = vec!["-s".to_string(), "-w".into(), "-buildid=".into()];
        if let Some(variable) = &app.config.version_variable {
            ldflags.push("-X".into());
            ldflags.push(quote_ldflag(&format!("{variable}={version}")));
        }
        if app.config.cgo == crate::config::Cgo::Static {
            ldflags.push(cgo::STATIC_LDFLAGS.into());
        }
        ldflags.extend(app.config.ldflags.iter().cloned());
        let mut tags = app.config.tags.clone();
        if app.config.cgo == crate::config::Cgo::Static {
            for tag in cgo::STATIC_TAGS {
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_string());
                }
            }
        }
        if app.config.tzdata == Tzdata::Embed && !tags.iter().any(|t| t == "timetzdata") {
            tags.push("timetzdata".into());
        }
        Ok(BuildFlags {
            mod_flag: setup.mod_flag(),
            ldflags: ldflags.join(" "),
            tags: tags.join(","),
        })
    }

    /// The arguments after `go build`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-trimpath".to_string(),
            "-buildvcs=false".into(),
            self.mod_flag.into(),
            format!("-ldflags={}", self.ldflags),
        ];
        if !self.tags.is_empty() {
            args.push(format!("-tags={}", self.tags));
        }
        args
    }
}

/// Quotes one `-ldflags` word for Go's flag splitter when it has spaces.
fn quote_ldflag(word: &str) -> String {
    if word.contains(char::is_whitespace) {
        format!("'{}'", word.replace('\'', ""))
    } else {
        word.to_string()
    }
}

/// The main package as `go build` needs it: `cmd/api` is `./cmd/api` (not a
/// standard-library import path).
pub fn main_package(main: &str) -> String {
    if main == "." || main == ".." || main.starts_with("./") || main.starts_with("../") {
        main.to_string()
    } else {
        format!("./{}", main.trim_start_matches('/'))
    }
}
