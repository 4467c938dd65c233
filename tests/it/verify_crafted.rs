//! Images crafted byte by byte, as an attacker would write them, and read by
//! `verify` in this process: path traversals in layers and in the archive
//! around them (`fs.paths`), a zero bomb against the unpacked-size and time
//! budgets, a JSON document over its limit, sparse entries, and the user and
//! CA bundle guards. No docker, no go: every image is a few kilobytes or
//! megabytes written here.

use camino::{Utf8Path, Utf8PathBuf};
use gopack_core::verify::{verify, ByteSize, Check, Expectations, ImageSource, Report, Status};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use tar::EntryType::{self, Directory, Link, Regular, Symlink};

const PASSWD: &[u8] =
    b"root:x:0:0:root:/root:/sbin/nologin\nappuser:x:10001:10001::/nonexistent:/sbin/nologin\n";
const GROUP: &[u8] = b"root:x:0:\nappuser:x:10001:\n";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// A tar entry written byte by byte: the tar crate's builder refuses the
/// names an attacker writes (absolute, `..`).
fn entry(name: &str, kind: EntryType, link: &str, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_size(data.len() as u64);
    header.set_mode(if kind == Directory { 0o755 } else { 0o644 });
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(kind);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    entry(name, Regular, "", data)
}

/// A whole tar: the entries and the end-of-archive blocks.
fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = entries.concat();
    bytes.resize(bytes.len() + 1024, 0);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A sane base: passwd, group, an entrypoint, an empty dir and an absolute
/// symlink that stays inside the image (which `fs.paths` must let pass).
fn base_layer() -> Vec<u8> {
    tar(&[
        file("etc/passwd", PASSWD),
        file("etc/group", GROUP),
        entry("etc/ssl/", Directory, "", b""),
        entry(
            "etc/ssl/cert.pem",
            Symlink,
            "/etc/ssl/certs/ca-certificates.crt",
            b"",
        ),
        entry("usr/lib/libx.so", Symlink, "../../lib/libx.so", b""),
        file("app", b"not an ELF, which no check here looks at"),
    ])
}

/// One platform image: the layers as stored (gzip or plain), with their
/// diff_ids, and the config's `config` object.
struct Image {
    stored: Vec<Vec<u8>>,
    diff_ids: Vec<String>,
    run: Value,
}

impl Image {
    fn new(layers: &[Vec<u8>]) -> Image {
        Image {
            stored: layers.iter().map(|l| gzip(l)).collect(),
            diff_ids: layers.iter().map(|l| sha256(l)).collect(),
            run: json!({"Entrypoint": ["/app"], "User": "10001:10001"}),
        }
    }

    fn user(mut self, user: &str) -> Image {
        self.run["User"] = json!(user);
        self
    }

    fn config(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": self.run,
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
        }))
        .unwrap()
    }

    /// The files of an OCI layout: (name, bytes).
    fn oci_files(&self, config: Vec<u8>) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![(
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        )];
        let mut put = |bytes: Vec<u8>, media_type: &str| {
            let digest = sha256(&bytes);
            let descriptor =
                json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
            files.push((format!("blobs/sha256/{}", &digest[7..]), bytes));
            descriptor
        };
        let layers: Vec<Value> = self
            .stored
            .iter()
            .map(|l| put(l.clone(), "application/vnd.oci.image.layer.v1.tar+gzip"))
            .collect();
        let config = put(config, "application/vnd.oci.image.config.v1+json");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        });
        let mut manifest = put(
            serde_json::to_vec(&manifest).unwrap(),
            "application/vnd.oci.image.manifest.v1+json",
        );
        manifest["platform"] = json!({"os": "linux", "architecture": "amd64"});
        let index = json!({"schemaVersion": 2, "manifests": [manifest]});
        files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
        files
    }

    /// Writes an OCI layout folder.
    fn layout(&self, dir: &Utf8Path) -> Utf8PathBuf {
        self.layout_with_config(dir, self.config())
    }

    fn layout_with_config(&self, dir: &Utf8Path, config: Vec<u8>) -> Utf8PathBuf {
        let root = dir.join("oci");
        for (name, bytes) in self.oci_files(config) {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        root
    }

    /// Writes an OCI archive, with `extra` members after the layout's.
    fn oci_archive(&self, dir: &Utf8Path, extra: &[Vec<u8>]) -> Utf8PathBuf {
        let members: Vec<Vec<u8>> = self
            .oci_files(self.config())
            .iter()
            .map(|(name, bytes)| file(name, bytes))
            .chain(extra.iter().cloned())
            .collect();
        let path = dir.join("oci.tar");
        std::fs::write(&path, tar(&members)).unwrap();
        path
    }

    /// Writes a `docker save` archive (uncompressed layers, as docker writes
    /// them), with `extra` members; `layer_names` replaces the layer names
    /// manifest.json gives when set.
    fn docker_archive(
        &self,
        dir: &Utf8Path,
        extra: &[Vec<u8>],
        layer_names: Option<Vec<String>>,
    ) -> Utf8PathBuf {
        let config = self.config();
        let config_name = format!("{}.json", &sha256(&config)[7..]);
        let mut members = vec![file(&config_name, &config)];
        let mut names = Vec::new();
        for (stored, diff_id) in self.stored.iter().zip(&self.diff_ids) {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&stored[..]), &mut plain)
                .unwrap();
            let name = format!("{}/layer.tar", &diff_id[7..]);
            members.push(file(&name, &plain));
            names.push(name);
        }
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": ["crafted:latest"],
            "Layers": layer_names.unwrap_or(names),
        }]);
        members.push(file(
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap(),
        ));
        members.extend(extra.iter().cloned());
        let path = dir.join("docker.tar");
        std::fs::write(&path, tar(&members)).unwrap();
        path
    }
}

