//! Quoting for the two languages a Dockerfile mixes: shell words in `RUN`
//! and Dockerfile values, plus exec-form JSON arrays.

/// One shell word: bare when safe, else double-quoted with `${VERSION}` left to expand.
pub(super) fn sh_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if safe {
        return word.to_string();
    }
    let mut quoted = String::from("\"");
    for c in word.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted.replace("\\${VERSION}", "${VERSION}")
}

/// A Dockerfile word: bare when safe, else a double-quoted string.
pub(super) fn docker_word(value: &str) -> String {
    let safe = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+:@".contains(c));
    if safe && !value.is_empty() {
        value.to_string()
    } else {
        docker_string(value)
    }
}

/// A double-quoted Dockerfile value with no variable expansion.
pub(super) fn docker_string(value: &str) -> String {
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' | '\\' | '$' => {
                quoted.push('\\');
                quoted.push(c)
            }
            '\n' => quoted.push_str("\\n"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

pub(super) fn json_array(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}
