//! Tests of loading and checking the configuration.

use super::*;
use crate::error::Result;
use crate::platform::Platform;
use camino::Utf8PathBuf;
use serde_json::json;

fn workspace(value: serde_json::Value) -> Result<Workspace> {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/go.mod"), "module example.com/app\n").unwrap();
    let ws = Workspace::from_value(
        root.clone(),
        root.join("target"),
        &value,
        settings::Environment::default(),
    );
    drop(dir);
    ws
}

fn error_text(value: serde_json::Value) -> String {
    workspace(value).unwrap_err().to_string()
}

#[test]
fn defaults() {
    let ws = workspace(json!({"apps": [{"name": "api", "path": "app"}]})).unwrap();
    let app = &ws.all_apps()[0];
    assert_eq!(app.config.main, ".");
    assert_eq!(app.config.user.uid, 10001);
    assert_eq!(app.config.user.gid(), 10001);
    assert_eq!(app.config.user.name, "appuser");
    assert!(app.config.certs);
    assert_eq!(app.config.tzdata, Tzdata::Files);
    assert_eq!(app.binary_path(), "/go/bin/api");
    assert_eq!(app.platforms(), vec![Platform::host()]);
}

#[test]
fn unknown_key_is_named() {
    let text = error_text(json!({"apps": [{"name": "api", "path": "app", "colour": 1}]}));
    assert!(text.contains("apps[0].colour"), "{text}");
    assert!(text.contains("Cargo.toml"), "{text}");
}

#[test]
fn mistakes_get_hints() {
    let text = error_text(json!({"apps": [{"name": "api", "path": "app", "platfroms": []}]}));
    assert!(text.contains("did you mean `platforms`?"), "{text}");
    let text = error_text(json!({"apps": [{"name": "api", "path": "app", "env": {"A": "1"}}]}));
    assert!(
        text.contains("`build-env`") && text.contains("image-env"),
        "{text}"
    );
    let text = error_text(json!({"apps": {"name": "api", "path": "app"}}));
    assert!(
        text.contains("[[workspace.metadata.gopack.apps]]"),
        "{text}"
    );
    let ws = workspace(json!({"apps": [{"name": "api", "path": "app"}]})).unwrap();
    let err = ws
        .select(&["apj".into()], &Overrides::default())
        .unwrap_err();
    assert!(err.to_string().contains("did you mean `api`?"), "{err}");
}

#[test]
fn ports_take_numbers() {
    let ws = workspace(
        json!({"apps": [{"name": "api", "path": "app", "expose": [8080, "53/udp", "9090"]}]}),
    )
    .unwrap();
    assert_eq!(
        ws.all_apps()[0].config.expose,
        ["8080/tcp", "53/udp", "9090/tcp"]
    );
    let text = error_text(json!({"apps": [{"name": "api", "path": "app", "expose": ["http"]}]}));
    assert!(
        text.contains("apps[0].expose") && text.contains("8080"),
        "{text}"
    );
}

#[test]
fn bad_platform_is_named() {
    let text = error_text(
        json!({"apps": [{"name": "api", "path": "app", "platforms": ["linux/amd64", "linux/x86"]}]}),
    );
    assert!(text.contains("apps[0].platforms[1]"), "{text}");
}

#[test]
fn root_user_is_rejected() {
    let text = error_text(json!({"apps": [{"name": "api", "path": "app", "user": {"uid": 0}}]}));
    assert!(
        text.contains("apps[0].user.uid") && text.contains("root"),
        "{text}"
    );
}

#[test]
fn duplicate_names_and_missing_go_mod() {
    let text = error_text(
        json!({"apps": [{"name": "api", "path": "app"}, {"name": "api", "path": "app"}]}),
    );
    assert!(
        text.contains("apps[1].name") && text.contains("already used"),
        "{text}"
    );
    let text = error_text(json!({"apps": [{"name": "api", "path": "nowhere"}]}));
    assert!(
        text.contains("apps[0].path") && text.contains("go.mod"),
        "{text}"
    );
}