fn scratch() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("gopack-crafted-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let path = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    (dir, path)
}

fn run(image: &Utf8Path, expect: &Expectations) -> Report {
    verify(&ImageSource::Path(image.to_path_buf()), expect)
        .unwrap_or_else(|e| panic!("verify {image}: {e}"))
}

fn check<'a>(report: &'a Report, id: &'a str) -> &'a Check {
    report
        .checks_named(id)
        .next()
        .unwrap_or_else(|| panic!("no {id}:\n{}", report.table()))
}

fn assert_check(report: &Report, id: &str, status: Status, words: &[&str]) {
    let found = check(report, id);
    let text = format!("{} {}", found.message, found.details.join(" "));
    assert_eq!(found.status, status, "{id}: {text}\n{}", report.table());
    for word in words {
        assert!(text.contains(word), "{id}: `{word}` not in: {text}");
    }
}

#[test]
fn a_sane_image_passes_fs_paths_in_every_form() {
    let (_keep, dir) = scratch();
    let image = Image::new(&[base_layer()]);
    let expect = Expectations::default();
    for path in [
        image.layout(&dir),
        image.oci_archive(&dir, &[]),
        image.docker_archive(&dir, &[], None),
    ] {
        let report = run(&path, &expect);
        assert_check(
            &report,
            "fs.paths",
            Status::Pass,
            &["inside the image root"],
        );
        assert_check(&report, "blobs.digest", Status::Pass, &[]);
    }
}

#[test]
fn every_traversal_form_fails_fs_paths_in_layouts_and_archives() {
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        (
            "dot-dot name",
            vec![file("../../../tmp/x", b"x")],
            "`../../../tmp/x` in layer 2: a name with a `..` component",
        ),
        (
            "absolute name",
            vec![file("/tmp/x", b"x")],
            "`/tmp/x` in layer 2: an absolute name",
        ),
        (
            "symlink named ../../x",
            vec![entry("../../x", Symlink, "app", b"")],
            "`../../x` in layer 2: a name with a `..` component",
        ),
        (
            "symlink target escaping",
            vec![entry("etc/l", Symlink, "../../../etc/shadow", b"")],
            "symlink /etc/l -> `../../../etc/shadow` in layer 2 leads outside the image root",
        ),
        (
            "absolute symlink target climbing",
            vec![entry("etc/l", Symlink, "/../../etc/shadow", b"")],
            "symlink /etc/l -> `/../../etc/shadow` in layer 2 leads outside",
        ),
        (
            "hard link out",
            vec![entry("etc/h", Link, "../../../../etc/shadow", b"")],
            "hard link /etc/h -> `../../../../etc/shadow` in layer 2 leads outside",
        ),
        (
            "hard-link loop",
            vec![entry("a", Link, "b", b""), entry("b", Link, "a", b"")],
            "hard-link loop /a -> /b -> /a in layer 2",
        ),
        (
            "hard link to itself",
            vec![entry("app", Link, "app", b"")],
            "hard-link loop /app -> /app in layer 2",
        ),
        (
            "hard link to nothing",
            vec![entry("h", Link, "etc/nothing", b"")],
            "hard link /h -> /etc/nothing in layer 2: no entry /etc/nothing comes before it",
        ),
    ];
    let expect = Expectations::default();
    for (case, entries, expected) in cases {
        let (_keep, dir) = scratch();
        let image = Image::new(&[base_layer(), tar(&entries)]);
        for path in [
            image.layout(&dir),
            image.oci_archive(&dir, &[]),
            image.docker_archive(&dir, &[], None),
        ] {
            let report = run(&path, &expect);
            assert_check(&report, "fs.paths", Status::Fail, &[expected]);
            assert!(!report.passed(), "{case}: {path}");
        }
    }
}

