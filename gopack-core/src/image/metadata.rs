//! What an image records about where it came from: version, revision,
//! source, and the one timestamp every file and document uses. All of it is
//! scoped to the app's own inputs (see `crate::vcs`).

use crate::config::App;
use crate::error::Result;
use crate::gomod::ModuleSetup;
use crate::report::{Event, Reporter};
use crate::vcs;

/// Version, revision and time of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMetadata {
    /// The app version (config, `--app-version`, or the app's history).
    pub version: String,
    /// The version as an image tag.
    pub tag: String,
    /// The last commit that touched the app's inputs.
    pub revision: Option<String>,
    /// The repository URL, from the `origin` remote, without credentials.
    pub source: Option<String>,
    /// Seconds since the epoch: `SOURCE_DATE_EPOCH`, else the time of the app's last commit, else 0.
    pub epoch: u64,
    /// The input files whose uncommitted changes made the version `-dirty`
    /// (relative to the repository); empty when the version was chosen.
    pub dirty: Vec<String>,
}

impl ImageMetadata {
    /// Reads the metadata for `app` from the history of its inputs; tells the
    /// reporter when there is no history or the inputs have uncommitted changes.
    pub fn read(app: &App, reporter: &dyn Reporter) -> Result<ImageMetadata> {
        Self::read_remembering(app, None, reporter)
    }

    /// [`ImageMetadata::read`], remembering git's answers in `cache` (see `crate::vcs`).
    pub fn read_remembering(
        app: &App,
        cache: Option<&crate::cache::Cache>,
        reporter: &dyn Reporter,
    ) -> Result<ImageMetadata> {
        Self::read_with(app, cache, None, reporter)
    }

    /// [`ImageMetadata::read_remembering`], with the uncommitted files taken
    /// from `changes` (one `git status` for every app of a run).
    pub fn read_with(
        app: &App,
        cache: Option<&crate::cache::Cache>,
        changes: Option<&vcs::Changes>,
        reporter: &dyn Reporter,
    ) -> Result<ImageMetadata> {
        let setup = ModuleSetup::detect(app)?;
        let history = vcs::revision_with(&app.dir, &setup.input_paths(app)?, cache, changes);
        let source_date_epoch = app.source_date_epoch;
        for message in history.warnings(app.name()) {
            // Chosen version and date leave nothing to warn about when history is missing.
            if history.missing.is_some()
                && app.config.version.is_some()
                && source_date_epoch.is_some()
            {
                continue;
            }
            reporter.report(Event::Warning { message });
        }
        let dirty = match app.config.version {
            Some(_) => Vec::new(),
            None => history.dirty,
        };
        let version = app.config.version.clone().unwrap_or(history.version);
        let epoch = source_date_epoch.or(history.time).unwrap_or(0);
        // A local path as origin (a clone of a clone) is no source anyone else can open.
        let source = history
            .origin
            .filter(|url| url.contains("://") || url.starts_with("git@"))
            .map(|url| clean_url(&url));
        let revision = history.commit;
        let tag = tag_for(&version);
        if tag != version {
            // A configured version is refused when it is no tag; one from git is rewritten, said.
            reporter.report(Event::Note {
                message: format!(
                    "{}: the version `{version}` (from git) is not a valid image tag; it is tagged \
                     `{tag}` (a tag holds only letters, digits, `_`, `.` and `-`)",
                    app.name()
                ),
            });
        }
        Ok(ImageMetadata {
            tag,
            version,
            revision,
            source,
            epoch,
            dirty,
        })
    }

    /// The epoch as RFC 3339, e.g. `2024-01-01T00:00:00Z`.
    pub fn created(&self) -> String {
        rfc3339(self.epoch)
    }
}

/// A version as a valid image tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn tag_for(version: &str) -> String {
    let mut tag: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if tag.is_empty() || tag.starts_with(['.', '-']) {
        tag.insert(0, '_');
        tag.truncate(128);
    }
    tag
}

/// `git@host:org/repo.git` and `https://user:token@host/org/repo.git` → `https://host/org/repo`.
pub fn clean_url(url: &str) -> String {
    let url = url.trim().trim_end_matches(".git");
    if let Some(rest) = url.strip_prefix("git@") {
        if let Some((host, path)) = rest.split_once(':') {
            return format!("https://{host}/{path}");
        }
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
        return format!("{scheme}://{rest}");
    }
    url.to_string()
}

/// Formats seconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn tags_and_urls() {
        assert_eq!(tag_for("v1.2.3-4-gabc-dirty"), "v1.2.3-4-gabc-dirty");
        assert_eq!(tag_for("feature/x+y"), "feature-x-y");
        assert_eq!(tag_for("-x"), "_-x");
        assert_eq!(
            clean_url("git@github.com:acme/api.git"),
            "https://github.com/acme/api"
        );
        assert_eq!(
            clean_url("https://me:tok@github.com/acme/api.git"),
            "https://github.com/acme/api"
        );
    }
}
