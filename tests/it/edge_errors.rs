//! Errors that tell the truth, on real-shaped modules: go's own error as go
//! printed it and a cgo hint only when cgo is the cause; a missing `main`
//! named with the module's `package main` folders; no `Downloading` when
//! nothing downloads; no temporary path in a message; a Cargo.toml that is
//! not TOML as gopack's error naming the line; the default `musl-gcc` that
//! cannot see zlib.h replaced by gcc, said in a warning; `cmd` gets "did you
//! mean `args`".

use crate::support::*;
use serde_json::Value;
use std::process::Output;

const ONE_APP: &str = r#"
[[workspace.metadata.gopack.apps]]
name = "tunnel"
path = "tunnel"
main = "cmd/tunnel"
platforms = ["linux/amd64"]
"#;

/// The JSON error event of a failed `--json` run.
fn json_error(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|e| e["event"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{}", text(out));
    errors[0].clone()
}

/// A tunnel daemon's shape: a compile error in its main package; a
/// `//go:build windows && cgo` file in a package nothing imports; a cgo test
/// helper imported only by a `_test.go`; cgo under `_tools/` and `testdata/`,
/// which go ignores.
fn write_daemon(ws: &TestWorkspace) {
    ws.write("tunnel/go.mod", "module example.com/tunnel\n\ngo 1.21\n");
    ws.write(
        "tunnel/cmd/tunnel/main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/tunnel/internal/proto\"\n)\n\n\
         func main() {\n\tfmt.Println(proto.Name, undefinedThing)\n}\n",
    );
    ws.write(
        "tunnel/cmd/tunnel/main_test.go",
        "package main\n\nimport (\n\t\"testing\"\n\n\t\"example.com/tunnel/internal/testutil\"\n)\n\n\
         func TestX(t *testing.T) { _ = testutil.Answer() }\n",
    );
    ws.write(
        "tunnel/internal/proto/proto.go",
        "package proto\n\nconst Name = \"tunnel\"\n",
    );
    ws.write(
        "tunnel/internal/winsvc/svc_windows.go",
        "//go:build windows && cgo\n\npackage winsvc\n\n// int svc(void) { return 1; }\nimport \"C\"\n\n\
         func Run() int { return int(C.svc()) }\n",
    );
    ws.write("tunnel/internal/winsvc/svc.go", "package winsvc\n");
    ws.write(
        "tunnel/internal/testutil/cgo_helper.go",
        "//go:build linux && amd64 && cgo\n\npackage testutil\n\n// int answer(void) { return 42; }\n\
         import \"C\"\n\nfunc Answer() int { return int(C.answer()) }\n",
    );
    for dir in ["_tools/gen", "testdata/cgo"] {
        ws.write(
            &format!("tunnel/{dir}/main.go"),
            "package main\n\n// int x(void) { return 0; }\nimport \"C\"\n\nfunc main() { C.x() }\n",
        );
    }
}

#[test]
fn a_compile_error_is_shown_as_go_printed_it_without_a_cgo_claim() {
    let ws = TestWorkspace::new(ONE_APP);
    write_daemon(&ws);
    git_commit_all(&ws.root);
    let go_says = "cmd/tunnel/main.go:10:26: undefined: undefinedThing";

    let out = ws.xtask(["build", "tunnel"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(go_says),
        "go's error is not shown:\n{stderr}"
    );
    for claim in [
        "needs cgo",
        "import \"C\"",
        "svc_windows.go",
        "cgo_helper.go",
        "_tools",
    ] {
        assert!(!stderr.contains(claim), "`{claim}` in:\n{stderr}");
    }
    assert!(stderr.ends_with('\n'), "{stderr:?}");

    // --quiet shows no output as it comes: the error carries go's lines.
    let out = ws.xtask(["build", "tunnel", "--quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(go_says), "{stderr}");
    assert!(!stderr.contains("needs cgo"), "{stderr}");

    // --json: go's lines are `output` events and in the error's message.
    let out = ws.xtask(["build", "tunnel", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let error = json_error(&out);
    assert_eq!(error["code"], "command-failed", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains(go_says),
        "{error}"
    );
    assert!(!error["help"].as_str().unwrap().contains("cgo"), "{error}");
}

#[test]
fn a_cgo_package_the_main_imports_gets_the_cgo_hint_with_gos_error() {
    let ws = TestWorkspace::new(ONE_APP);
    write_daemon(&ws);
    // main now imports a package whose only file needs cgo on linux.
    ws.write(
        "tunnel/cmd/tunnel/main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/tunnel/internal/zip\"\n)\n\n\
         func main() { fmt.Println(zip.Version()) }\n",
    );
    ws.write(
        "tunnel/internal/zip/zip.go",
        "package zip\n\n// static const char *v(void) { return \"1\"; }\nimport \"C\"\n\n\
         func Version() string { return C.GoString(C.v()) }\n",
    );
    git_commit_all(&ws.root);
    let out = ws.xtask(["build", "tunnel"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("build constraints exclude all Go files in"),
        "go's own error is shown:\n{stderr}"
    );
    assert!(stderr.contains("needs cgo"), "{stderr}");
    assert!(
        stderr.contains("example.com/tunnel/internal/zip"),
        "{stderr}"
    );
    assert!(stderr.contains("internal/zip/zip.go"), "{stderr}");
    assert!(stderr.contains("`cgo` key"), "{stderr}");
    assert!(!stderr.contains("svc_windows.go"), "{stderr}");
}

#[test]
fn a_missing_main_names_the_key_and_the_package_main_folders() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "tools"
path = "tools"
platforms = ["linux/amd64"]
"#,
    );
    ws.write("tools/go.mod", "module example.com/tools\n\ngo 1.21\n");
    for dir in ["cmd/client", "cmd/server", "_examples/demo"] {
        ws.write(
            &format!("tools/{dir}/main.go"),
            "package main\n\nfunc main() {}\n",
        );
    }
    ws.write("tools/lib/lib.go", "package lib\n");
    git_commit_all(&ws.root);
    let out = ws.xtask(["build", "tools"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no Go files in"), "go's error:\n{stderr}");
    assert!(stderr.contains("`main` = \".\""), "{stderr}");
    assert!(
        stderr.contains("\"cmd/client\", \"cmd/server\""),
        "{stderr}"
    );
    assert!(!stderr.contains("_examples"), "{stderr}");
    assert!(!stderr.contains("fix the errors above"), "{stderr}");
    // The command names the binary's output path, not a temporary file that is gone.
    assert!(!stderr.contains("/.tmp-"), "{stderr}");
    assert!(
        stderr.contains("-o target/gopack/tools/bin/linux_amd64/tools")
            || stderr.contains(&format!(
                "-o {}/target/gopack/tools/bin/linux_amd64/tools",
                ws.root
            )),
        "{stderr}"
    );
}

#[test]
fn no_download_line_without_requirements_and_no_temp_paths_in_errors() {
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "plain"
path = "plain"
platforms = ["linux/amd64"]

[[workspace.metadata.gopack.apps]]
name = "depsapp"
path = "depsapp"
platforms = ["linux/amd64"]
"#,
    );
    ws.copy("examples/hello", "plain");
    ws.copy("tests/fixtures/deps-app", "depsapp");
    git_commit_all(&ws.root);
    let out = ws.xtask(["build", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Downloading"), "{stderr}");
    assert!(stderr.contains("Building"), "{stderr}");

    // go mod download fails (no proxy): the message names the user's
    // module folder, not the scratch copy that is gone.
    let modcache = tempfile::tempdir().unwrap();
    let out = ws
        .xtask_command(["build", "depsapp"])
        .env("GOPROXY", "off")
        .env("GOMODCACHE", modcache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Downloading"), "{stderr}");
    assert!(!stderr.contains("gopack-modfile-"), "{stderr}");
    assert!(
        stderr.contains(&format!("-modfile={}/depsapp/go.mod", ws.root)),
        "{stderr}"
    );
}

#[test]
fn a_cargo_toml_that_is_not_toml_is_gopacks_error_at_its_line() {
    let ws = TestWorkspace::new(ONE_APP);
    let manifest = ws.root.join("Cargo.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{good}\nname = \"unclosed\n")).unwrap();
    let line = good.lines().count() + 2;

    let out = ws.xtask(["build", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let error = json_error(&out);
    assert_eq!(error["code"], "invalid", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{manifest}:{line}:")),
        "{error}"
    );
    assert!(error["help"].as_str().unwrap().contains("TOML"), "{error}");

    let out = ws.xtask(["build"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{manifest}:{line}:")), "{stderr}");
    assert!(stderr.ends_with('\n'), "{stderr:?}");
}

#[test]
fn cmd_gets_did_you_mean_args() {
    let ws = TestWorkspace::new(&format!("{ONE_APP}cmd = [\"serve\"]\n"));
    let out = ws.xtask(["build", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let error = json_error(&out);
    assert_eq!(error["code"], "config", "{error}");
    assert!(
        error["help"]
            .as_str()
            .unwrap()
            .starts_with("did you mean `args`?"),
        "{error}"
    );
}

#[test]
fn default_static_cgo_builds_a_zlib_app_when_musl_gcc_lacks_zlib_h() {
    require_tool("gcc", "gcc");
    require_tool("musl-gcc", "musl-tools");
    assert!(
        camino::Utf8Path::new("/usr/include/zlib.h").is_file(),
        "this test needs zlib's headers: apt-get install zlib1g-dev"
    );
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "zlib"
path = "zlib"
platforms = ["linux/amd64"]
cgo = "static"
"#,
    );
    ws.copy("tests/fixtures/cgo-zlib", "zlib");
    git_commit_all(&ws.root);
    let out = ws.xtask(["build", "zlib"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("musl-gcc cannot find a C header") && shown.contains("`cc`"),
        "the fallback is said: {shown}"
    );
    let binary = ws.root.join("target/gopack/zlib/bin/linux_amd64/zlib");
    let (_, is_static) = elf_facts(binary.as_std_path());
    assert!(is_static, "{binary} is not static");
    let run = std::process::Command::new(&binary).output().unwrap();
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("zlib 1."),
        "{}",
        text(&run)
    );
    // The next run takes gcc at once (no failed musl-gcc build), from the cache.
    let out = ws.xtask(["build", "zlib", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"binary-cached\""), "{stderr}");
    assert!(!stderr.contains("zlib.h: No such file"), "{stderr}");

    // A C compile that fails with the configured compiler names the `cc` key.
    ws.set_config(
        r#"
[[workspace.metadata.gopack.apps]]
name = "zlib"
path = "zlib"
platforms = ["linux/amd64"]
cgo = "static"
cc = { "linux/amd64" = "musl-gcc" }
"#,
    );
    let out = ws.xtask(["build", "zlib"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zlib.h: No such file or directory"),
        "{stderr}"
    );
    assert!(stderr.contains("`cc` key"), "{stderr}");
    assert!(stderr.contains("cc.\"linux/amd64\""), "{stderr}");
}
