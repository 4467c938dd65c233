//! The docker engine and the rendered Dockerfile at their edges, against the
//! real docker engine with the test builder of `docker_engine`: the file built
//! by hand with `--build-arg USER_ID=2000` runs as a user in its /etc/passwd;
//! old build-stage images are removed and `clean` lists the last one; `files`
//! are copied; `cgo = "dynamic"` is refused before anything is pulled; and a
//! hand-written image with `USER 10001` and that user in /etc/passwd is no
//! `user.numeric` warning. Every image made here is removed by `DockerTest`.

use crate::docker_engine::{docker, DockerTest};
use crate::support::*;
use serde_json::Value;
use std::process::Command;

/// The status and message of check `id` in `verify --format json` output.
fn check(stdout: &[u8], id: &str) -> (String, String) {
    let reports: Value = serde_json::from_slice(stdout).unwrap();
    let check = reports[0]["platforms"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {reports}"))
        .clone();
    (
        check["status"].as_str().unwrap().to_string(),
        check["message"].as_str().unwrap().to_string(),
    )
}

/// Untagged build-stage images of `app` in the engine.
fn stage_images(app: &str) -> Vec<String> {
    let out = docker()
        .args(["image", "ls", "--quiet", "--filter", "dangling=true"])
        .args(["--filter", &format!("label=io.gopack.app={app}")])
        .args(["--filter", "label=io.gopack.stage=build"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_rendered_dockerfile_built_with_user_id_2000_runs_as_a_user_it_knows() {
    let t = DockerTest::new("uid");
    let ws = t.workspace("examples/hello", "");
    let out = ws.xtask(["dockerfile", &t.app, "--classic"]);
    assert!(out.status.success(), "{}", text(&out));
    let rendered = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        rendered.contains("USER ${USER_ID}:${GROUP_ID}\n"),
        "{rendered}"
    );
    ws.write("app/Dockerfile", &rendered);
    let image = format!("{}:uid2000", t.app);
    let built = docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--quiet"])
        .args(["--build-arg", "BUILDPLATFORM=linux/amd64"])
        .args([
            "--build-arg",
            "TARGETOS=linux",
            "--build-arg",
            "TARGETARCH=amd64",
        ])
        .args([
            "--build-arg",
            "USER_ID=2000",
            "--build-arg",
            "GROUP_ID=2000",
        ])
        .args(["-t", &image])
        .arg(ws.root.join("app"))
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built));

    let user = run_ok(docker().args(["image", "inspect", "--format", "{{.Config.User}}", &image]));
    assert_eq!(user.trim(), "2000:2000");
    let out = ws.xtask([
        "verify",
        "--image",
        &format!("docker:{image}"),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for id in ["user.numeric", "user.root", "user.passwd"] {
        assert_eq!(
            check(&out.stdout, id).0,
            "pass",
            "{id}: {:?}",
            check(&out.stdout, id)
        );
    }
    assert!(
        check(&out.stdout, "user.passwd")
            .1
            .contains("uid 2000 is `appuser`"),
        "{:?}",
        check(&out.stdout, "user.passwd")
    );
    let ran = run_ok(docker().args(["run", "--rm", "--network", "none", &image]));
    assert!(ran.contains("uid=2000 gid=2000"), "{ran}");
}

#[test]
fn old_build_stage_images_are_removed_and_clean_lists_the_last() {
    let t = DockerTest::new("stages");
    let ws = t.workspace("examples/hello", "");
    let pack = || {
        let out = ws.xtask(["pack", &t.app, "--engine", "docker"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    pack();
    assert_eq!(
        stage_images(&t.app).len(),
        1,
        "the newest stays as the layer cache"
    );
    // A change to the module: a new build stage, the old one removed.
    let main = ws.root.join("app/main.go");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{source}\n// changed\n")).unwrap();
    let stderr = pack();
    assert!(
        stderr.contains("removed 1 old build-stage image"),
        "{stderr}"
    );
    let left = stage_images(&t.app);
    assert_eq!(left.len(), 1, "{left:?}");

    let out = ws.xtask(["clean", &t.app, "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(&format!("(build stage of `{}`", t.app)),
        "{listed}"
    );
    let out = ws.xtask(["clean", &t.app]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stage_images(&t.app).is_empty(),
        "clean removed the build stage"
    );
}

#[test]
fn files_are_copied_by_the_dockerfile_and_the_engine() {
    let t = DockerTest::new("files");
    let ws = t.workspace(
        "examples/hello",
        "files = [{ src = \"config/app.yaml\", dst = \"/etc/hello/app.yaml\", mode = \"0444\" }, { src = \"static\", dst = \"/srv/static/\" }]",
    );
    ws.write("app/config/app.yaml", "greeting: hi\n");
    ws.write("app/static/index.html", "<p>hi</p>\n");
    let out = ws.xtask(["dockerfile", &t.app]);
    assert!(out.status.success(), "{}", text(&out));
    let rendered = String::from_utf8_lossy(&out.stdout);
    assert!(
        rendered.contains("COPY [\"config/app.yaml\",\"/appfs/etc/hello/app.yaml\"]"),
        "{rendered}"
    );
    let out = ws.xtask(["pack", &t.app, "--engine", "docker"]);
    assert!(out.status.success(), "{}", text(&out));
    let image = format!("{}:dev", t.app);
    let container = run_ok(docker().args(["create", &image]));
    let container = container.trim();
    let copied = docker()
        .args(["cp", &format!("{container}:/etc/hello/app.yaml"), "-"])
        .output()
        .unwrap();
    let listing = docker()
        .args(["cp", &format!("{container}:/srv/static/index.html"), "-"])
        .output()
        .unwrap();
    let _ = docker().args(["rm", container]).output();
    assert!(copied.status.success(), "{}", text(&copied));
    assert!(listing.status.success(), "{}", text(&listing));
    let mut archive = tar::Archive::new(copied.stdout.as_slice());
    let entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.header().mode().unwrap() & 0o7777, 0o444);
    assert_eq!(entry.header().uid().unwrap(), 0);

    // A source the build context does not hold is refused, by name.
    ws.set_config(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{}\"\npath = \"app\"\n\
         files = [{{ src = \".secret/key.pem\", dst = \"/etc/key.pem\" }}]\n",
        t.app
    ));
    ws.write("app/.secret/key.pem", "x\n");
    let out = ws.xtask(["dockerfile", &t.app]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("files[0].src"),
        "{}",
        text(&out)
    );
}

#[test]
fn dynamic_cgo_is_refused_before_any_image_is_pulled() {
    let t = DockerTest::new("cgodyn");
    let ws = TestWorkspace::new(&format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{}\"\npath = \"app\"\n\
         platforms = [\"linux/amd64\"]\ncgo = \"dynamic\"\n",
        t.app
    ));
    ws.copy("examples/hello", "app");
    for args in [
        vec!["pack", t.app.as_str(), "--engine", "docker"],
        vec!["dockerfile", t.app.as_str()],
    ] {
        let out = ws.xtask(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cgo = \"dynamic\""), "{stderr}");
        assert!(!stderr.to_lowercase().contains("pull"), "{stderr}");
        assert!(
            !stderr.contains("golang:"),
            "nothing was looked for: {stderr}"
        );
    }
}

#[test]
fn a_hand_written_image_whose_passwd_names_the_group_passes_user_numeric() {
    let t = DockerTest::new("handwritten");
    let context = tempfile::tempdir().unwrap();
    let dir = camino::Utf8Path::from_path(context.path()).unwrap();
    run_ok(
        Command::new("go")
            .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
            .arg(dir.join("hello"))
            .arg(".")
            .current_dir(repo_root().join("examples/hello"))
            .env("CGO_ENABLED", "0"),
    );
    std::fs::write(
        dir.join("passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nappuser:x:10001:10001::/nonexistent:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(dir.join("group"), "root:x:0:\nappuser:x:10001:\n").unwrap();
    let dockerfile = |user: &str| {
        format!(
            "FROM scratch\nCOPY passwd group /etc/\nCOPY hello /hello\nUSER {user}\nENTRYPOINT [\"/hello\"]\n"
        )
    };
    for (user, status) in [("10001", "pass"), ("20002", "warn")] {
        std::fs::write(dir.join("Dockerfile"), dockerfile(user)).unwrap();
        let image = format!("{}:user{user}", t.app);
        run_ok(
            docker()
                .env("DOCKER_BUILDKIT", "0")
                .args(["build", "--quiet", "-t", &image])
                .arg(dir),
        );
        let ws = TestWorkspace::new("");
        let out = ws.xtask([
            "verify",
            "--image",
            &format!("docker:{image}"),
            "--format",
            "json",
        ]);
        let (found, message) = check(&out.stdout, "user.numeric");
        assert_eq!(found, status, "USER {user}: {message}");
        if user == "10001" {
            assert!(message.contains("gid 10001"), "{message}");
            let (passwd, _) = check(&out.stdout, "user.passwd");
            assert_eq!(passwd, "pass");
        }
    }
}
