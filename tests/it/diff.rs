//! `cargo xtask diff A B`: two packs of one app that differ by a label, by
//! one file's mode, by the binary, and not at all.

use crate::support::{copy_dir, text, TestWorkspace};
use camino::Utf8PathBuf;
use serde_json::Value;

fn config(label: &str, mode: &str) -> String {
    format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"hello\"\npath = \"hello\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"v1.0.0\"\nlabels = {{ team = \"{label}\" }}\n\
         files = [{{ src = \"data.txt\", dst = \"/srv/data.txt\", mode = \"{mode}\" }}]\n"
    )
}

/// Packs the workspace and keeps a copy of its layout as `name`.
fn pack_as(ws: &TestWorkspace, name: &str) -> Utf8PathBuf {
    let out = ws.xtask(["pack", "--no-verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let kept = ws.root.join("images").join(name);
    copy_dir(&ws.root.join("target/gopack/hello/oci"), &kept);
    kept
}

/// `diff A B --json`: the exit code and the document.
fn diff(ws: &TestWorkspace, a: &Utf8PathBuf, b: &Utf8PathBuf) -> (i32, Value) {
    let out = ws.xtask(["diff", a.as_str(), b.as_str(), "--json"]);
    let code = out.status.code().unwrap();
    assert!(code == 0 || code == 1, "{}", text(&out));
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diff --json is one JSON document: {e}\n{}", text(&out)));
    (code, doc)
}

#[test]
fn diff_tells_a_label_a_mode_and_a_binary_apart_and_same_images_exit_0() {
    let ws = TestWorkspace::new(&config("a", "0644"));
    ws.copy("examples/hello", "hello");
    ws.write("hello/data.txt", "some data\n");
    let base = pack_as(&ws, "base");

    // The same image, once more and as its archive: equal, exit 0.
    let again = pack_as(&ws, "again");
    let (code, doc) = diff(&ws, &base, &again);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["equal"], true);
    let archive = ws.root.join("target/gopack/hello/hello.tar");
    let (code, _) = diff(&ws, &base, &archive);
    assert_eq!(code, 0);
    let out = ws.xtask([
        "diff",
        base.as_str(),
        again.as_str(),
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("The images are the same."));

    // A label: one config change, the same files.
    ws.set_config(&config("b", "0644"));
    let label = pack_as(&ws, "label");
    let (code, doc) = diff(&ws, &base, &label);
    assert_eq!(code, 1, "{doc}");
    let platform = &doc["platforms"][0];
    assert_eq!(platform["platform"], "linux/amd64");
    assert_eq!(platform["status"], "changed");
    let settings = platform["config"].as_array().unwrap();
    assert_eq!(settings.len(), 1, "{doc}");
    assert_eq!(settings[0]["field"], "labels.team");
    assert_eq!(settings[0]["before"], "a");
    assert_eq!(settings[0]["after"], "b");
    assert_eq!(platform["files"]["changed"].as_array().unwrap().len(), 0);
    // Only the config differs: every layer is reused, the pull size is the same.
    assert!(platform["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["status"] == "reused"));
    assert_eq!(platform["pull_size"]["difference"], 0);
    let out = ws.xtask([
        "diff",
        base.as_str(),
        label.as_str(),
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let markdown = String::from_utf8_lossy(&out.stdout);
    assert!(markdown.contains("| `labels.team` | a | b |"), "{markdown}");

    // One file's mode: that file changed, by its mode only; the app layer is new.
    ws.set_config(&config("a", "0444"));
    let mode = pack_as(&ws, "mode");
    let (code, doc) = diff(&ws, &base, &mode);
    assert_eq!(code, 1);
    let platform = &doc["platforms"][0];
    let changed = platform["files"]["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{doc}");
    assert_eq!(changed[0]["path"], "/srv/data.txt");
    assert_eq!(changed[0]["changes"][0]["field"], "mode");
    assert_eq!(changed[0]["changes"][0]["before"], "0644");
    assert_eq!(changed[0]["changes"][0]["after"], "0444");
    assert_eq!(changed[0]["changes"].as_array().unwrap().len(), 1);
    let layers = platform["layers"].as_array().unwrap();
    assert!(layers.iter().any(|l| l["status"] == "reused"), "{doc}");
    assert!(layers.iter().any(|l| l["status"] == "new"), "{doc}");
    assert!(layers.iter().any(|l| l["status"] == "removed"), "{doc}");

    // The binary: its content (and size) changed.
    ws.set_config(&config("a", "0644"));
    let main = ws.root.join("hello/main.go");
    let source = std::fs::read_to_string(&main).unwrap();
    let changed = source.replace("hello from gopack", "hello again from gopack");
    assert_ne!(
        changed, source,
        "examples/hello/main.go has no greeting to change"
    );
    std::fs::write(&main, changed).unwrap();
    let binary = pack_as(&ws, "binary");
    let (code, doc) = diff(&ws, &base, &binary);
    assert_eq!(code, 1);
    let changed = doc["platforms"][0]["files"]["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{doc}");
    assert_eq!(changed[0]["path"], "/go/bin/hello");
    assert!(
        changed[0]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "content"),
        "{doc}"
    );
    let text_out = ws.xtask(["diff", base.as_str(), binary.as_str()]);
    assert_eq!(text_out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&text_out.stdout).contains("~ /go/bin/hello"));
}

/// Two pushes of one app to a real registry, differing by a label, compared
/// straight from the registry (a tag and a digest), and against the layout.
#[test]
fn diff_reads_registry_images() {
    let registry = crate::support::Registry::start();
    let with_label = |label: &str| {
        format!(
            "registry = \"{}/team\"\n{}",
            registry.address,
            config(label, "0644")
                .replace("version = \"v1.0.0\"", &format!("version = \"{label}\""))
        )
    };
    let ws = TestWorkspace::new(&with_label("one"));
    ws.copy("examples/hello", "hello");
    ws.write("hello/data.txt", "some data\n");
    let out = ws.xtask(["pack", "--push", "--no-verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let first = ws.root.join("images/one");
    copy_dir(&ws.root.join("target/gopack/hello/oci"), &first);
    ws.set_config(&with_label("two"));
    let out = ws.xtask(["pack", "--push", "--no-verify"]);
    assert!(out.status.success(), "{}", text(&out));

    let one = format!("registry://{}/team/hello:one", registry.address);
    let two = format!("registry://{}/team/hello:two", registry.address);
    let out = ws.xtask(["diff", &one, &two, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["a"], one.as_str());
    let config = doc["platforms"][0]["config"].to_string();
    assert!(config.contains("labels.team"), "{doc}");
    assert!(
        doc["platforms"][0]["files"]["changed"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{doc}"
    );

    // The registry's first image is the layout packed then: equal, exit 0.
    let out = ws.xtask(["diff", first.as_str(), &one]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A digest the registry does not have is an error naming the image.
    let absent = format!(
        "registry://{}/team/hello@sha256:{}",
        registry.address,
        "0".repeat(64)
    );
    let out = ws.xtask(["diff", &absent, &one]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such image"),
        "{}",
        text(&out)
    );
}

#[test]
fn diff_of_an_unreadable_image_or_a_malformed_registry_reference_exits_2() {
    let ws = TestWorkspace::new(&config("a", "0644"));
    let missing = ws.root.join("nothing-here");
    let out = ws.xtask(["diff", missing.as_str(), missing.as_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = ws.xtask([
        "diff",
        "registry://127.0.0.1:1/x@sha256:00",
        missing.as_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