#[test]
fn archive_members_that_climb_out_are_refused_without_touching_the_host() {
    let (_keep, dir) = scratch();
    // A naive extractor in dir/a/b would write dir/etc/cron.d/x.
    let at = dir.join("a/b");
    std::fs::create_dir_all(&at).unwrap();
    let image = Image::new(&[base_layer()]);
    let extra = [
        file(
            "../../etc/cron.d/x",
            b"* * * * * root sh -c 'id > /tmp/owned'\n",
        ),
        file("/tmp/abs", b"x"),
        entry("blobs/out", Symlink, "../../../etc/shadow", b""),
    ];
    for path in [
        image.docker_archive(&at, &extra, None),
        image.oci_archive(&at, &extra),
    ] {
        let report = run(&path, &Expectations::default());
        assert_check(
            &report,
            "fs.paths",
            Status::Fail,
            &[
                "3 entries could reach outside",
                "`../../etc/cron.d/x` in the archive: a name with a `..` component",
                "`/tmp/abs` in the archive: an absolute name",
                "link `blobs/out` -> `../../../etc/shadow` in the archive leads outside",
            ],
        );
    }
    assert!(!dir.join("etc").exists());

    // manifest.json naming the member as a layer: it is not read, it is missing.
    let names = vec!["../../etc/cron.d/x".to_string()];
    let path = image.docker_archive(&at, &extra, Some(names));
    let report = run(&path, &Expectations::default());
    assert_check(
        &report,
        "blobs.digest",
        Status::Fail,
        &["../../etc/cron.d/x", "missing"],
    );
    assert_check(&report, "fs.paths", Status::Fail, &["cron.d"]);
    assert!(!dir.join("etc").exists());
}

/// A layer of `gib` GiB of zeros in one file: 1 MiB gzip members, repeated
/// (about 1 KiB stored per MiB). Its diff_id is never reached.
fn zero_bomb(gib: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(gib << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let zeros = vec![0u8; 1 << 20];
    let member = gzip(&zeros);
    let mut blob = gzip(header.as_bytes());
    for _ in 0..gib << 10 {
        blob.extend_from_slice(&member);
    }
    blob.extend_from_slice(&gzip(&[0; 1024]));
    blob
}

#[test]
fn a_zero_bomb_layer_stops_at_max_unpacked_size_and_max_seconds() {
    let (_keep, dir) = scratch();
    let bomb = zero_bomb(4);
    assert!(bomb.len() < 8 << 20, "{}", bomb.len());
    let mut image = Image::new(&[base_layer()]);
    image.stored.push(bomb);
    image.diff_ids.push(format!("sha256:{}", "0".repeat(64)));
    let layout = image.layout(&dir);
    let mut expect = Expectations::default();
    expect.policy.limits.max_unpacked_size = ByteSize(64 << 20);
    let report = run(&layout, &expect);
    // The budget's key and value, and how to raise it.
    assert_check(
        &report,
        "blobs.digest",
        Status::Fail,
        &[
            "the layers unpack to more than 64.0 MiB",
            "`max-unpacked-size` budget",
            "--limit max-unpacked-size=",
        ],
    );
    // The time budget stops the same stream: with none left, the first read fails.
    let mut expect = Expectations::default();
    expect.policy.limits.max_seconds = 0;
    let report = run(&layout, &expect);
    assert_check(
        &report,
        "blobs.digest",
        Status::Fail,
        &["took more than 0 seconds", "`max-seconds` budget"],
    );
}

#[test]
fn a_json_document_over_16_mib_names_the_limit() {
    let (_keep, dir) = scratch();
    let image = Image::new(&[base_layer()]);
    let mut config: Value = serde_json::from_slice(&image.config()).unwrap();
    config["padding"] = json!("a".repeat(17 << 20));
    let layout = image.layout_with_config(&dir, serde_json::to_vec(&config).unwrap());
    let err = verify(&ImageSource::Path(layout), &Expectations::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than 16.0 MiB"), "{err}");
    assert!(err.contains("limit for an image's JSON documents"), "{err}");
    assert!(!err.contains("EOF while parsing"), "{err}");
}

/// A GNU sparse entry: 512 bytes of data after a 1 GiB hole, which the tar
/// reader would make up as zeros.
fn sparse_entry(name: &str) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).unwrap();
    header.set_entry_type(EntryType::GNUSparse);
    header.set_size(512);
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.set_real_size((1 << 30) + 512);
        let octal = |n: u64| format!("{n:011o}\0").into_bytes();
        gnu.sparse[0].offset.copy_from_slice(&octal(1 << 30));
        gnu.sparse[0].numbytes.copy_from_slice(&octal(512));
    }
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(&[b'x'; 512]);
    bytes
}

