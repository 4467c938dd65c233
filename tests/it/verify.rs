//! `cargo xtask verify` end-to-end tests: images built here with the real
//! docker engine (FROM scratch, no pulls), read as engine images, `docker save`
//! archives and OCI layouts/archives made by skopeo; good ones pass, broken ones
//! fail on the check that should catch them.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use gopack_core::config::{Tzdata, UserConfig};
use gopack_core::verify::{read_build_info, verify, Expectations, ImageSource, Report, Status};
use std::process::Command;
use std::sync::OnceLock;

/// Go binaries built once per test process.
struct Binaries {
    dir: Utf8PathBuf,
    /// Static, stripped, -trimpath, amd64, from a git checkout.
    hello: Utf8PathBuf,
    /// The same for arm64.
    hello_arm64: Utf8PathBuf,
    /// CGO_ENABLED=1 -buildmode=pie.
    pie: Utf8PathBuf,
    /// A cgo program linked against libc.
    cgo: Utf8PathBuf,
    /// Static, stripped: no named zone, no TLS (but time.LoadLocationFromTZData linked).
    plain: Utf8PathBuf,
    /// The commit `hello` was built from.
    revision: String,
}

fn go() -> Utf8PathBuf {
    init();
    go_bin_dir().join("go")
}

fn go_build(dir: &Utf8Path, out: &Utf8Path, env: &[(&str, &str)], flags: &[&str]) {
    let mut cmd = Command::new(go());
    cmd.arg("build")
        .args(flags)
        .arg("-o")
        .arg(out.as_str())
        .arg(".");
    cmd.current_dir(dir).envs(env.iter().copied());
    run_ok(&mut cmd);
}

fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        init();
        require_tool("git", "git");
        require_tool("gcc", "gcc");
        let dir = Utf8PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("verify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let hello_src = dir.join("src/hello");
        copy_dir(&repo_root().join("tests/fixtures/verify/hello"), &hello_src);
        let git = |args: &[&str]| {
            run_ok(
                Command::new("git")
                    .args([
                        "-c",
                        "user.name=gopack",
                        "-c",
                        "user.email=gopack@example.com",
                    ])
                    .args(args)
                    .current_dir(&hello_src),
            )
        };
        git(&["init", "--quiet"]);
        git(&["add", "."]);
        git(&["commit", "--quiet", "--message", "fixture"]);
        let revision = git(&["rev-parse", "HEAD"]).trim().to_string();
        let stripped = ["-trimpath", "-ldflags=-s -w"];
        let hello = dir.join("hello");
        go_build(
            &hello_src,
            &hello,
            &[("CGO_ENABLED", "0"), ("GOARCH", "amd64")],
            &stripped,
        );
        let hello_arm64 = dir.join("hello-arm64");
        go_build(
            &hello_src,
            &hello_arm64,
            &[("CGO_ENABLED", "0"), ("GOARCH", "arm64")],
            &stripped,
        );
        let pie = dir.join("hello-pie");
        go_build(
            &hello_src,
            &pie,
            &[("CGO_ENABLED", "1"), ("GOARCH", "amd64")],
            &["-buildmode=pie"],
        );
        let cgo_src = dir.join("src/cgo");
        copy_dir(&repo_root().join("tests/fixtures/verify/cgo"), &cgo_src);
        let cgo = dir.join("cgo");
        go_build(
            &cgo_src,
            &cgo,
            &[("CGO_ENABLED", "1"), ("GOARCH", "amd64")],
            &[],
        );
        let plain_src = dir.join("src/plain");
        copy_dir(&repo_root().join("tests/fixtures/verify/plain"), &plain_src);
        let plain = dir.join("plain");
        go_build(
            &plain_src,
            &plain,
            &[("CGO_ENABLED", "0"), ("GOARCH", "amd64")],
            &stripped,
        );
        Binaries {
            dir,
            plain,
            hello,
            hello_arm64,
            pie,
            cgo,
            revision,
        }
    })
}

