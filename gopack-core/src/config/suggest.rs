//! "Did you mean …": the nearest known name to a mistyped one, by edit
//! distance, for unknown config keys and app names, plus the hints for the
//! mistakes users make most (`env` for `build-env`, `[apps]` for `[[apps]]`).

/// The candidate closest to `word` within a small edit distance, if any.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// A help line for serde's error `message` at config `key`, when gopack can
/// say more than "fix the key": the renamed `env`, a near key name, or
/// single brackets around `apps`.
pub fn config_help(key: &str, message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (unknown, rest) = rest.split_once('`')?;
        if unknown == "env" {
            return Some(
                "`env` is now `build-env` (the environment of `go build`); the image's own \
                 environment is `image-env`"
                    .into(),
            );
        }
        let expected = rest.split_once("expected one of ")?.1;
        let known: Vec<&str> = expected
            .split(", ")
            .map(|k| k.trim_matches(|c| c == '`' || c == ','))
            .collect();
        // A Dockerfile's words for the image's command line: gopack's is `args`.
        if matches!(unknown, "cmd" | "command" | "CMD") && known.contains(&"args") {
            return Some(
                "did you mean `args`? the image's default arguments (its CMD) are `args = [...]`; \
                 the ENTRYPOINT is always the app's binary"
                    .into(),
            );
        }
        return nearest(unknown, known.iter().copied()).map(|k| format!("did you mean `{k}`?"));
    }
    if key.ends_with(".apps") && message.contains("expected a sequence") {
        return Some(
            "declare each app as an array of tables, with double brackets: \
             [[workspace.metadata.gopack.apps]]"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names() {
        let keys = ["platforms", "version", "version-variable", "tags"];
        assert_eq!(nearest("platform", keys), Some("platforms"));
        assert_eq!(nearest("verison", keys), Some("version"));
        assert_eq!(nearest("colour", keys), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn helps() {
        assert_eq!(
            config_help(
                "x.apps[0]",
                "unknown field `platfroms`, expected one of `name`, `platforms`"
            )
            .as_deref(),
            Some("did you mean `platforms`?")
        );
        assert!(config_help(
            "x.apps[0]",
            "unknown field `cmd`, expected one of `name`, `args`, `main`"
        )
        .unwrap()
        .starts_with("did you mean `args`?"));
        assert!(
            config_help("x", "unknown field `env`, expected one of `build-env`")
                .unwrap()
                .contains("build-env")
        );
        assert!(config_help(
            "workspace.metadata.gopack.apps",
            "invalid type: map, expected a sequence"
        )
        .unwrap()
        .contains("[[workspace.metadata.gopack.apps]]"));
    }
}
