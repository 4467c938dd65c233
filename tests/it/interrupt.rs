//! Signals and hanging tools: SIGINT during `go build` stops it and everything
//! it started, leaves no temporary file and exits 130; `run` passes SIGTERM on
//! to the container; a `go` that never answers is an error in bounded time.

use crate::support::*;
use camino::Utf8Path;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn script(path: &Utf8Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn send(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

/// `.tmp-*` files and folders anywhere under `dir`.
fn temps(dir: &Utf8Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = dir.read_dir_utf8() else {
        return found;
    };
    for entry in entries.flatten() {
        if entry.file_name().starts_with(".tmp-") {
            found.push(entry.path().to_string());
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(temps(entry.path()));
        }
    }
    found
}

#[test]
fn sigint_during_go_build_stops_it_cleans_up_and_exits_130() {
    let ws = hello_workspace();
    // The real `go`, except that `go build` starts a child that records its
    // pid and sleeps: the child of a child, which only a stopped process
    // group takes along.
    let real_go = go_bin_dir().join("go");
    let pid_file = ws.root.join("sleep.pid");
    let fake_go = ws.root.join("fake-go");
    script(
        &fake_go,
        &format!(
            "#!/bin/sh\nif [ \"$1\" = build ]; then sleep 300 & echo $! > {pid_file}.tmp; \
             mv {pid_file}.tmp {pid_file}; wait; exit 1; fi\nexec {real_go} \"$@\"\n"
        ),
    );
    let mut gopack = ws
        .xtask_command(["pack"])
        .env("GOPACK_GO", &fake_go)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !pid_file.exists() {
        assert!(
            gopack.try_wait().unwrap().is_none(),
            "gopack ended before go build ran"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "go build never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sleeper: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(sleeper));
    let cache = ws.cache_dir();
    assert!(
        !temps(&cache.join("bin")).is_empty(),
        "go build writes to a temporary file in the cache"
    );

    send(gopack.id(), libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = gopack.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = gopack.kill();
            panic!("gopack did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "{status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(sleeper) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(sleeper),
        "the child of go build (pid {sleeper}) outlived gopack"
    );
    let left = temps(&ws.root.join("target/gopack"));
    assert!(left.is_empty(), "leftovers: {left:?}");

    // The next run builds normally.
    let out = ws.xtask(["pack"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn leftover_temps_are_swept_at_the_start_of_every_run() {
    let ws = hello_workspace();
    let out = ws.xtask(["pack"]);
    assert!(out.status.success(), "{}", text(&out));
    // What a killed run leaves: fresh temp files in cache folders and outputs.
    let leftovers = [
        ws.cache_dir().join("blobs/.tmp-1-killed"),
        ws.cache_dir().join("bin/.tmp-1-killed"),
        ws.root.join("target/gopack/hello/.tmp-killed"),
    ];
    for path in &leftovers {
        std::fs::write(path, b"half").unwrap();
    }
    // A warm run (nothing to build) sweeps them all.
    let out = ws.xtask(["pack", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("\"event\":\"go-build\""),
        "{}",
        text(&out)
    );
    for path in &leftovers {
        assert!(!path.exists(), "{path} survived a run");
    }
}

#[test]
fn a_go_that_never_answers_is_an_error_in_bounded_time() {
    let ws = hello_workspace();
    let hang = ws.root.join("hanging-go");
    script(&hang, "#!/bin/sh\nsleep 300\n");
    let started = Instant::now();
    let out = ws
        .xtask_command(["pack"])
        .env("GOPACK_GO", &hang)
        .env("GOPACK_TOOL_TIMEOUT", "2")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr.contains("`go` did not finish within 2 s") && stderr.contains("GOPACK_TOOL_TIMEOUT"),
        "{stderr}"
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "the hanging go held gopack for {elapsed:?}"
    );
}

/// Removes the test's images when the test ends, however it ends.
struct Images(String);

impl Drop for Images {
    fn drop(&mut self) {
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("ancestor={}", self.0)])
            .output();
        if let Ok(ids) = ids {
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
        let latest = self.0.replace(":1.0.0", ":latest");
        let _ = Command::new("docker").args(["rmi", "-f", &latest]).output();
    }
}

#[test]
fn run_passes_sigterm_on_to_the_container() {
    require_tool("docker", "docker.io");
    let name = format!("gopack-test-sigterm-{}", std::process::id());
    let ws = TestWorkspace::new(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"app\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.0.0\"\n"
    ));
    ws.write("app/go.mod", "module example.com/sleeper\n\ngo 1.21\n");
    ws.write(
        "app/main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\t\"time\"\n)\n\nfunc main() {\n\
         \tfmt.Println(\"ready\")\n\ttime.Sleep(300 * time.Second)\n}\n",
    );
    let image = format!("{name}:1.0.0");
    let _images = Images(image.clone());
    let mut gopack = ws
        .xtask_command(["run", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(gopack.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(|line| line.ok());
    assert_eq!(
        ready.as_deref(),
        Some("ready"),
        "the container did not start"
    );
    let running = |image: &str| {
        let out = run_ok(Command::new("docker").args([
            "ps",
            "-q",
            "--filter",
            &format!("ancestor={image}"),
        ]));
        !out.trim().is_empty()
    };
    // The engine can list a container a moment after its first output on a
    // busy machine (the suite runs docker tests beside others).
    let listed = Instant::now() + Duration::from_secs(10);
    while !running(&image) && Instant::now() < listed {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(running(&image), "the running container is not listed");

    send(gopack.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = gopack.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = gopack.kill();
            panic!("run did not end within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(143), "{status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(&image) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!running(&image), "the container outlived the run");
}