/// A fresh build context folder.
fn context(name: &str) -> Utf8PathBuf {
    let dir = binaries().dir.join(format!("ctx-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn copy_file(from: &Utf8Path, to: &Utf8Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {from} to {to}: {e}"));
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
                      appuser:x:10001:10001::/nonexistent:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nappuser:x:10001:\n";

/// The idioms' final stage, hand-written: passwd/group, optionally CA bundle and
/// zoneinfo from the host, the binary, a numeric USER and an exec ENTRYPOINT.
fn idiom_image(name: &str, with_certs_and_zones: bool) -> DockerImage {
    let bins = binaries();
    let ctx = context(name);
    std::fs::create_dir_all(ctx.join("etc/ssl/certs")).unwrap();
    std::fs::write(ctx.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(ctx.join("etc/group"), GROUP).unwrap();
    let mut dockerfile = String::from("FROM scratch\nCOPY etc/ /etc/\n");
    if with_certs_and_zones {
        copy_file(
            "/etc/ssl/certs/ca-certificates.crt".into(),
            &ctx.join("etc/ssl/certs/ca-certificates.crt"),
        );
        std::fs::create_dir_all(ctx.join("usr/share")).unwrap();
        run_ok(
            Command::new("cp")
                .args(["-a", "/usr/share/zoneinfo"])
                .arg(ctx.join("usr/share").as_str()),
        );
        dockerfile.push_str("COPY usr/ /usr/\n");
    }
    copy_file(&bins.hello, &ctx.join("hello"));
    dockerfile.push_str(&format!(
        "COPY hello /go/bin/hello\n\
         LABEL org.opencontainers.image.revision={}\n\
         USER 10001:10001\n\
         ENTRYPOINT [\"/go/bin/hello\"]\n",
        bins.revision
    ));
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    DockerImage::build(&format!("verify-{name}"), &ctx)
}

/// An image `FROM base` with more Dockerfile lines and files in its context.
fn variant(
    name: &str,
    base: &DockerImage,
    lines: &str,
    files: &[(&str, &Utf8Path)],
) -> DockerImage {
    let ctx = context(name);
    for (to, from) in files {
        copy_file(from, &ctx.join(to));
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\n{lines}\n", base.name),
    )
    .unwrap();
    DockerImage::build(&format!("verify-{name}"), &ctx)
}

/// What the hello app's config would promise.
fn hello_expectations() -> Expectations {
    Expectations {
        app: Some("hello".into()),
        platforms: vec!["linux/amd64".parse().unwrap()],
        binary_path: Some("/go/bin/hello".into()),
        user: Some(UserConfig {
            name: "appuser".into(),
            uid: 10001,
            gid: Some(10001),
        }),
        certs: Some(true),
        tzdata: Some(Tzdata::Files),
        ..Default::default()
    }
}

fn engine(image: &DockerImage) -> ImageSource {
    ImageSource::Docker(image.name.clone())
}

fn statuses(report: &Report, id: &str) -> Vec<Status> {
    report.checks_named(id).map(|c| c.status).collect()
}

fn assert_passes(report: &Report) {
    assert!(report.passed(), "expected a pass:\n{}", report.table());
    assert_eq!(report.counts()[2], 0, "{}", report.table());
}

/// The report fails, and `id` is among the failed checks.
fn assert_fails_on(report: &Report, id: &str) {
    assert!(
        !report.passed(),
        "expected {id} to fail:\n{}",
        report.table()
    );
    assert!(
        statuses(report, id).contains(&Status::Fail),
        "expected {id} to fail:\n{}",
        report.table()
    );
}

fn docker_save(image: &DockerImage, to: &Utf8Path) {
    let docker = docker_engine();
    run_ok(
        Command::new(docker)
            .args(["save", "--output", to.as_str()])
            .arg(&image.name),
    );
}

fn skopeo(args: &[&str]) {
    let skopeo = tool_path("skopeo", "skopeo");
    run_ok(
        Command::new(skopeo)
            .args(["--insecure-policy", "copy", "--quiet"])
            .args(args),
    );
}

#[test]
fn idiom_image_passes_in_every_form() {
    let image = idiom_image("good", true);
    let expect = hello_expectations();

    let report = verify(&engine(&image), &expect).unwrap();
    assert_passes(&report);
    assert_eq!(report.format, "docker engine");
    assert_eq!(
        statuses(&report, "go.revision"),
        [Status::Pass],
        "{}",
        report.table()
    );
    let certs = report.checks_named("certs.bundle").next().unwrap();
    assert!(certs.message.contains("certificates"), "{}", certs.message);

    let dir = binaries().dir.join("forms");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("saved.tar");
    docker_save(&image, &saved);
    let report = verify(&ImageSource::Path(saved.clone()), &expect).unwrap();
    assert_passes(&report);
    assert_eq!(report.format, "docker archive");

    let archive = format!("docker-archive:{saved}");
    let layout = dir.join("layout");
    let _ = std::fs::remove_dir_all(&layout);
    skopeo(&[&archive, &format!("oci:{layout}:latest")]);
    let report = verify(&ImageSource::Path(layout.clone()), &expect).unwrap();
    assert_passes(&report);
    assert_eq!(report.format, "oci layout");
    let layers = report.checks_named("layers.count").next().unwrap();
    assert!(layers.message.contains("gzip"), "{}", layers.message);

    let oci_archive = dir.join("image.oci.tar");
    let _ = std::fs::remove_file(&oci_archive);
    skopeo(&[&archive, &format!("oci-archive:{oci_archive}:latest")]);
    let report = verify(&ImageSource::Path(oci_archive), &expect).unwrap();
    assert_passes(&report);
    assert_eq!(report.format, "oci archive");

    let zstd = dir.join("zstd");
    let _ = std::fs::remove_dir_all(&zstd);
    skopeo(&[
        "--dest-compress-format",
        "zstd",
        &archive,
        &format!("oci:{zstd}:latest"),
    ]);
    let report = verify(&ImageSource::Path(zstd), &expect).unwrap();
    assert_passes(&report);
    let layers = report.checks_named("layers.count").next().unwrap();
    assert!(layers.message.contains("zstd"), "{}", layers.message);

    // The smoke run: from the engine, and from a layout (loaded under a temp tag).
    let mut run = expect.clone();
    run.run = true;
    run.policy.run = Some(gopack_core::verify::RunPolicy {
        expect_output: Some("hello from verify: uid 10001, zone Europe/Paris".into()),
        ..Default::default()
    });
    let report = verify(&engine(&image), &run).unwrap();
    assert_passes(&report);
    assert_eq!(
        statuses(&report, "run.smoke"),
        [Status::Pass],
        "{}",
        report.table()
    );
    let report = verify(&ImageSource::Path(layout), &run).unwrap();
    assert_eq!(
        statuses(&report, "run.smoke"),
        [Status::Pass],
        "{}",
        report.table()
    );
}

#[test]
fn cli_prints_table_json_and_junit_and_exits_1_on_failure() {
    let good = idiom_image("cli", true);
    let root = variant("cli-root", &good, "USER 0:0", &[]);
    let junit = binaries().dir.join("cli-junit/verify.xml");
    let xtask = || Command::new(env!("CARGO_BIN_EXE_xtask"));

    let out = xtask()
        .args(["verify", "--image", &format!("docker:{}", good.name)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pass  elf.static"), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");

    let out = xtask()
        .args([
            "verify",
            "--format",
            "json",
            "--junit",
            junit.as_str(),
            "--image",
        ])
        .arg(format!("docker:{}", root.name))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = json[0]["platforms"][0]["checks"].as_array().unwrap();
    let root_check = checks.iter().find(|c| c["id"] == "user.root").unwrap();
    assert_eq!(root_check["status"], "fail", "{root_check}");
    assert!(
        root_check["remedy"].as_str().unwrap().contains("USER"),
        "{root_check}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("<testcase classname=\"gopack.verify.image.linux_amd64\" name=\"user.root\">\n      <failure"), "{xml}");

    let out = xtask()
        .args(["verify", "--image", &format!("docker:{}", root.name)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  user.root"), "{stdout}");
    assert!(
        stdout.contains("help: run as an unprivileged user"),
        "{stdout}"
    );

    // An image that is not there is an error (exit 2 with `error:`), not a report.
    let out = xtask()
        .args([
            "verify",
            "--image",
            "docker:gopack-test-verify-no-such-image",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error:"),
        "{}",
        text(&out)
    );
}

#[test]
fn root_user_fails() {
    let good = idiom_image("root-base", true);
    let image = variant("root", &good, "USER 0", &[]);
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "user.root");
}

#[test]
fn user_missing_from_passwd_fails() {
    let good = idiom_image("nopasswd-base", true);
    let image = variant("nopasswd", &good, "USER 20002:20002", &[]);
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "user.passwd");
    let check = report.checks_named("user.passwd").next().unwrap();
    assert!(
        check.message.contains("uid 20002 is not in /etc/passwd"),
        "{}",
        check.message
    );
}

#[test]
fn dynamic_cgo_binary_fails_with_its_libraries() {
    let good = idiom_image("cgo-base", true);
    let image = variant(
        "cgo",
        &good,
        "COPY cgo /go/bin/hello",
        &[("cgo", &binaries().cgo)],
    );
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "elf.static");
    let check = report.checks_named("elf.static").next().unwrap();
    assert!(
        check.details.iter().any(|d| d == "libc.so.6 => not found"),
        "{check:?}"
    );
    assert!(
        check
            .details
            .iter()
            .any(|d| d.contains("(interpreter) => not found")),
        "{check:?}"
    );
    assert!(check.remedy.as_deref().unwrap().contains("CGO_ENABLED=0"));
    assert_fails_on(&report, "go.cgo");

    // With the loader and libc copied in, the libraries are found in the image.
    let libc = std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    let loader = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
    let libc = Utf8PathBuf::from_path_buf(libc).unwrap();
    let loader = Utf8PathBuf::from_path_buf(loader).unwrap();
    let with_libs = variant(
        "cgo-libs",
        &image,
        "COPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\nCOPY ld.so /lib64/ld-linux-x86-64.so.2",
        &[("libc.so.6", &libc), ("ld.so", &loader)],
    );
    let report = verify(&engine(&with_libs), &Expectations::default()).unwrap();
    let check = report.checks_named("elf.static").next().unwrap();
    assert!(
        check
            .details
            .iter()
            .any(|d| d == "libc.so.6 => found in image at /lib/x86_64-linux-gnu/libc.so.6"),
        "{check:?}"
    );
    assert!(check.message.contains("are in the image"), "{check:?}");
}

#[test]
fn pie_binary_fails() {
    let good = idiom_image("pie-base", true);
    let image = variant(
        "pie",
        &good,
        "COPY pie /go/bin/hello",
        &[("pie", &binaries().pie)],
    );
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "elf.static");
    let check = report.checks_named("elf.static").next().unwrap();
    assert!(check.message.contains("position-independent"), "{check:?}");
}

#[test]
fn arm64_binary_in_amd64_image_fails() {
    let good = idiom_image("arm-base", true);
    let image = variant(
        "arm",
        &good,
        "COPY hello /go/bin/hello",
        &[("hello", &binaries().hello_arm64)],
    );
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "elf.machine");
    assert_fails_on(&report, "go.platform");
    let check = report.checks_named("elf.machine").next().unwrap();
    assert!(check.message.contains("exec format error"), "{check:?}");
}

