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
        let answer = super::memo::cargo_metadata(manifest_path).map_err(|e| match e {
            Error::Metadata { message } => metadata_error(message),
            other => other,
        })?;
        let manifest = answer.root.join("Cargo.toml");
        let value = answer.gopack.ok_or_else(|| Error::Config {
            manifest: manifest.clone(),
            key: "workspace.metadata.gopack".into(),
            message: "there is no gopack configuration".into(),
            help: "add a table like\n  [[workspace.metadata.gopack.apps]]\n  name = \"api\"\n  path = \"services/api\"  # the folder with go.mod".into(),
        })?;
        Workspace::from_value(answer.root, answer.target_dir, &value, environment)
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
    if let Some(prefix) = &config.registry {
        crate::reference::parse_prefix(prefix).map_err(|message| Error::Config {
            manifest: manifest.to_path_buf(),
            key: "workspace.metadata.gopack.registry".into(),
            message,
            help: crate::reference::PREFIX_HELP.into(),
        })?;
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

/// The error of a failed `cargo metadata`: a manifest that is not valid TOML
/// is the user's file at a line (code `invalid`, exit status 2), not a bug;
/// anything else is a `metadata` error with cargo's words.
fn metadata_error(message: String) -> Error {
    let message = message.trim_end().to_string();
    match toml_error_at(&message) {
        Some((file, line, column)) => {
            let cargo_says = message
                .trim_start_matches("`cargo metadata` exited with an error: ")
                .trim_start_matches("error: ");
            Error::Invalid {
                path: format!("{file}:{line}:{column}"),
                message: format!("not valid TOML: {cargo_says}"),
                help: format!(
                    "fix the TOML syntax at line {line} of {file}; until it parses, `cargo \
                     xtask` itself cannot start (cargo exits 101 before gopack runs)"
                ),
            }
        }
        None => Error::Metadata { message },
    }
}

/// Where cargo says a manifest is not TOML: `--> Cargo.toml:14:17` (relative
/// to this process's folder, where cargo ran), or, from older cargos,
/// "failed to parse manifest at `FILE`" and "TOML parse error at line L, column C".
fn toml_error_at(message: &str) -> Option<(Utf8PathBuf, String, String)> {
    let absolute = |file: &str| {
        let file = Utf8PathBuf::from(file);
        match std::env::current_dir()
            .ok()
            .and_then(|d| Utf8PathBuf::from_path_buf(d).ok())
        {
            Some(cwd) if file.is_relative() => cwd.join(file),
            _ => file,
        }
    };
    if let Some(at) = message.lines().find_map(|l| l.trim().strip_prefix("--> ")) {
        let mut parts = at.trim().rsplitn(3, ':');
        let column = parts.next()?.to_string();
        let line = parts.next()?.to_string();
        let file = parts.next()?;
        if file.ends_with(".toml") && line.parse::<u32>().is_ok() {
            return Some((absolute(file), line, column));
        }
    }
    let rest = message.split_once("TOML parse error at line ")?.1;
    let (line, rest) = rest.split_once(", column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let file = message
        .split_once("failed to parse manifest at `")?
        .1
        .split_once('`')?
        .0;
    Some((absolute(file), line.trim().to_string(), column))
}
