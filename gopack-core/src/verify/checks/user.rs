//! Checks of the user the image runs as: numeric ids, not root, and present
//! in the image's /etc/passwd and /etc/group.

use super::{Check, CheckId, Expectations, RunUser};
use crate::oci::documents::RunSettings;

/// `name:x:uid:gid:...` lines: (name, uid, gid).
pub(super) fn passwd_entries(text: &str) -> Vec<(String, u32, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect()
}

/// `name:x:gid:members` lines: (name, gid).
pub(super) fn group_entries(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .collect()
}

pub(super) fn user_checks(
    config: &RunSettings,
    passwd: Option<&str>,
    group: Option<&str>,
    expect: &Expectations,
) -> (Vec<Check>, RunUser) {
    let text = config.user.clone().unwrap_or_default();
    let users = passwd.map(passwd_entries).unwrap_or_default();
    let groups = group.map(group_entries).unwrap_or_default();
    let (user_part, group_part) = match text.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (text.clone(), None),
    };
    let mut checks = Vec::new();
    let numeric_user = user_part.parse::<u32>().ok();
    let numeric_group = group_part.as_deref().and_then(|g| g.parse::<u32>().ok());
    // numeric
    let wanted = match &expect.user {
        Some(u) => format!("{}:{}", u.uid, u.gid()),
        None => "10001:10001".into(),
    };
    checks.push(if text.is_empty() {
        Check::fail(CheckId::UserNumeric, "no USER: the container runs as root")
            .remedy(format!("set a numeric user: USER {wanted}"))
    } else if numeric_user.is_some() && numeric_group.is_some() {
        Check::pass(CheckId::UserNumeric, format!("USER {text}"))
    } else if let Some(gid) = numeric_user
        .filter(|_| group_part.is_none())
        .and_then(|uid| users.iter().find(|u| u.1 == uid))
        .map(|u| u.2)
        .filter(|gid| *gid != 0)
    {
        // The runtime takes the group from /etc/passwd, as it does here.
        Check::pass(
            CheckId::UserNumeric,
            format!("USER {text}: its group, gid {gid}, comes from /etc/passwd"),
        )
    } else if numeric_user.is_some() && group_part.is_none() {
        Check::warn(CheckId::UserNumeric, format!("USER {text} names no group, and /etc/passwd gives it none but root: the container runs with gid 0"))
            .remedy(format!("write both ids: USER {wanted}"))
    } else {
        Check::fail(CheckId::UserNumeric, format!("USER {text} uses names: runtimes (e.g. Kubernetes runAsNonRoot) cannot tell it is not root"))
            .remedy(format!("write numeric ids: USER {wanted}"))
    });
    // Resolve to ids.
    let uid = match (&numeric_user, user_part.as_str()) {
        (Some(uid), _) => Some(*uid),
        (None, "") => Some(0),
        (None, name) => users.iter().find(|u| u.0 == name).map(|u| u.1),
    };
    let gid = match (&numeric_group, group_part.as_deref()) {
        (Some(gid), _) => Some(*gid),
        (None, None) => uid
            .and_then(|uid| users.iter().find(|u| u.1 == uid).map(|u| u.2))
            .or(Some(0)),
        (None, Some(name)) => groups.iter().find(|g| g.0 == name).map(|g| g.1),
    };
    checks.push(match (uid, gid) {
        (Some(0), _) => Check::fail(CheckId::UserRoot, "the container runs as root (uid 0)")
            .remedy(format!("run as an unprivileged user: USER {wanted}, with that user in /etc/passwd")),
        (Some(uid), Some(0)) => Check::warn(CheckId::UserRoot, format!("uid {uid}, but the primary group is root (gid 0)"))
            .remedy(format!("give the user its own group: USER {wanted}")),
        (Some(uid), Some(gid)) => Check::pass(CheckId::UserRoot, format!("runs as uid {uid}, gid {gid}")),
        (Some(uid), None) => Check::warn(CheckId::UserRoot, format!("uid {uid}; the group `{}` is not in /etc/group", group_part.clone().unwrap_or_default())),
        (None, _) => Check::fail(CheckId::UserRoot, format!("cannot tell who `{user_part}` is: not in /etc/passwd, so the runtime refuses to start or falls back to root"))
            .remedy(format!("use numeric ids: USER {wanted}")),
    });
    // passwd and group
    let mut problems = Vec::new();
    let mut facts = Vec::new();
    if passwd.is_none() {
        problems.push("the image has no /etc/passwd".to_string());
    }
    let mut warnings = Vec::new();
    if group.is_none() {
        warnings.push("the image has no /etc/group".to_string());
    }
    if let Some(uid) = uid.filter(|_| passwd.is_some()) {
        match users.iter().find(|u| u.1 == uid) {
            Some((name, _, _)) => {
                facts.push(format!("uid {uid} is `{name}` in /etc/passwd"));
                if let Some(expected) = &expect.user {
                    if name != &expected.name {
                        problems.push(format!(
                            "uid {uid} is `{name}`, the app's user is `{}`",
                            expected.name
                        ));
                    }
                }
            }
            None => problems.push(format!("uid {uid} is not in /etc/passwd")),
        }
    }
    if let Some(gid) = gid.filter(|_| group.is_some()) {
        match groups.iter().find(|g| g.1 == gid) {
            Some((name, _)) => facts.push(format!("gid {gid} is `{name}` in /etc/group")),
            None => problems.push(format!("gid {gid} is not in /etc/group")),
        }
    }
    if let Some(expected) = &expect.user {
        if uid.is_some_and(|u| u != expected.uid) || gid.is_some_and(|g| g != expected.gid()) {
            problems.push(format!(
                "the image runs as {}:{}, the app's user is {}:{}",
                uid.map(|u| u.to_string()).unwrap_or("?".into()),
                gid.map(|g| g.to_string()).unwrap_or("?".into()),
                expected.uid,
                expected.gid()
            ));
        }
    }
    checks.push(if problems.is_empty() && !warnings.is_empty() {
        // The user resolves through /etc/passwd; only group names are lost.
        facts.extend(warnings);
        Check::warn(CheckId::UserPasswd, facts.join("; "))
            .remedy("add /etc/group with the user's group (e.g. `appuser:x:10001:`) so that tools can name it")
    } else if problems.is_empty() {
        Check::pass(CheckId::UserPasswd, facts.join("; "))
    } else {
        problems.extend(warnings);
        Check::fail(CheckId::UserPasswd, problems.join("; "))
            .remedy("add the user to /etc/passwd and its group to /etc/group (e.g. `appuser:x:10001:10001::/nonexistent:/sbin/nologin`), matching USER")
    });
    (checks, RunUser { uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let users = passwd_entries("root:x:0:0:root:/root:/sbin/nologin\n# c\nappuser:x:10001:10001::/nonexistent:/sbin/nologin\nbad");
        assert_eq!(users[1], ("appuser".into(), 10001, 10001));
        assert_eq!(users.len(), 2);
        assert_eq!(
            group_entries("appuser:x:10001:\n"),
            vec![("appuser".into(), 10001)]
        );
    }
}