#[test]
fn shell_fails() {
    let busybox = tool_path("busybox", "busybox-static");
    let good = idiom_image("shell-base", true);
    let image = variant("shell", &good, "COPY sh /bin/sh", &[("sh", &busybox)]);
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "fs.shell");
    assert!(report
        .checks_named("fs.shell")
        .next()
        .unwrap()
        .message
        .contains("/bin/sh"));
}

/// False alarms seen on real images: a binary that merely links
/// time.LoadLocationFromTZData, an image with /etc/passwd but no /etc/group.
/// And a shell found by content: busybox under another name.
#[test]
fn no_false_alarms_and_a_renamed_busybox_is_a_shell() {
    let bins = binaries();
    let bytes = std::fs::read(&bins.plain).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"time.LoadLocationFromTZData"),
        "the fixture should link the symbol that caused the false alarm"
    );
    let ctx = context("no-group");
    std::fs::create_dir_all(ctx.join("etc")).unwrap();
    std::fs::write(ctx.join("etc/passwd"), PASSWD).unwrap();
    copy_file(&bins.plain, &ctx.join("plain"));
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY etc/passwd /etc/passwd\nCOPY plain /go/bin/plain\n\
         USER 10001:10001\nENTRYPOINT [\"/go/bin/plain\"]\n",
    )
    .unwrap();
    let image = DockerImage::build("verify-no-group", &ctx);
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert!(report.passed(), "{}", report.table());
    assert_eq!(
        statuses(&report, "tz.zoneinfo"),
        [Status::Skip],
        "{}",
        report.table()
    );
    assert_eq!(
        statuses(&report, "user.passwd"),
        [Status::Warn],
        "{}",
        report.table()
    );
    let check = report.checks_named("user.passwd").next().unwrap();
    assert!(
        check
            .message
            .contains("uid 10001 is `appuser` in /etc/passwd")
            && check.message.contains("no /etc/group"),
        "{check:?}"
    );

    let busybox = tool_path("busybox", "busybox-static");
    let renamed = variant(
        "renamed-busybox",
        &image,
        "COPY helper /usr/local/bin/helper",
        &[("helper", &busybox)],
    );
    let report = verify(&engine(&renamed), &Expectations::default()).unwrap();
    assert_fails_on(&report, "fs.shell");
    let check = report.checks_named("fs.shell").next().unwrap();
    assert!(
        check
            .message
            .contains("/usr/local/bin/helper (a busybox binary)"),
        "{check:?}"
    );
    // The Go binary itself is not taken for a shell.
    assert!(!check.message.contains("/go/bin/plain"), "{check:?}");
}