#[test]
fn tzdata_forms() {
    let ws =
        workspace(json!({"apps": [{"name": "api", "path": "app", "tzdata": "embed"}]})).unwrap();
    assert_eq!(ws.all_apps()[0].config.tzdata, Tzdata::Embed);
    let text = error_text(json!({"apps": [{"name": "api", "path": "app", "tzdata": "yes"}]}));
    assert!(text.contains("tzdata"), "{text}");
}

#[test]
fn cgo_forms_and_cc_keys() {
    let ws = workspace(json!({"apps": [
        {"name": "a", "path": "app", "cgo": true},
        {"name": "b", "path": "app", "cgo": "dynamic", "cc": {"linux/arm64": "zig cc -target aarch64-linux-musl"}},
        {"name": "c", "path": "app"}
    ]}))
    .unwrap();
    let cgo: Vec<Cgo> = ws.all_apps().iter().map(|a| a.config.cgo).collect();
    assert_eq!(cgo, vec![Cgo::Static, Cgo::Dynamic, Cgo::Off]);
    let text = error_text(json!({"apps": [{"name": "a", "path": "app", "cgo": "shared"}]}));
    assert!(
        text.contains("apps[0].cgo") && text.contains("\"dynamic\""),
        "{text}"
    );
    let text =
        error_text(json!({"apps": [{"name": "a", "path": "app", "cc": {"linux/x86": "gcc"}}]}));
    assert!(text.contains("cc.\"linux/x86\""), "{text}");
    let apps = ws
        .select(
            &["c".into()],
            &Overrides {
                cgo: Some(Cgo::Static),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(apps[0].config.cgo, Cgo::Static);
}

#[test]
fn overrides_apply_and_are_checked() {
    let ws = workspace(json!({"apps": [{"name": "api", "path": "app"}]})).unwrap();
    let apps = ws
        .select(
            &[],
            &Overrides {
                uid: Some(1234),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(apps[0].config.user.uid, 1234);
    assert_eq!(apps[0].config.user.gid(), 1234);
    let err = ws
        .select(
            &[],
            &Overrides {
                uid: Some(0),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("--uid"), "{err}");
    let err = ws
        .select(&["web".into()], &Overrides::default())
        .unwrap_err();
    assert!(err.to_string().contains("known apps: api"), "{err}");
}

#[test]
fn settings_that_break_images_are_named() {
    let cases = [
        (
            json!({"binary-path": "/tmp"}),
            "apps[0].binary-path",
            "/tmp",
        ),
        (
            json!({"binary-path": "/etc/passwd"}),
            "apps[0].binary-path",
            "/etc/passwd",
        ),
        (
            json!({"binary-path": "/go/../etc/app"}),
            "apps[0].binary-path",
            "..",
        ),
        (
            json!({"binary-path": "/etc/ssl/certs"}),
            "apps[0].binary-path",
            "ca-certificates",
        ),
        (
            json!({"binary-path": "/usr/share/zoneinfo/UTC"}),
            "apps[0].binary-path",
            "zoneinfo",
        ),
        (
            json!({"workdir": "relative"}),
            "apps[0].workdir",
            "absolute",
        ),
        (
            json!({"image-env": {"A=B": "c"}}),
            "apps[0].image-env",
            "environment variable",
        ),
        (
            json!({"image-env": {"": "c"}}),
            "apps[0].image-env",
            "environment variable",
        ),
        (
            json!({"locale": "en_US.UTF-8\nLC_ALL=C"}),
            "apps[0].locale",
            "newline",
        ),
        (json!({"timezone": "UTC\r"}), "apps[0].timezone", "newline"),
        (
            json!({"labels": {"a": "b\nc"}}),
            "apps[0].labels",
            "newline",
        ),
    ];
    for (extra, key, word) in cases {
        let mut app = json!({"name": "api", "path": "app"});
        app.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let text = error_text(json!({ "apps": [app] }));
        assert!(
            text.contains(key) && text.contains(word) && text.contains("help:"),
            "{extra}: {text}"
        );
    }
    let text = error_text(json!({"cache-dir": "", "apps": [{"name": "api", "path": "app"}]}));
    assert!(
        text.contains("cache-dir") && text.contains("empty"),
        "{text}"
    );
    let ws = workspace(json!({"apps": [{"name": "api", "path": "app",
        "binary-path": "/usr/local/bin/api", "workdir": "/srv",
        "image-env": {"LOG_LEVEL": "debug"}, "locale": "en_US.UTF-8",
        "labels": {"org.example.team": "Zahlungsverkehr ü"}}]}));
    assert!(ws.is_ok(), "{:?}", ws.err());
}

/// A workspace in a folder the caller keeps, with `app/` holding go.mod.
fn workspace_in(root: &Utf8PathBuf, value: serde_json::Value) -> Result<Workspace> {
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/go.mod"), "module example.com/app\n").unwrap();
    Workspace::from_value(
        root.clone(),
        root.join("target"),
        &value,
        settings::Environment::default(),
    )
}

#[test]
fn configured_paths_stay_beneath_their_root() {
    let dir = tempfile::tempdir().unwrap();
    let base = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
    let root = base.join("ws");
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/secret"), "s").unwrap();
    std::fs::create_dir_all(root.join("app/static")).unwrap();
    std::fs::write(root.join("app/static/a.css"), "a").unwrap();
    std::fs::create_dir_all(root.join("shared")).unwrap();
    std::fs::write(root.join("shared/common.yaml"), "c").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("app/etc")).unwrap();
    std::os::unix::fs::symlink(base.join("outside"), root.join("app/od")).unwrap();
    std::os::unix::fs::symlink(base.join("outside"), root.join("app/cmd")).unwrap();
    let file = |src: &str| json!({"apps": [{"name": "api", "path": "app", "files": [{"src": src, "dst": "/srv/x"}]}]});
    for (src, word) in [
        ("/etc/shadow", "absolute"),
        ("../../../../etc/shadow", ".."),
        ("../../.git/config", ".."),
        ("../shared/common.yaml", ".."),
        ("etc/hostname", "symbolic link"),
        ("od/", "symbolic link"),
        ("od/secret", "symbolic link"),
    ] {
        let text = workspace_in(&root, file(src)).unwrap_err().to_string();
        assert!(
            text.contains("apps[0].files[0].src")
                && text.contains(word)
                && text.contains("files-root"),
            "{src}: {text}"
        );
    }
    assert!(workspace_in(&root, file("static/")).is_ok());
    // A workspace-level files-root lets apps share files inside the workspace, no further.
    let shared = |src: &str, files_root: &str| {
        workspace_in(
            &root,
            json!({"files-root": files_root, "apps": [{"name": "api", "path": "app", "files": [{"src": src, "dst": "/srv/x"}]}]}),
        )
    };
    let ws = shared("../shared/common.yaml", ".").unwrap();
    assert_eq!(ws.all_apps()[0].sources.root, root);
    assert_eq!(ws.all_apps()[0].sources.prefix, "app");
    let text = shared("../../outside/secret", ".").unwrap_err().to_string();
    assert!(text.contains("apps[0].files[0].src"), "{text}");
    for files_root in ["..", "/", "app/od"] {
        let text = shared("static/", files_root).unwrap_err().to_string();
        assert!(text.contains("files-root"), "{files_root}: {text}");
    }
    // ca-bundle and zoneinfo: the host's by default, a configured one inside the workspace.
    for (key, value) in [
        ("ca-bundle", "/etc/ssl/certs/ca-certificates.crt"),
        ("ca-bundle", "../outside/secret"),
        ("zoneinfo", "/usr/share/zoneinfo"),
    ] {
        let text = workspace_in(
            &root,
            json!({"apps": [{"name": "api", "path": "app", key: value}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            text.contains(&format!("apps[0].{key}")) && text.contains("inside the workspace"),
            "{key}={value}: {text}"
        );
    }
    // main through a symlink out of the app's folder.
    let text = workspace_in(
        &root,
        json!({"apps": [{"name": "api", "path": "app", "main": "cmd"}]}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        text.contains("apps[0].main") && text.contains("symbolic link"),
        "{text}"
    );
}

#[test]
fn a_fifo_as_files_source_is_refused_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    let fifo = std::ffi::CString::new(root.join("app/pipe").as_str()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let text = workspace_in(
        &root,
        json!({"apps": [{"name": "api", "path": "app", "files": [{"src": "pipe", "dst": "/srv/x"}]}]}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        text.contains("apps[0].files[0].src") && text.contains("FIFO"),
        "{text}"
    );
}

#[test]
fn input_rules() {
    let cases = [
        (json!({"version": "a b"}), "apps[0].version", "[A-Za-z0-9_]"),
        (
            json!({"version": "v1.0.0+build.5"}),
            "apps[0].version",
            "v1.0.0-build.5",
        ),
        (
            json!({"version": "v1\nx"}),
            "apps[0].version",
            "control character",
        ),
        (
            json!({"version": ".v1"}),
            "apps[0].version",
            "valid image tag",
        ),
        (
            json!({"platforms": ["linux/amd64", "linux/arm64", "linux/amd64"]}),
            "apps[0].platforms[2]",
            "platforms[0]",
        ),
        (json!({"tags": ["a b"]}), "apps[0].tags[0]", "build tag"),
        (
            json!({"tags": ["netgo", ""]}),
            "apps[0].tags[1]",
            "build tag",
        ),
        (
            json!({"build-env": {"A=B": "x"}}),
            "apps[0].build-env",
            "environment variable",
        ),
        (
            json!({"build-env": {"A B": "x"}}),
            "apps[0].build-env",
            "environment variable",
        ),
        (
            json!({"user": {"gid": 65534}}),
            "apps[0].user.gid",
            "nogroup",
        ),
        (
            json!({"user": {"uid": 65534, "gid": 1000}}),
            "apps[0].user.uid",
            "nobody",
        ),
    ];
    for (extra, key, word) in cases {
        let mut app = json!({"name": "api", "path": "app"});
        app.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let text = error_text(json!({ "apps": [app] }));
        assert!(
            text.contains(key) && text.contains(word) && text.contains("help:"),
            "{extra}: {text}"
        );
        // The gid is never reported under the uid's key.
        if key.ends_with("gid") {
            assert!(!text.contains("user.uid"), "{text}");
        }
    }
    let ws = workspace(json!({"apps": [{"name": "api", "path": "app",
        "version": "v1.0.0-build.5", "tags": ["netgo", "osusergo"], "build-env": {"GOAMD64": "v3"}}]}));
    assert!(ws.is_ok(), "{:?}", ws.err());
    // The command line is held to the same rules.
    let ws = ws.unwrap();
    for (overrides, flag) in [
        (
            Overrides {
                version: Some("v1\nLABEL x=y".into()),
                ..Default::default()
            },
            "--app-version",
        ),
        (
            Overrides {
                version: Some("a b".into()),
                ..Default::default()
            },
            "--app-version",
        ),
        (
            Overrides {
                platforms: vec![Platform::host(), Platform::host()],
                ..Default::default()
            },
            "--platform",
        ),
        (
            Overrides {
                gid: Some(65534),
                ..Default::default()
            },
            "--gid",
        ),
    ] {
        let err = ws.select(&[], &overrides).unwrap_err().to_string();
        assert!(err.contains(flag), "{flag}: {err}");
    }
}
