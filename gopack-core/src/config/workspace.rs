//! Loading the workspace: `cargo metadata`, the `gopack` table through serde
//! (errors named by key path), the environment, and the CLI's overrides.

use super::schema::{App, Config, Overrides};
use super::validate::{check_user, check_version, validate};
use super::{settings, suggest, DOCS};
use crate::error::{Error, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// The cargo workspace and its gopack configuration.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root folder.
    pub root: Utf8PathBuf,
    /// The root Cargo.toml.
    pub manifest: Utf8PathBuf,
    /// Cargo's target folder; gopack writes under `<target>/gopack/`.
    pub target_dir: Utf8PathBuf,
    /// The parsed configuration.
    pub config: Config,
    /// The environment variables gopack honours, as given (checked when loaded).
    pub environment: settings::Environment,
    apps: Vec<App>,
}

impl Workspace {
    /// Reads the workspace around the current folder, or the given manifest,
    /// with the environment variables of this process ([`settings::Environment::from_process`]).
    pub fn load(manifest_path: Option<&Utf8Path>) -> Result<Workspace> {
        Workspace::load_with(manifest_path, settings::Environment::from_process())
    }

    /// Reads the workspace around the current folder, or the given manifest,
    /// with the environment variables the caller read.
    pub fn load_with(
        manifest_path: Option<&Utf8Path>,
        environment: settings::Environment,
    ) -> Result<Workspace> {
        let metadata = cargo_metadata(manifest_path)?;
        let root = metadata.workspace_root.clone();
        let manifest = root.join("Cargo.toml");
        let value = metadata
            .workspace_metadata
            .get("gopack")
            .cloned()
            .ok_or_else(|| Error::Config {
                manifest: manifest.clone(),
                key: "workspace.metadata.gopack".into(),
                message: "there is no gopack configuration".into(),
                help: "add a table like\n  [[workspace.metadata.gopack.apps]]\n  name = \"api\"\n  path = \"services/api\"  # the folder with go.mod".into(),
            })?;
        Workspace::from_value(root, metadata.target_directory.clone(), &value, environment)
    }

    /// Builds a workspace from an already-read `gopack` table.
    pub fn from_value(
        root: Utf8PathBuf,
        target_dir: Utf8PathBuf,
        value: &serde_json::Value,
        environment: settings::Environment,
    ) -> Result<Workspace> {
        let manifest = root.join("Cargo.toml");
        let config: Config = serde_path_to_error::deserialize(value).map_err(|err| {
            let key = match err.path().to_string().as_str() {
                "." => "workspace.metadata.gopack".to_string(),
                path => format!("workspace.metadata.gopack.{path}"),
            };
            let message = err.inner().to_string();
            let help = suggest::config_help(&key, &message).unwrap_or_else(|| {
                format!("fix the key or its value; {DOCS}/configuration.md lists every key")
            });
            Error::Config {
                manifest: manifest.clone(),
                key,
                message,
                help,
            }
        })?;
        let source_date_epoch = check_environment(&config, &manifest, &environment)?;
        let mut apps = validate(&config, &root, &manifest)?;
        for app in &mut apps {
            app.source_date_epoch = source_date_epoch;
        }
        Ok(Workspace {
            root,
            manifest,
            target_dir,
            config,
            environment,
            apps,
        })
    }

    /// Every configured app.
    pub fn all_apps(&self) -> &[App] {
        &self.apps
    }