#[test]
fn setuid_file_fails() {
    let good = idiom_image("setuid-base", true);
    // COPY drops the setuid bit; ADD of a tar keeps the modes it holds.
    let ctx = context("setuid-files");
    std::fs::create_dir_all(ctx.join("usr/local/bin")).unwrap();
    copy_file(&binaries().hello, &ctx.join("usr/local/bin/helper"));
    run_ok(
        Command::new("chmod")
            .args(["4755"])
            .arg(ctx.join("usr/local/bin/helper").as_str()),
    );
    let tarball = ctx.join("files.tar");
    run_ok(Command::new("tar").args(["-C", ctx.as_str(), "-cf", tarball.as_str(), "usr"]));
    let image = variant(
        "setuid",
        &good,
        "ADD files.tar /",
        &[("files.tar", &tarball)],
    );
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "fs.setuid");
    let check = report.checks_named("fs.setuid").next().unwrap();
    assert!(
        check.message.contains("/usr/local/bin/helper (4755)"),
        "{check:?}"
    );
}

#[test]
fn corrupt_blob_fails_naming_the_blob() {
    let good = idiom_image("corrupt-base", true);
    let dir = binaries().dir.join("corrupt");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("saved.tar");
    docker_save(&good, &saved);
    let layout = dir.join("layout");
    skopeo(&[
        &format!("docker-archive:{saved}"),
        &format!("oci:{layout}:latest"),
    ]);
    // The largest blob is a layer: flip bytes in its middle.
    let (blob, _) = layout
        .join("blobs/sha256")
        .read_dir_utf8()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().to_path_buf(), e.metadata().unwrap().len())
        })
        .max_by_key(|(_, len)| *len)
        .unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 16] {
        *byte ^= 0xff;
    }
    std::fs::write(&blob, bytes).unwrap();
    let report = verify(&ImageSource::Path(layout), &Expectations::default()).unwrap();
    assert_fails_on(&report, "blobs.digest");
    let check = report.checks_named("blobs.digest").next().unwrap();
    let digest = format!("sha256:{}", blob.file_name().unwrap());
    assert!(check.message.contains(&digest), "{check:?}");
}

