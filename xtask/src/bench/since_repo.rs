//! A generated monorepo for `bench`: many small apps, each its own Go module
//! (as services in a monorepo are), committed to git, to time `--since`
//! when one app changed. No app is built: the selection is what is timed.

use camino::Utf8Path;
use std::process::Command;

/// Writes `apps` apps into `dir` with a Cargo.toml that configures them,
/// and commits them; returns the main.go of the app in the middle.
pub fn generate(dir: &Utf8Path, apps: usize) -> Result<camino::Utf8PathBuf, String> {
    let write = |path: &Utf8Path, text: &str| -> Result<(), String> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{parent}: {e}"))?;
        }
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))
    };
    let mut manifest = String::from("[workspace]\nmembers = []\n\n[workspace.metadata.gopack]\n");
    for n in 0..apps {
        let name = format!("app{n:03}");
        manifest.push_str(&format!(
            "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"services/{name}\"\n\
             platforms = [\"linux/amd64\"]\nlabels = {{ team = \"t{}\" }}\n",
            n % 7
        ));
        let folder = dir.join("services").join(&name);
        write(
            &folder.join("go.mod"),
            &format!("module example.com/{name}\n\ngo 1.21\n"),
        )?;
        write(
            &folder.join("main.go"),
            &format!("package main\n\nfunc main() {{ println(\"{name}\") }}\n"),
        )?;
    }
    write(&dir.join("Cargo.toml"), &manifest)?;
    write(&dir.join(".gitignore"), "target/\n")?;
    let git = |args: &[&str]| -> Result<(), String> {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@gopack.invalid")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@gopack.invalid")
            .status()
            .map_err(|e| format!("git: {e} (install git)"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("git {args:?} failed"))
    };
    git(&["init", "--quiet"])?;
    git(&["add", "-A"])?;
    git(&["commit", "--quiet", "-m", "monorepo"])?;
    // A working copy as a developer has it: git's index refreshed a second
    // after the files were written, so git status need not hash them again
    // (it leaves entries as new as the index "racily clean", and gopack asks
    // with --no-optional-locks, which never refreshes it).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    git(&["status", "--porcelain"])?;
    Ok(dir.join(format!("services/app{:03}/main.go", apps / 2)))
}
