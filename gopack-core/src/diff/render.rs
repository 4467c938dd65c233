//! [`ImageDiff`] for people: plain text for a terminal, Markdown for a pull
//! request comment. Long lists are cut (the JSON has them whole).

use super::files::{FileMeta, PathMeta};
use super::{ImageDiff, PlatformDiff};
use std::fmt::Write as _;

/// How many files a section lists before it counts the rest.
const SHOWN_FILES: usize = 50;

/// Bytes in binary units, as people read them.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn signed(difference: i64) -> String {
    let sign = if difference < 0 { "-" } else { "+" };
    format!("{sign}{}", human(difference.unsigned_abs()))
}

fn describe(meta: &FileMeta) -> String {
    let mut text = format!("{} {:04o} {}:{}", meta.kind, meta.mode, meta.uid, meta.gid);
    if meta.kind == "file" {
        let _ = write!(text, " {}", human(meta.size));
    }
    if let Some(link) = &meta.link {
        let _ = write!(text, " -> {link}");
    }
    text
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

fn summary(p: &PlatformDiff) -> String {
    format!(
        "{} added, {} removed, {} changed files; {} config changes; pull size {} -> {} ({}), {} new",
        p.files.added.len(),
        p.files.removed.len(),
        p.files.changed.len(),
        p.config.len(),
        human(p.pull_size.before),
        human(p.pull_size.after),
        signed(p.pull_size.difference),
        human(p.pull_size.new_bytes),
    )
}

/// Plain text.
pub fn text(diff: &ImageDiff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {}\nB: {}", diff.a, diff.b);
    if diff.equal {
        let _ = writeln!(out, "the images are the same");
        return out;
    }
    for p in &diff.platforms {
        let _ = writeln!(out, "\n{}: {}", p.platform, p.status);
        if p.status == "same" {
            continue;
        }
        let _ = writeln!(out, "  {}", summary(p));
        for c in &p.config {
            let _ = writeln!(
                out,
                "  config {}: {} -> {}",
                c.field,
                c.before.as_deref().unwrap_or("(unset)"),
                c.after.as_deref().unwrap_or("(unset)")
            );
        }
        let list = |out: &mut String, sign: &str, items: &[PathMeta]| {
            for item in items.iter().take(SHOWN_FILES) {
                let _ = writeln!(out, "  {sign} {} ({})", item.path, describe(&item.meta));
            }
            if items.len() > SHOWN_FILES {
                let _ = writeln!(out, "  {sign} ... {} more", items.len() - SHOWN_FILES);
            }
        };
        list(&mut out, "+", &p.files.added);
        list(&mut out, "-", &p.files.removed);
        for f in p.files.changed.iter().take(SHOWN_FILES) {
            let what: Vec<String> = f
                .changes
                .iter()
                .map(|c| match c.field {
                    "content" => format!("content {} -> {}", short(&c.before), short(&c.after)),
                    _ => format!("{} {} -> {}", c.field, c.before, c.after),
                })
                .collect();
            let _ = writeln!(out, "  ~ {} ({})", f.path, what.join(", "));
        }
        for l in &p.layers {
            let size = l.size.map(human).unwrap_or_else(|| "?".into());
            let _ = writeln!(out, "  layer {} {} {size}", l.status, short(&l.digest));
        }
    }
    out
}

/// GitHub-flavoured Markdown.
pub fn markdown(diff: &ImageDiff) -> String {
    let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
    let mut out = String::new();
    let _ = writeln!(out, "### Image diff\n\n`{}` → `{}`\n", diff.a, diff.b);
    if diff.equal {
        let _ = writeln!(out, "The images are the same.");
        return out;
    }
    for p in &diff.platforms {
        let _ = writeln!(out, "#### `{}`: {}\n", p.platform, p.status);
        if p.status == "same" {
            continue;
        }
        let _ = writeln!(out, "{}\n", summary(p));
        if !p.config.is_empty() {
            let _ = writeln!(out, "| config | before | after |\n|---|---|---|");
            for c in &p.config {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    c.field,
                    c.before.as_deref().map(cell).unwrap_or_else(|| "—".into()),
                    c.after.as_deref().map(cell).unwrap_or_else(|| "—".into())
                );
            }
            out.push('\n');
        }
        if !p.files.is_empty() {
            let _ = writeln!(out, "| | file | before | after |\n|---|---|---|---|");
            let mut rows = 0;
            for item in &p.files.added {
                rows += 1;
                if rows <= SHOWN_FILES {
                    let _ = writeln!(
                        out,
                        "| + | `{}` | | {} |",
                        cell(&item.path),
                        cell(&describe(&item.meta))
                    );
                }
            }
            for item in &p.files.removed {
                rows += 1;
                if rows <= SHOWN_FILES {
                    let _ = writeln!(
                        out,
                        "| − | `{}` | {} | |",
                        cell(&item.path),
                        cell(&describe(&item.meta))
                    );
                }
            }
            for f in &p.files.changed {
                rows += 1;
                if rows <= SHOWN_FILES {
                    let before: Vec<String> = f
                        .changes
                        .iter()
                        .map(|c| format!("{} {}", c.field, field_text(c.field, &c.before)))
                        .collect();
                    let after: Vec<String> = f
                        .changes
                        .iter()
                        .map(|c| format!("{} {}", c.field, field_text(c.field, &c.after)))
                        .collect();
                    let _ = writeln!(
                        out,
                        "| ~ | `{}` | {} | {} |",
                        cell(&f.path),
                        cell(&before.join(", ")),
                        cell(&after.join(", "))
                    );
                }
            }
            if rows > SHOWN_FILES {
                let _ = writeln!(out, "| | … {} more | | |", rows - SHOWN_FILES);
            }
            out.push('\n');
        }
        let _ = writeln!(out, "| layer | size | |\n|---|---|---|");
        for l in &p.layers {
            let size = l.size.map(human).unwrap_or_else(|| "?".into());
            let _ = writeln!(out, "| `{}` | {size} | {} |", short(&l.digest), l.status);
        }
        let _ = writeln!(
            out,
            "\nPull size: {} → {} ({})\n",
            human(p.pull_size.before),
            human(p.pull_size.after),
            signed(p.pull_size.difference)
        );
    }
    out
}

fn field_text<'a>(field: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    match field {
        "content" => format!("`{}`", short(value)).into(),
        "size" => value
            .parse::<u64>()
            .map(human)
            .unwrap_or_else(|_| value.to_string())
            .into(),
        _ => value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(signed(-2048), "-2.0 KiB");
    }
}