#[test]
fn missing_ca_bundle_fails_for_a_tls_client() {
    let image = idiom_image("nocerts", false);
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "certs.bundle");
    let check = report.checks_named("certs.bundle").next().unwrap();
    assert!(check.message.contains("crypto/x509"), "{check:?}");
    // The binary also loads a zone, and there is no zoneinfo.
    assert_fails_on(&report, "tz.zoneinfo");
}

#[test]
fn revision_label_mismatch_fails() {
    let good = idiom_image("revision-base", true);
    let image = variant(
        "revision",
        &good,
        "LABEL org.opencontainers.image.revision=0123456789abcdef0123456789abcdef01234567",
        &[],
    );
    let report = verify(&engine(&image), &Expectations::default()).unwrap();
    assert_fails_on(&report, "go.revision");
}

fn sha256_file(path: &Utf8Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path.as_str()));
    out.split_whitespace().next().unwrap().to_string()
}

/// Writes `bytes` as a blob of the layout; returns (digest, size).
fn put_blob(layout: &Utf8Path, bytes: &[u8]) -> (String, usize) {
    let temp = layout.join("blob.tmp");
    std::fs::write(&temp, bytes).unwrap();
    let hex = sha256_file(&temp);
    std::fs::rename(&temp, layout.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

fn read_json(path: &Utf8Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn multi_platform_index_checks_every_platform() {
    let good = idiom_image("multi-base", true);
    let arm = variant(
        "multi-arm",
        &good,
        "COPY hello /go/bin/hello",
        &[("hello", &binaries().hello_arm64)],
    );
    let dir = binaries().dir.join("multi");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let layout = dir.join("layout");
    for (image, tag) in [(&good, "amd64"), (&arm, "arm64")] {
        let saved = dir.join(format!("{tag}.tar"));
        docker_save(image, &saved);
        skopeo(&[
            &format!("docker-archive:{saved}"),
            &format!("oci:{layout}:{tag}"),
        ]);
    }
    // The classic builder cannot build for arm64: say so in the arm64 image's
    // config, and make the index a proper multi-platform one.
    let mut index = read_json(&layout.join("index.json"));
    for descriptor in index["manifests"].as_array_mut().unwrap() {
        let tag = descriptor["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap()
            .to_string();
        let manifest_path = layout.join(gopack_blob(descriptor["digest"].as_str().unwrap()));
        let mut manifest = read_json(&manifest_path);
        if tag == "arm64" {
            let config_path =
                layout.join(gopack_blob(manifest["config"]["digest"].as_str().unwrap()));
            let mut config = read_json(&config_path);
            config["architecture"] = "arm64".into();
            let (digest, size) = put_blob(&layout, config.to_string().as_bytes());
            manifest["config"]["digest"] = digest.into();
            manifest["config"]["size"] = size.into();
        }
        let (digest, size) = put_blob(&layout, manifest.to_string().as_bytes());
        descriptor["digest"] = digest.into();
        descriptor["size"] = size.into();
        descriptor["platform"] = serde_json::json!({"os": "linux", "architecture": tag});
    }
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();

    let mut expect = hello_expectations();
    expect.platforms = vec![
        "linux/amd64".parse().unwrap(),
        "linux/arm64".parse().unwrap(),
    ];
    let report = verify(&ImageSource::Path(layout.clone()), &expect).unwrap();
    assert_passes(&report);
    let platforms: Vec<&str> = report
        .platforms
        .iter()
        .map(|p| p.platform.as_str())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert!(report.platforms.iter().all(|p| p.checks.len() >= 20));

    // An app that expects another platform too: the image misses it.
    expect.platforms.push("linux/arm/v7".parse().unwrap());
    let report = verify(&ImageSource::Path(layout), &expect).unwrap();
    assert_fails_on(&report, "image.platforms");
}

fn gopack_blob(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').unwrap();
    format!("blobs/{algorithm}/{hex}")
}

/// `go version -m`: the Go version and the `build` settings, dependencies and path.
fn go_version_m(binary: &Utf8Path) -> (String, Vec<(String, String)>, Vec<String>, String) {
    let out = run_ok(Command::new(go()).args(["version", "-m", binary.as_str()]));
    let mut lines = out.lines();
    let version = lines
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let (mut settings, mut deps, mut path) = (Vec::new(), Vec::new(), String::new());
    for line in lines {
        let fields: Vec<&str> = line.trim_start_matches('\t').split('\t').collect();
        match fields[0] {
            "build" => {
                let (key, value) = fields[1].split_once('=').unwrap();
                let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
                    None => value.to_string(),
                };
                settings.push((key.to_string(), value));
            }
            "dep" => deps.push(format!("{} {}", fields[1], fields[2])),
            "path" => path = fields[1].to_string(),
            _ => {}
        }
    }
    (version, settings, deps, path)
}

#[test]
fn build_info_agrees_with_go_version_m() {
    let bins = binaries();
    let dir = bins.dir.join("buildinfo");
    std::fs::create_dir_all(&dir).unwrap();
    let hello_src = bins.dir.join("src/hello");
    let deps_app = dir.join("deps-app");
    copy_dir(&repo_root().join("tests/fixtures/deps-app"), &deps_app);
    let plain = dir.join("plain");
    go_build(
        &hello_src,
        &plain,
        &[("CGO_ENABLED", "0")],
        &["-buildvcs=false"],
    );
    let tagged = dir.join("tagged-arm64");
    go_build(
        &hello_src,
        &tagged,
        &[("CGO_ENABLED", "0"), ("GOARCH", "arm64")],
        &[
            "-tags",
            "timetzdata,netgo",
            "-ldflags=-s -w -X \"main.version=1.2 beta\"",
        ],
    );
    let with_deps = dir.join("deps");
    go_build(
        &deps_app,
        &with_deps,
        &[("CGO_ENABLED", "0")],
        &["-trimpath"],
    );
    let cases = [
        (bins.hello.clone(), "CGO_ENABLED", "0"),
        (bins.hello_arm64.clone(), "GOARCH", "arm64"),
        (bins.pie.clone(), "-buildmode", "pie"),
        (bins.cgo.clone(), "CGO_ENABLED", "1"),
        (plain, "-trimpath", ""),
        (tagged.clone(), "-tags", "timetzdata,netgo"),
        (with_deps, "-trimpath", "true"),
    ];
    for (binary, key, value) in cases {
        let info = read_build_info(&std::fs::read(&binary).unwrap())
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
        let (version, settings, deps, path) = go_version_m(&binary);
        assert_eq!(info.go_version, version, "{binary}");
        assert_eq!(info.settings, settings, "{binary}");
        assert_eq!(info.path, path, "{binary}");
        let ours: Vec<String> = info
            .deps
            .iter()
            .map(|d| format!("{} {}", d.path, d.version))
            .collect();
        assert_eq!(ours, deps, "{binary}");
        if value.is_empty() {
            assert_eq!(info.setting(key), None, "{binary}");
        } else {
            assert_eq!(info.setting(key), Some(value), "{binary}");
        }
    }
    let info = read_build_info(&std::fs::read(&tagged).unwrap()).unwrap();
    assert_eq!(
        info.setting("-ldflags"),
        Some("-s -w -X \"main.version=1.2 beta\"")
    );
    // Not a Go binary.
    let err = read_build_info(&std::fs::read("/bin/ls").unwrap()).unwrap_err();
    assert_eq!(err, gopack_core::verify::BuildInfoError::NotGo);
}

#[test]
fn app_config_sets_expectations_and_policy() {
    let good = idiom_image("app", true);
    let ws = TestWorkspace::new(
        r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
binary-path = "/go/bin/hello"
platforms = ["linux/amd64"]
verify = { max-layers = 2, max-size = "100MiB" }
"#,
    );
    ws.copy("tests/fixtures/verify/hello", "hello");
    let reference = format!("docker:{}", good.name);
    let out = ws.xtask(["verify", "hello", "--image", &reference]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  layers.count"), "{stdout}");
    assert!(stdout.contains("the policy allows 2"), "{stdout}");
    assert!(stdout.contains("pass  image.size"), "{stdout}");

    ws.set_config(
        r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
binary-path = "/go/bin/hello"
platforms = ["linux/amd64"]
verify = { max-layers = 2, allow = ["layers.count"] }
"#,
    );
    let out = ws.xtask(["verify", "hello", "--image", &reference]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("allowed by verify.allow"));

    // An app whose user differs from the image's.
    ws.set_config(
        r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
binary-path = "/go/bin/hello"
user = { name = "svc", uid = 4242 }
"#,
    );
    let out = ws.xtask(["verify", "hello", "--image", &reference]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the app's user is 4242:4242"),
        "{}",
        text(&out)
    );

    // Without --image, the app's packed image is verified; none is there yet.
    let out = ws.xtask(["verify", "hello"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cargo xtask pack hello"), "{stderr}");

    // An unknown check id in `allow` is a config error naming the key.
    ws.set_config(
        r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
verify = { allow = ["elf.statik"] }
"#,
    );
    let out = ws.xtask(["verify", "hello", "--image", &reference]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("verify.allow") && stderr.contains("elf.static"),
        "{stderr}"
    );
}
