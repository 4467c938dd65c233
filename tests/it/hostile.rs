//! Hostile images, made here in a few megabytes: each must give `verify` a
//! clear result (a failed check or an error that names the problem), never a
//! panic, an abort or an unbounded allocation. Each runs `cargo xtask verify`
//! as a child and reads its peak memory from the kernel (`wait4` rusage), so
//! the budget is the child's own, whatever else the test process holds.
//!
//! Bombs are written compactly: a gzip member of 1 MiB of zeros, repeated, is a
//! valid multi-member gzip stream of any size of zeros.

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The peak memory any hostile image may drive verify to.
const MAX_RSS: u64 = 256 << 20;
const MIB: u64 = 1 << 20;

fn scratch(name: &str) -> Utf8PathBuf {
    let dir = Utf8PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // Zeros at the best level are about 1 KiB per MiB: a bomb stays small.
    let level = if bytes.iter().all(|&b| b == 0) {
        flate2::Compression::best()
    } else {
        flate2::Compression::fast()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A gzip layer written as members, with the diff_id of what they unpack to.
struct Layer {
    blob: Vec<u8>,
    plain: Sha256,
}

impl Layer {
    fn new() -> Layer {
        Layer {
            blob: Vec::new(),
            plain: Sha256::new(),
        }
    }

    /// Appends `plain`, `times` times, as one gzip member compressed once.
    fn push(&mut self, plain: &[u8], times: usize) -> &mut Layer {
        let member = gzip(plain);
        for _ in 0..times {
            self.blob.extend_from_slice(&member);
            self.plain.update(plain);
        }
        self
    }

    /// Appends `n` bytes of zeros (a multiple of 1 MiB, or less than that).
    fn zeros(&mut self, n: u64) -> &mut Layer {
        let chunk = vec![0u8; MIB.min(n) as usize];
        self.push(&chunk, (n / chunk.len() as u64) as usize)
    }

    /// Appends a tar header for a file.
    fn header(&mut self, path: &str, size: u64, mode: u32) -> &mut Layer {
        let header = header(path, size, mode);
        self.push(header.as_bytes(), 1)
    }

    /// Appends a whole small file (header, data, padding).
    fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Layer {
        let mut bytes = header(path, data.len() as u64, mode).as_bytes().to_vec();
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        self.push(&bytes, 1)
    }

    /// The end-of-archive blocks.
    fn end(&mut self) -> (Vec<u8>, String) {
        self.push(&[0; 1024], 1);
        (
            std::mem::take(&mut self.blob),
            format!("sha256:{}", hex(&self.plain.clone().finalize())),
        )
    }
}

fn header(path: &str, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_size(size);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

const PASSWD: &[u8] =
    b"root:x:0:0:root:/root:/sbin/nologin\nappuser:x:10001:10001::/nonexistent:/sbin/nologin\n";
const GROUP: &[u8] = b"root:x:0:\nappuser:x:10001:\n";

/// A small, sane layer: passwd, group and an entrypoint `/app` with these bytes.
fn base_layer(app: &[u8]) -> (Vec<u8>, String) {
    Layer::new()
        .file("etc/passwd", PASSWD, 0o644)
        .file("etc/group", GROUP, 0o644)
        .file("app", app, 0o755)
        .end()
}

/// An OCI layout folder.
struct Layout {
    dir: Utf8PathBuf,
}

impl Layout {
    fn new(name: &str) -> Layout {
        let dir = scratch(name).join("oci");
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir }
    }

    fn blob_path(&self, digest: &str) -> Utf8PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }

    fn put(&self, bytes: &[u8]) -> Value {
        let digest = digest(bytes);
        std::fs::write(self.blob_path(&digest), bytes).unwrap();
        json!({"digest": digest, "size": bytes.len()})
    }

    fn put_json(&self, media_type: &str, value: &Value) -> Value {
        let mut descriptor = self.put(&serde_json::to_vec(value).unwrap());
        descriptor["mediaType"] = json!(media_type);
        descriptor
    }

    /// Writes config and manifest for `layers` (a blob may be listed many
    /// times) and returns the manifest's descriptor.
    fn manifest(&self, layers: &[(Value, String)], config: Value) -> Value {
        let mut config_doc = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/app"], "User": "10001:10001"},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.1).collect::<Vec<_>>()},
        });
        if let Value::Object(extra) = config {
            for (key, value) in extra {
                config_doc["config"][key] = value;
            }
        }
        let config = self.put_json("application/vnd.oci.image.config.v1+json", &config_doc);
        let layers: Vec<Value> = layers
            .iter()
            .map(|(descriptor, _)| {
                let mut d = descriptor.clone();
                d["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+gzip");
                d
            })
            .collect();
        let mut manifest = self.put_json(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config,
                "layers": layers,
            }),
        );
        manifest["platform"] = json!({"os": "linux", "architecture": "amd64"});
        manifest
    }

    fn index(&self, manifests: &[Value]) -> &Layout {
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap(),
        )
        .unwrap();
        self
    }

    /// One platform image of `layers`.
    fn image(name: &str, layers: &[(Vec<u8>, String)], config: Value) -> Layout {
        let layout = Layout::new(name);
        let listed: Vec<(Value, String)> = layers
            .iter()
            .map(|(blob, diff_id)| (layout.put(blob), diff_id.clone()))
            .collect();
        let manifest = layout.manifest(&listed, config);
        layout.index(&[manifest]);
        layout
    }
}

