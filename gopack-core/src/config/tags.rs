//! Image tags from templates: `image-tags = ["{{version}}", "{{major}}.{{minor}}", "latest"]`.
//!
//! Placeholders: `{{version}}` (the app version as a tag), `{{major}}`, `{{minor}}`,
//! `{{patch}}` (from a `vMAJOR.MINOR.PATCH` version without pre-release), and
//! `{{revision}}` (the commit, 7 characters). A template whose placeholder has no
//! value (a version that is not semver, no git commit) is skipped with a note.
//! Templates are checked when the config is read; every rendered tag is checked
//! against the OCI tag grammar before anything is built.

/// The help line of a bad template.
pub const HELP: &str = "use literal tag characters (letters, digits, `_`, `.`, `-`) and the \
     placeholders {{version}}, {{major}}, {{minor}}, {{patch}}, {{revision}}";

const PLACEHOLDERS: &[&str] = &["version", "major", "minor", "patch", "revision"];

/// Checks templates; on failure returns the index and why.
pub fn check_templates(templates: &[String]) -> Result<(), (usize, String)> {
    if templates.is_empty() {
        return Err((0, "there must be at least one tag".into()));
    }
    for (index, template) in templates.iter().enumerate() {
        let parts = split(template).map_err(|m| (index, m))?;
        // The rendered tag is checked again; literals are checked here so that a
        // typo fails when the config is read, whatever the version.
        let sample: String = parts
            .iter()
            .map(|p| match p {
                Part::Literal(text) => text.as_str(),
                Part::Placeholder(_) => "1",
            })
            .collect();
        if !is_tag(&sample) {
            return Err((
                index,
                format!(
                    "`{template}` does not make a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"
                ),
            ));
        }
    }
    Ok(())
}

/// What the placeholders stand for.
#[derive(Debug, Clone, Default)]
pub struct Values {
    /// The version as a tag.
    pub version: String,
    /// The version as written (for semver).
    pub raw_version: String,
    /// The commit, when known.
    pub revision: Option<String>,
}

/// The rendered tags, in order, each once; and notes about templates skipped.
pub fn render(templates: &[String], values: &Values) -> Result<(Vec<String>, Vec<String>), String> {
    let semver = semver(&values.raw_version);
    let mut tags: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    for template in templates {
        let mut tag = String::new();
        let mut missing = None;
        for part in split(template)? {
            match part {
                Part::Literal(text) => tag.push_str(&text),
                Part::Placeholder(name) => {
                    let value = match name.as_str() {
                        "version" => Some(values.version.clone()),
                        "major" => semver.map(|v| v.0.to_string()),
                        "minor" => semver.map(|v| v.1.to_string()),
                        "patch" => semver.map(|v| v.2.to_string()),
                        _ => values
                            .revision
                            .as_ref()
                            .map(|r| r.chars().take(7).collect()),
                    };
                    match value {
                        Some(value) => tag.push_str(&value),
                        None => {
                            missing = Some(name);
                            break;
                        }
                    }
                }
            }
        }
        if let Some(name) = missing {
            let why = if name == "revision" {
                "there is no git commit".to_string()
            } else {
                format!(
                    "version `{}` is not a release version (vMAJOR.MINOR.PATCH)",
                    values.raw_version
                )
            };
            notes.push(format!("tag template `{template}` skipped: {why}"));
            continue;
        }
        if !is_tag(&tag) {
            return Err(format!(
                "tag template `{template}` gives `{tag}`, which is not a valid tag"
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        return Err("every tag template was skipped: the image would have no tag".into());
    }
    Ok((tags, notes))
}

/// The default tags: the version, and `latest`.
pub fn default_tags(version_tag: &str) -> Vec<String> {
    let mut tags = vec![version_tag.to_string()];
    if version_tag != "latest" {
        tags.push("latest".into());
    }
    tags
}

/// The OCI tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `v1.2.3`/`1.2.3` (optionally `+build`) → (1, 2, 3); pre-releases are not release versions.
fn semver(version: &str) -> Option<(u64, u64, u64)> {
    let version = version.strip_prefix('v').unwrap_or(version);
    let version = version.split('+').next()?;
    let mut parts = version.split('.');
    let number = |p: Option<&str>| -> Option<u64> {
        let p = p?;
        (!p.is_empty()
            && p.chars().all(|c| c.is_ascii_digit())
            && (p == "0" || !p.starts_with('0')))
        .then(|| p.parse().ok())
        .flatten()
    };
    let triple = (
        number(parts.next())?,
        number(parts.next())?,
        number(parts.next())?,
    );
    parts.next().is_none().then_some(triple)
}

enum Part {
    Literal(String),
    Placeholder(String),
}

fn split(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("`{template}` has an unclosed `{{{{`"))?;
        let name = after[..end].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "`{template}`: unknown placeholder `{{{{{name}}}}}`"
            ));
        }
        parts.push(Part::Placeholder(name.to_string()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(templates: &[&str], version: &str) -> (Vec<String>, Vec<String>) {
        let templates: Vec<String> = templates.iter().map(|t| t.to_string()).collect();
        let values = Values {
            version: version.into(),
            raw_version: version.into(),
            revision: Some("0123456789abcdef".into()),
        };
        render(&templates, &values).unwrap()
    }

    #[test]
    fn semver_and_other_versions() {
        let templates = [
            "{{version}}",
            "{{major}}.{{minor}}",
            "{{major}}",
            "latest",
            "sha-{{revision}}",
        ];
        let (t, notes) = tags(&templates, "v1.4.2");
        assert_eq!(t, ["v1.4.2", "1.4", "1", "latest", "sha-0123456"]);
        assert!(notes.is_empty());
        let (t, notes) = tags(&templates, "v1.4.2-rc.1");
        assert_eq!(t, ["v1.4.2-rc.1", "latest", "sha-0123456"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("not a release version"), "{notes:?}");
        let (t, _) = tags(&templates, "3f2a1b0-dirty");
        assert_eq!(t, ["3f2a1b0-dirty", "latest", "sha-0123456"]);
        let (t, _) = tags(&["{{version}}", "latest"], "latest");
        assert_eq!(t, ["latest"]);
    }

    #[test]
    fn templates_are_checked() {
        let check =
            |t: &[&str]| check_templates(&t.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(check(&["{{version}}", "{{major}}.{{minor}}", "latest"]).is_ok());
        assert_eq!(check(&["ok", "{{verison}}"]).unwrap_err().0, 1);
        assert!(check(&["a/b"]).unwrap_err().1.contains("valid tag"));
        assert!(check(&["-x{{version}}"]).is_err());
        assert!(check(&["{{version"]).unwrap_err().1.contains("unclosed"));
        assert!(check(&[]).is_err());
        assert_eq!(semver("1.02.3"), None);
        assert_eq!(semver("v10.2.3+meta"), Some((10, 2, 3)));
    }
}