    /// The apps named on the command line; all of them when none is named.
    pub fn select(&self, names: &[String], overrides: &Overrides) -> Result<Vec<App>> {
        let mut chosen = Vec::new();
        if names.is_empty() {
            chosen.extend(self.apps.iter().cloned());
        }
        for name in names {
            let app =
                self.apps
                    .iter()
                    .find(|a| a.name() == name)
                    .ok_or_else(|| Error::UnknownApp {
                        name: name.clone(),
                        manifest: self.manifest.clone(),
                        suggestion: suggest::nearest(name, self.apps.iter().map(|a| a.name()))
                            .map(|n| format!("did you mean `{n}`? "))
                            .unwrap_or_default(),
                        known: self
                            .apps
                            .iter()
                            .map(|a| a.name().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
            if !chosen.iter().any(|a: &App| a.name() == name) {
                chosen.push(app.clone());
            }
        }
        if chosen.is_empty() {
            return Err(Error::Config {
                manifest: self.manifest.clone(),
                key: "workspace.metadata.gopack.apps".into(),
                message: "no app is configured".into(),
                help: "add an [[workspace.metadata.gopack.apps]] entry with name and path".into(),
            });
        }
        for app in &mut chosen {
            apply_overrides(app, overrides)?;
        }
        Ok(chosen)
    }

    /// `<target>/gopack`: everything gopack writes.
    pub fn out_dir(&self) -> Utf8PathBuf {
        self.target_dir.join("gopack")
    }

    /// The cache folder: `$GOPACK_CACHE_DIR`, else `cache-dir`, else `<target>/gopack/cache`.
    pub fn cache_dir(&self) -> Utf8PathBuf {
        // Checked when the workspace was loaded; an unusable value is an error there.
        if let Ok(Some(dir)) = settings::cache_dir_env(&self.environment) {
            return self.root.join(dir);
        }
        match &self.config.cache_dir {
            Some(dir) => self.root.join(dir),
            None => self.out_dir().join("cache"),
        }
    }
}

fn apply_overrides(app: &mut App, overrides: &Overrides) -> Result<()> {
    if !overrides.platforms.is_empty() {
        for (i, platform) in overrides.platforms.iter().enumerate() {
            if overrides.platforms[..i].contains(platform) {
                return Err(Error::Flag {
                    flag: "--platform".into(),
                    message: format!("`{platform}` is given twice"),
                    help: "name every platform once".into(),
                });
            }
        }
        app.config.platforms = overrides.platforms.clone();
    }
    let user = &mut app.config.user;
    if let Some(name) = &overrides.user_name {
        user.name = name.clone();
    }
    if let Some(uid) = overrides.uid {
        user.uid = uid;
    }
    if let Some(gid) = overrides.gid {
        user.gid = Some(gid);
    }
    if let Some(version) = &overrides.version {
        check_version(version).map_err(|r| Error::Flag {
            flag: "--app-version".into(),
            message: r.message,
            help: r.help,
        })?;
        app.config.version = Some(version.clone());
    }
    if let Some(cgo) = overrides.cgo {
        app.config.cgo = cgo;
    }
    check_user(user).map_err(|(field, message)| Error::Flag {
        flag: format!("--{}", field.replace("name", "user-name")),
        message,
        help: "pass a non-zero id and a lower-case name".into(),
    })
}

/// The environment gopack reads, checked once when the workspace is loaded;
/// gives `SOURCE_DATE_EPOCH`.
fn check_environment(
    config: &Config,
    manifest: &Utf8Path,
    environment: &settings::Environment,
) -> Result<Option<u64>> {
    let env_error = |var: &str, r: settings::Refusal| Error::Flag {
        flag: format!("environment variable {var}"),
        message: r.message,
        help: r.help,
    };
    let epoch =
        settings::source_date_epoch(environment).map_err(|r| env_error("SOURCE_DATE_EPOCH", r))?;
    settings::cache_dir_env(environment).map_err(|r| env_error("GOPACK_CACHE_DIR", r))?;
    if config
        .cache_dir
        .as_ref()
        .is_some_and(|d| d.as_str().is_empty())
    {
        return Err(Error::Config {
            manifest: manifest.to_path_buf(),
            key: "workspace.metadata.gopack.cache-dir".into(),
            message: "the value is empty".into(),
            help: "write a folder path (relative to the workspace root), or remove the key to use <target>/gopack/cache".into(),
        });
    }
    if let Some(reference) = &config.cache_registry {
        crate::reference::check_reference(reference).map_err(|message| Error::Config {
            manifest: manifest.to_path_buf(),
            key: "workspace.metadata.gopack.cache-registry".into(),
            message,
            help: crate::reference::REFERENCE_HELP.into(),
        })?;
    }
    Ok(epoch)
}

/// `cargo metadata --no-deps` (the cargo that runs us, `$CARGO`, else the
/// one on PATH), run as every child is ([`crate::process::Cmd`]: bounded in
/// time, its stderr kept for the error).
fn cargo_metadata(manifest_path: Option<&Utf8Path>) -> Result<cargo_metadata::Metadata> {
    let cargo = std::env::var("CARGO")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let path = which::which("cargo").ok()?;
            path.to_str().map(String::from)
        })
        .ok_or_else(|| Error::Metadata {
            message: "cargo is not on PATH (gopack reads the workspace with `cargo metadata`)"
                .into(),
        })?;
    let mut cmd = crate::process::Cmd::new("cargo", cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .query();
    if let Some(path) = manifest_path {
        cmd = cmd.arg("--manifest-path").arg(path.as_str());
    }
    let text = cmd.read().map_err(|err| Error::Metadata {
        message: match err {
            Error::Command { output, .. } if !output.trim().is_empty() => {
                format!(
                    "`cargo metadata` exited with an error: {}",
                    output.trim_end()
                )
            }
            Error::Command { status, .. } => format!("`cargo metadata` {status}"),
            other => other.message(),
        },
    })?;
    cargo_metadata::MetadataCommand::parse(text).map_err(|e| Error::Metadata {
        message: e.to_string(),
    })
}
