//! Checks of the image config: an exec-form entrypoint that is the app's
//! binary, and an environment that fixes no time zone or locale unasked.

use super::{Check, CheckId, Expectations, LOCALE_VARS, SHELLS};
use crate::oci::documents::RunSettings;
use crate::verify::report::Status;

pub(super) fn entrypoint_config_check(
    config: &RunSettings,
    program: &Option<String>,
    expect: &Expectations,
) -> Check {
    let entrypoint = config.entrypoint.clone().unwrap_or_default();
    let cmd = config.cmd.clone().unwrap_or_default();
    let Some(program) = program else {
        return Check::fail(
            CheckId::ConfigEntrypoint,
            "the config has neither Entrypoint nor Cmd",
        )
        .remedy("set an exec-form entrypoint: ENTRYPOINT [\"/go/bin/app\"]");
    };
    let words = if entrypoint.is_empty() {
        &cmd
    } else {
        &entrypoint
    };
    if words.len() >= 2
        && words[1] == "-c"
        && SHELLS.iter().any(|s| program.ends_with(&format!("/{s}")))
    {
        return Check::fail(
            CheckId::ConfigEntrypoint,
            format!("shell form: {words:?} needs a shell in the image"),
        )
        .remedy("use the exec form: ENTRYPOINT [\"/go/bin/app\"]");
    }
    if let Some(expected) = &expect.binary_path {
        if program != expected {
            return Check::fail(
                CheckId::ConfigEntrypoint,
                format!("the entrypoint is {program}, the app's binary path is {expected}"),
            )
            .remedy(
                "set ENTRYPOINT to the app's binary, or set `binary-path` in the app's config",
            );
        }
    }
    Check::pass(CheckId::ConfigEntrypoint, format!("exec form {words:?}"))
}

pub(super) fn env_check(env: &[String], expect: &Expectations, strict: bool) -> Check {
    let mut unexpected = Vec::new();
    let mut problems = Vec::new();
    let value = |key: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    };
    match (&expect.timezone, value("TZ")) {
        (None, Some(tz)) => unexpected.push(format!("TZ={tz}")),
        (Some(zone), Some(tz)) if tz != zone && tz != format!(":{zone}") => {
            problems.push(format!("TZ={tz}, the configured timezone is {zone}"))
        }
        (Some(zone), None) => {
            problems.push(format!("TZ is not set, the configured timezone is {zone}"))
        }
        _ => {}
    }
    for key in LOCALE_VARS {
        match (&expect.locale, value(key)) {
            (None, Some(v)) => unexpected.push(format!("{key}={v}")),
            (Some(locale), None) => problems.push(format!(
                "{key} is not set, the configured locale is {locale}"
            )),
            _ => {}
        }
    }
    if !problems.is_empty() {
        return Check::fail(CheckId::ConfigEnv, problems.join("; "))
            .remedy("set TZ, LANG, LANGUAGE and LC_ALL as the app's config says");
    }
    if unexpected.is_empty() {
        return Check::pass(
            CheckId::ConfigEnv,
            match (&expect.timezone, &expect.locale) {
                (None, None) => {
                    "no TZ, LANG, LANGUAGE or LC_ALL: neutral time zone and locale".to_string()
                }
                _ => "TZ and locale as configured".to_string(),
            },
        );
    }
    let status = if strict { Status::Fail } else { Status::Warn };
    Check::new(
        CheckId::ConfigEnv,
        status,
        format!("the config fixes {}", unexpected.join(", ")),
    )
    .remedy("stay neutral (UTC, UTF-8) and let clients present time and language; if a fixed zone or locale is really needed, set `timezone`/`locale` in the app's config")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::report::Status;

    #[test]
    fn env_rules() {
        let foreign = Expectations::default();
        let env = vec!["PATH=/bin".to_string(), "LANG=C.UTF-8".to_string()];
        assert_eq!(env_check(&env, &foreign, false).status, Status::Warn);
        assert_eq!(env_check(&env, &foreign, true).status, Status::Fail);
        let fixed = Expectations {
            timezone: Some("Europe/Paris".into()),
            ..Default::default()
        };
        let env = vec!["TZ=Europe/Paris".to_string()];
        assert_eq!(env_check(&env, &fixed, true).status, Status::Pass);
        assert_eq!(env_check(&[], &fixed, true).status, Status::Fail);
    }
}