#[test]
fn sparse_entries_are_refused_in_layers_and_in_archives() {
    let (_keep, dir) = scratch();
    let image = Image::new(&[base_layer(), tar(&[sparse_entry("data/holes")])]);
    let report = run(&image.layout(&dir), &Expectations::default());
    assert_check(
        &report,
        "blobs.digest",
        Status::Fail,
        &["data/holes is a sparse file, which image layers do not hold"],
    );
    let image = Image::new(&[base_layer()]);
    let archive = image.oci_archive(&dir, &[sparse_entry("blobs/sha256/holes")]);
    let err = verify(&ImageSource::Path(archive), &Expectations::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("blobs/sha256/holes is a sparse file, which image archives do not hold"),
        "{err}"
    );
}

#[test]
fn uid_0_with_a_non_root_group_is_root() {
    let (_keep, dir) = scratch();
    let expect = Expectations::default();
    let report = run(&Image::new(&[base_layer()]).layout(&dir), &expect);
    assert_check(&report, "user.root", Status::Pass, &["uid 10001"]);
    for user in ["0:1000", "0:10001", "root:appuser"] {
        let (_keep, dir) = scratch();
        let image = Image::new(&[base_layer()]).user(user);
        let report = run(&image.layout(&dir), &expect);
        assert_check(
            &report,
            "user.root",
            Status::Fail,
            &["runs as root (uid 0)"],
        );
        assert!(!report.passed(), "USER {user} passed:\n{}", report.table());
    }
}

#[test]
fn an_empty_ca_bundle_fails_certs_bundle() {
    let (_keep, dir) = scratch();
    let bundle = "etc/ssl/certs/ca-certificates.crt";
    let image = Image::new(&[base_layer(), tar(&[file(bundle, b"")])]);
    let layout = image.layout(&dir);
    // Asked for by the app's config, and in a foreign image that ships one.
    let asked = Expectations {
        certs: Some(true),
        ..Default::default()
    };
    for expect in [asked, Expectations::default()] {
        let report = run(&layout, &expect);
        assert_check(
            &report,
            "certs.bundle",
            Status::Fail,
            &["/etc/ssl/certs/ca-certificates.crt holds no certificate"],
        );
    }
    // The symlink to it in the base layer leads to the same empty file.
    let (_keep, dir) = scratch();
    let image = Image::new(&[base_layer(), tar(&[file(bundle, b"\n\n")])]);
    let report = run(&image.layout(&dir), &Expectations::default());
    assert_check(&report, "fs.paths", Status::Pass, &[]);
    assert_check(
        &report,
        "certs.bundle",
        Status::Fail,
        &["holds no certificate"],
    );
}

#[test]
fn an_image_whose_entries_escape_is_not_run() {
    let (_keep, dir) = scratch();
    let image = Image::new(&[base_layer(), tar(&[file("../../../tmp/x", b"x")])]);
    let expect = Expectations {
        run: true,
        ..Default::default()
    };
    // Skipped before any docker call: the engine never unpacks the layer.
    let report = run(&image.layout(&dir), &expect);
    assert_check(&report, "fs.paths", Status::Fail, &["../../../tmp/x"]);
    assert_check(
        &report,
        "run.smoke",
        Status::Skip,
        &["not run: fs.paths found entries that reach outside the image root"],
    );
}
