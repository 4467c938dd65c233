//! `dockerfile --check`: a committed Dockerfile against the rendered one,
//! with a line diff when they differ.

use super::*;

/// Compares the rendered text with a committed file; the error shows the difference.
pub fn check(rendered: &str, file: &Utf8Path, app: &str) -> Result<()> {
    let committed = std::fs::read_to_string(file).at(file, "read")?;
    if committed == rendered {
        return Ok(());
    }
    Err(Error::Invalid {
        path: file.to_string(),
        message: format!(
            "out of date with the config of `{app}` (- committed, + generated):\n{}",
            diff(&committed, rendered)
        ),
        help: format!("regenerate it: cargo xtask dockerfile {app} > {file}"),
    })
}

/// A line diff (`-` old, `+` new) with one line of context around changes.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table; Dockerfiles are short.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', j + 1, b[j]));
            j += 1;
        } else {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        }
    }
    if old.ends_with('\n') != new.ends_with('\n') {
        ops.push(('~', 0, "(the files differ in the final newline)"));
    }
    let near = |k: usize| {
        ops[k.saturating_sub(1)..(k + 2).min(ops.len())]
            .iter()
            .any(|op| op.0 != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line, text)) in ops.iter().enumerate() {
        if *op == ' ' && !near(k) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("  ...\n");
            skipped = false;
        }
        let _ = writeln!(out, "{op}{line:>4} | {text}");
    }
    out
}