/// What one `verify` child did.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    peak_rss: u64,
    cpu_seconds: f64,
    wall_seconds: f64,
}

impl Outcome {
    fn report(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("verify printed no JSON report ({e}):\n{}", self.text()))
    }

    /// The first check with this id, over image and platform checks.
    fn check(&self, id: &str) -> Value {
        let report = self.report();
        let image = &report[0];
        image["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                image["platforms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|p| p["checks"].as_array().into_iter().flatten()),
            )
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id}:\n{}", self.text()))
    }

    fn text(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// How a child ran, from the kernel's accounting.
struct Usage {
    code: Option<i32>,
    peak_rss: u64,
    cpu_seconds: f64,
}

/// The variable that makes this test binary, started again, the measuring parent.
const MEASURE: &str = "GOPACK_HOSTILE_MEASURE";

/// Runs `argv` (stdout and stderr to files) and returns its rusage.
///
/// Linux carries a parent's memory high-water mark into a child spawned from
/// it (the child starts on the parent's address space, or a copy), so a child
/// of this test process would report at least this process's peak. The child
/// is therefore started by a fresh, small process: this test binary run again
/// as [`measuring_parent`], which waits for it with `wait4`.
fn measure(argv: &[String], cwd: &Utf8Path, stdout: &Utf8Path, stderr: &Utf8Path) -> Usage {
    let result = cwd.join("rusage");
    let spec = json!({
        "argv": argv, "cwd": cwd, "stdout": stdout, "stderr": stderr, "result": result,
    });
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hostile::measuring_parent",
            "--test-threads",
            "1",
            "--quiet",
        ])
        .env(MEASURE, spec.to_string())
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&result).unwrap_or_else(|e| {
        panic!(
            "the measuring parent wrote no result ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let value: Value = serde_json::from_str(&text).unwrap();
    Usage {
        code: value["code"].as_i64().map(|c| c as i32),
        peak_rss: value["maxrss_kib"].as_u64().unwrap() * 1024,
        cpu_seconds: value["cpu_seconds"].as_f64().unwrap(),
    }
}

/// With `GOPACK_HOSTILE_MEASURE` set, this is the measuring parent of
/// [`measure`]; otherwise it checks that a measured child's peak is its own:
/// this process holds 300 MiB, the child (`xtask --help`) reports far less.
#[test]
fn measuring_parent() {
    let Ok(spec) = std::env::var(MEASURE) else {
        let held = vec![1u8; 300 << 20];
        let dir = scratch("measure");
        let argv = vec![
            env!("CARGO_BIN_EXE_xtask").to_string(),
            "--help".to_string(),
        ];
        let usage = measure(&argv, &dir, &dir.join("stdout"), &dir.join("stderr"));
        assert_eq!(usage.code, Some(0));
        assert!(
            usage.peak_rss > 0 && usage.peak_rss < 100 << 20,
            "{}",
            usage.peak_rss
        );
        assert_eq!(held.iter().map(|&b| b as usize).sum::<usize>(), 300 << 20);
        return;
    };
    let spec: Value = serde_json::from_str(&spec).unwrap();
    let path = |key: &str| spec[key].as_str().unwrap().to_string();
    let argv: Vec<String> = serde_json::from_value(spec["argv"].clone()).unwrap();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(path("cwd"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(path("stdout")).unwrap())
        .stderr(std::fs::File::create(path("stderr")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", argv[0]));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child, with pointers to locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    // Reaped already: `Child` must not wait for it again.
    std::mem::forget(child);
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let result = json!({
        "code": libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        // Linux gives ru_maxrss in KiB.
        "maxrss_kib": usage.ru_maxrss,
        "cpu_seconds": seconds(usage.ru_utime) + seconds(usage.ru_stime),
    });
    std::fs::write(path("result"), result.to_string()).unwrap();
}

/// Runs `cargo xtask verify --format json --image IMAGE ARGS` and measures it.
fn verify(case: &str, image: &Utf8Path, args: &[&str]) -> Outcome {
    let dir = image.parent().unwrap();
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let mut argv: Vec<String> = [
        env!("CARGO_BIN_EXE_xtask"),
        "verify",
        "--format",
        "json",
        "--image",
        image.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(args.iter().map(|s| s.to_string()));
    let started = Instant::now();
    let usage = measure(&argv, dir, &stdout_path, &stderr_path);
    let outcome = Outcome {
        code: usage.code,
        stdout: std::fs::read_to_string(&stdout_path).unwrap(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
        peak_rss: usage.peak_rss,
        cpu_seconds: usage.cpu_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    eprintln!(
        "hostile case `{case}`: exit {:?}, peak RSS {:.1} MiB, CPU {:.2} s, wall {:.2} s",
        outcome.code,
        outcome.peak_rss as f64 / MIB as f64,
        outcome.cpu_seconds,
        outcome.wall_seconds
    );
    assert!(
        !outcome.stderr.contains("panicked") && !outcome.stderr.contains("memory allocation"),
        "{}",
        outcome.text()
    );
    assert!(
        outcome.peak_rss < MAX_RSS,
        "verify used {} MiB: {}",
        outcome.peak_rss / MIB,
        outcome.text()
    );
    outcome
}

fn assert_status(check: &Value, status: &str, words: &[&str]) {
    assert_eq!(check["status"], status, "{check:#}");
    let text = check.to_string();
    for word in words {
        assert!(text.contains(word), "`{word}` not in {check:#}");
    }
}

#[test]
fn a_terabyte_tar_header_is_a_failed_check() {
    // /etc/passwd claims 1 TiB; the layer holds a few bytes of it.
    let (blob, diff_id) = Layer::new()
        .header("etc/passwd", 1 << 40, 0o644)
        .push(b"root:x:0:0::/:/sbin/nologin\n", 1)
        .end();
    assert!(blob.len() < 64 << 10);
    let layout = Layout::image("terabyte", &[(blob, diff_id)], json!({}));
    let out = verify("1 TiB tar header", &layout.dir, &[]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(&out.check("blobs.digest"), "fail", &["cannot be read"]);
    assert_status(&out.check("user.passwd"), "skip", &[]);
}

#[test]
fn a_zero_bomb_entrypoint_is_refused_by_size() {
    // A 2 GiB entrypoint of zeros in a 2 MB layer.
    let (blob, diff_id) = Layer::new()
        .file("etc/passwd", PASSWD, 0o644)
        .file("etc/group", GROUP, 0o644)
        .header("app", 2 << 30, 0o755)
        .zeros(2 << 30)
        .end();
    assert!(blob.len() < 4 << 20, "{}", blob.len());
    let layout = Layout::image("zero-bomb", &[(blob, diff_id)], json!({}));
    let out = verify("2 GiB entrypoint of zeros", &layout.dir, &[]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(&out.check("blobs.digest"), "pass", &[]);
    assert_status(
        &out.check("elf.static"),
        "fail",
        &["max-file-size", "--limit max-file-size=2048MiB"],
    );
}

#[test]
fn a_layer_listed_300_times_is_read_once() {
    // One layer holding 1 GiB of zeros, listed 300 times: 300 GiB if read each time.
    let (blob, diff_id) = Layer::new()
        .header("data/zeros", 1 << 30, 0o644)
        .zeros(1 << 30)
        .end();
    let (base, base_id) = base_layer(b"not an ELF");
    let layout = Layout::new("repeated");
    let mut layers = vec![(layout.put(&base), base_id)];
    let listed = layout.put(&blob);
    for _ in 0..300 {
        layers.push((listed.clone(), diff_id.clone()));
    }
    let manifest = layout.manifest(&layers, json!({}));
    layout.index(&[manifest]);
    let out = verify("one 1 GiB layer listed 300 times", &layout.dir, &[]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(
        &out.check("blobs.digest"),
        "pass",
        &["303 blobs: digests, sizes and diff_ids match"],
    );
    assert_status(&out.check("layers.count"), "pass", &["301 layer(s)"]);
}

#[test]
fn a_million_empty_files_stop_at_the_entry_budget() {
    let mut layer = Layer::new();
    let mut chunk = Vec::with_capacity(10_000 * 512);
    for i in 0..1_000_000u32 {
        chunk.extend_from_slice(header(&format!("f/{i}"), 0, 0o644).as_bytes());
        if chunk.len() == chunk.capacity() {
            layer.push(&chunk, 1);
            chunk.clear();
        }
    }
    let (blob, diff_id) = layer.end();
    let layout = Layout::image("million-files", &[(blob, diff_id)], json!({}));
    let out = verify("a million empty files", &layout.dir, &[]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(
        &out.check("blobs.digest"),
        "fail",
        &["more than 500000 tar entries", "--limit max-entries="],
    );
}

#[test]
fn a_bad_nested_index_fails_blobs_digest() {
    let layout = Layout::new("nested-index");
    let (blob, diff_id) = base_layer(b"not an ELF");
    let layer = layout.put(&blob);
    let manifest = layout.manifest(&[(layer, diff_id)], json!({}));
    // The nested index's bytes change after its digest was taken.
    let nested = json!({"schemaVersion": 2, "manifests": [manifest]});
    let mut descriptor = layout.put_json("application/vnd.oci.image.index.v1+json", &nested);
    let path = layout.blob_path(descriptor["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"  ");
    std::fs::write(&path, bytes).unwrap();
    descriptor["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
    layout.index(&[descriptor]);
    let out = verify("bad nested index", &layout.dir, &[]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(
        &out.check("blobs.digest"),
        "fail",
        &["nested index blob", "hashes to"],
    );
}

#[test]
fn a_symlinked_blob_is_refused() {
    // A layer blob that is a symlink to a file outside the layout (a valid layer,
    // so only the symlink is wrong), and a config blob that is one.
    let (blob, diff_id) = base_layer(b"not an ELF");
    let layout = Layout::image("symlinked-blob", &[(blob.clone(), diff_id)], json!({}));
    let outside = layout.dir.parent().unwrap().join("host-file");
    std::fs::write(&outside, &blob).unwrap();
    let blob_path = layout.blob_path(&digest(&blob));
    std::fs::remove_file(&blob_path).unwrap();
    std::os::unix::fs::symlink(&outside, &blob_path).unwrap();
    let out = verify("symlinked layer blob", &layout.dir, &[]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(
        &out.check("blobs.digest"),
        "fail",
        &["is a symbolic link", "regular files"],
    );

    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.dir.join("index.json")).unwrap()).unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(layout.blob_path(index["manifests"][0]["digest"].as_str().unwrap()))
            .unwrap(),
    )
    .unwrap();
    let config = layout.blob_path(manifest["config"]["digest"].as_str().unwrap());
    let moved = layout.dir.parent().unwrap().join("config-outside");
    std::fs::rename(&config, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &config).unwrap();
    let out = verify("symlinked config blob", &layout.dir, &[]);
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(
        out.stderr.contains("error:") && out.stderr.contains("is a symbolic link"),
        "{}",
        out.text()
    );
}

/// A minimal x86-64 ELF executable: one PT_LOAD segment (read-write, so the
/// Go build info is looked for in it) with `blob` at file offset 0x100, and
/// the segment's fields as given.
fn tiny_elf(blob: &[u8], p_offset: u64, p_vaddr: u64, p_filesz: u64) -> Vec<u8> {
    let mut elf = vec![0u8; 0x100];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf[6] = 1; // version
    let put16 =
        |elf: &mut Vec<u8>, at: usize, v: u16| elf[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |elf: &mut Vec<u8>, at: usize, v: u32| elf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 =
        |elf: &mut Vec<u8>, at: usize, v: u64| elf[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put16(&mut elf, 16, 2); // ET_EXEC
    put16(&mut elf, 18, 62); // EM_X86_64
    put32(&mut elf, 20, 1);
    put64(&mut elf, 24, p_vaddr); // e_entry
    put64(&mut elf, 32, 64); // e_phoff
    put16(&mut elf, 52, 64); // e_ehsize
    put16(&mut elf, 54, 56); // e_phentsize
    put16(&mut elf, 56, 1); // e_phnum
    let ph = 64;
    put32(&mut elf, ph, 1); // PT_LOAD
    put32(&mut elf, ph + 4, 6); // PF_R | PF_W
    put64(&mut elf, ph + 8, p_offset);
    put64(&mut elf, ph + 16, p_vaddr);
    put64(&mut elf, ph + 24, p_vaddr);
    put64(&mut elf, ph + 32, p_filesz);
    put64(&mut elf, ph + 40, p_filesz);
    elf.extend_from_slice(blob);
    elf
}

/// A Go 1.18+ build info blob with these `build` settings.
fn buildinfo(settings: &[(&str, &str)]) -> Vec<u8> {
    let mut blob = b"\xff Go buildinf:".to_vec();
    blob.extend([8, 2]);
    blob.resize(32, 0);
    let version = b"go1.23.5";
    blob.push(version.len() as u8);
    blob.extend(version);
    let mut modinfo = vec![b'0'; 16];
    modinfo.extend(b"path\texample.com/app\n");
    for (key, value) in settings {
        modinfo.extend(format!("build\t{key}={value}\n").as_bytes());
    }
    modinfo.extend([b'1'; 16]);
    let mut length = modinfo.len();
    while length >= 0x80 {
        blob.push((length as u8) | 0x80);
        length >>= 7;
    }
    blob.push(length as u8);
    blob.extend(&modinfo);
    blob
}

#[test]
fn a_truncated_elf_is_a_failed_check() {
    let mut elf = tiny_elf(&buildinfo(&[]), 0, 0x400000, 0x200);
    // Cut inside the program headers.
    elf.truncate(80);
    let (blob, diff_id) = base_layer(&elf);
    let layout = Layout::image("truncated-elf", &[(blob, diff_id)], json!({}));
    let out = verify("truncated ELF", &layout.dir, &[]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(
        &out.check("elf.static"),
        "fail",
        &["not a readable ELF file"],
    );
}

#[test]
fn huge_elf_offsets_are_checked() {
    // A segment whose offset + size and vaddr + size overflow 64 bits, holding
    // a pre-1.18 build info blob whose pointers lead into that overflow.
    let mut blob = b"\xff Go buildinf:".to_vec();
    blob.extend([8, 0]);
    blob.extend(u64::MAX.to_le_bytes());
    blob.extend((u64::MAX - 8).to_le_bytes());
    blob.resize(64, 0);
    let elf = tiny_elf(&blob, 0x100, u64::MAX - 0x1000, u64::MAX - 0x10);
    let (layer, diff_id) = base_layer(&elf);
    let layout = Layout::image("huge-offsets", &[(layer, diff_id)], json!({}));
    let out = verify("huge ELF header offsets", &layout.dir, &[]);
    // A foreign image: unreadable build info is a warning; the rest passes.
    assert_eq!(out.code, Some(0), "{}", out.text());
    let info = out.check("go.buildinfo");
    assert_status(
        &info,
        "warn",
        &["could not read the Go build info", "leads outside the file"],
    );
}

#[test]
fn a_non_ascii_revision_label_is_compared_safely() {
    let elf = tiny_elf(
        &buildinfo(&[
            ("CGO_ENABLED", "0"),
            ("vcs.revision", "0123456789abcdef0123456789abcdef01234567"),
        ]),
        0,
        0x400000,
        0x400,
    );
    let (blob, diff_id) = base_layer(&elf);
    // 1 + 2 × 20 bytes: byte 40 falls inside a character.
    let label = format!("a{}", "é".repeat(20));
    let layout = Layout::image(
        "non-ascii-label",
        &[(blob, diff_id)],
        json!({"Labels": {"org.opencontainers.image.revision": label}}),
    );
    let out = verify("non-ASCII revision label", &layout.dir, &[]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(&out.check("go.revision"), "fail", &["aéé"]);
}

#[test]
fn limits_are_raised_and_lowered_from_the_command_line() {
    let (blob, diff_id) = base_layer(b"not an ELF");
    let layout = Layout::image("limits", &[(blob, diff_id)], json!({}));
    let out = verify(
        "--limit max-entries=2",
        &layout.dir,
        &["--limit", "max-entries=2"],
    );
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_status(
        &out.check("blobs.digest"),
        "fail",
        &["more than 2 tar entries", "--limit max-entries=8"],
    );
    let out = verify(
        "--limit max-file-size=4",
        &layout.dir,
        &["--limit", "max-file-size=4"],
    );
    assert_status(&out.check("elf.static"), "fail", &["max-file-size"]);
    // A wrong limit is a usage error: exit 2.
    let out = verify("--limit bogus", &layout.dir, &["--limit", "max-files=1"]);
    assert_eq!(out.code, Some(2), "{}", out.text());
    assert!(out.stderr.contains("max-entries"), "{}", out.text());
}

#[test]
fn a_closed_stdout_ends_quietly() {
    // `verify --format json | head -c1`: the reader goes away after one byte.
    let (blob, diff_id) = base_layer(b"not an ELF");
    let layout = Layout::image("closed-stdout", &[(blob, diff_id)], json!({}));
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["verify", "--format", "json", "--image", layout.dir.as_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    // The checks' result still tells: the image fails (no ELF entrypoint).
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}
