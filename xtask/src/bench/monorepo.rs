//! `bench --monorepo N`: a workspace of N generated small apps in one git
//! repository, packed all at once: nothing changed, and one app changed.
//! The figure that matters is how the cost grows with N (against one app).

use super::{median, ms, time};
use camino::Utf8Path;
use std::process::Command;

/// Generates the workspace in `root` and measures it with the xtask `me`.
pub fn measure(
    root: &Utf8Path,
    me: &std::path::Path,
    apps: usize,
    runs: usize,
) -> Result<String, String> {
    let mut manifest = String::from("[workspace]\nmembers = []\n\n");
    for i in 0..apps {
        let name = format!("app{i:03}");
        let dir = root.join("apps").join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{dir}: {e}"))?;
        let write = |file: &str, text: String| {
            std::fs::write(dir.join(file), text).map_err(|e| format!("{dir}/{file}: {e}"))
        };
        write("go.mod", format!("module example.com/{name}\n\ngo 1.21\n"))?;
        write(
            "main.go",
            format!("package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() {{ fmt.Println(\"{name}\", version, {i}) }}\n"),
        )?;
        manifest.push_str(&format!(
            "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"apps/{name}\"\n\
             platforms = [\"linux/amd64\"]\nversion-variable = \"main.version\"\n\n"
        ));
    }
    std::fs::write(root.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    std::fs::write(root.join(".gitignore"), "/target\n/gocache\n").map_err(|e| e.to_string())?;
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@example.com",
            ])
            .args(args)
            .current_dir(root)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("git: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("git {args:?} failed"))
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-qm", "apps"])?;
    // A working copy as a developer has it: git's index refreshed a second
    // after the files were written, so git status need not hash them again
    // (it leaves entries as new as the index "racily clean", and gopack asks
    // with --no-optional-locks, which never refreshes it).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    git(&["status", "--porcelain"])?;
    let gopack = |args: &[&str]| {
        let mut cmd = Command::new(me);
        cmd.arg("pack")
            .args(args)
            .arg("--quiet")
            .current_dir(root)
            .env("GOCACHE", root.join("gocache"));
        cmd
    };
    eprintln!("monorepo: first pack of {apps} apps...");
    time(&mut gopack(&[]))?;
    // Past the stat cache's racy window, as a later run would be.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let load = super::apps::load();
    let one = median(runs, || time(&mut gopack(&["app000"])))?;
    let all = median(runs, || time(&mut gopack(&[])))?;
    let edited = root.join("apps/app001/main.go");
    let original = std::fs::read_to_string(&edited).map_err(|e| e.to_string())?;
    let mut n = 0;
    let changed = median(runs, || {
        n += 1;
        std::fs::write(&edited, format!("{original}\n// bench edit {n}\n"))
            .map_err(|e| e.to_string())?;
        time(&mut gopack(&[]))
    })?;
    let _ = std::fs::write(&edited, original);
    Ok(format!(
        "| measure ({apps} apps, load average {load}) | time | against one app |\n|---|---|---|\n\
         | no-change `pack` of one app | {} | 1.00 |\n\
         | no-change `pack` of all | {} | {:.2} |\n\
         | `pack` of all, one app changed | {} | {:.2} |\n",
        ms(one),
        ms(all),
        all.as_secs_f64() / one.as_secs_f64().max(1e-9),
        ms(changed),
        changed.as_secs_f64() / one.as_secs_f64().max(1e-9),
    ))
}
