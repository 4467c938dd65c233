//! What gopack refuses to trust: bad settings, a damaged cache, concurrent runs.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

fn sha256_file(path: &Utf8Path) -> String {
    let hash = Sha256::digest(std::fs::read(path).unwrap());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn flip_byte(path: &Utf8Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

/// Every blob of the layout hashes to its name and shares no inode with the cache.
fn assert_layout_intact(layout: &Utf8Path) {
    use std::os::unix::fs::MetadataExt;
    for entry in layout.join("blobs/sha256").read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        assert_eq!(
            sha256_file(entry.path()),
            format!("sha256:{}", entry.file_name()),
            "layout blob {} does not match its name",
            entry.path()
        );
        assert_eq!(
            entry.metadata().unwrap().nlink(),
            1,
            "{} is a hard link",
            entry.path()
        );
    }
}

#[test]
fn bad_environment_is_refused_naming_the_variable() {
    let ws = hello_workspace();
    for (var, value, word) in [
        ("SOURCE_DATE_EPOCH", "yesterday", "not a number"),
        ("SOURCE_DATE_EPOCH", "99999999999999", "9999"),
        ("GOPACK_CACHE_DIR", "", "empty"),
    ] {
        let out = ws
            .xtask_command(["pack", "--dry-run"])
            .env(var, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} was accepted");
        assert!(
            stderr.contains(var) && stderr.contains(word) && stderr.contains("help:"),
            "{stderr}"
        );
    }
    assert!(!ws.root.join("blobs").exists() && !ws.root.join("bin").exists());
}

#[test]
fn a_damaged_cache_is_reported_rebuilt_and_never_shipped() {
    let ws = hello_workspace();
    let (digest, _) = pack_json(&ws);
    let cache = ws.cache_dir();
    let layout = ws.root.join("target/gopack/hello/oci");
    assert_layout_intact(&layout);
    let manifest = layout_json(&layout, &digest);
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let app_layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| cache.join("blobs").join(d.trim_start_matches("sha256:"));
    let bins = cache_entries(&cache, "bin");
    assert_eq!(bins.len(), 1, "{bins:?}");
    let binary = cache.join("bin").join(&bins[0]);
    let binary_digest = sha256_file(&binary);

    let cases: [(&str, Utf8PathBuf); 4] = [
        ("binary", binary.clone()),
        ("layer", blob(&app_layer)),
        ("config", blob(&config)),
        ("manifest", blob(&digest)),
    ];
    for (kind, path) in cases {
        flip_byte(&path);
        let (again, events) = pack_json(&ws);
        assert_eq!(again, digest, "damaged {kind}: another digest");
        assert!(
            events.contains("\"event\":\"warning\"") && events.contains("damaged cache entry"),
            "damaged {kind} was not reported: {events}"
        );
        assert_layout_intact(&layout);
        if kind != "binary" {
            assert_eq!(
                sha256_file(&path),
                format!("sha256:{}", path.file_name().unwrap()),
                "{kind}"
            );
        }
    }
    assert_eq!(
        sha256_file(&binary),
        binary_digest,
        "the binary was not rebuilt"
    );

    // Damage in the layout stays there (no shared inode) and is replaced by the next pack.
    let layout_layer = layout
        .join("blobs/sha256")
        .join(app_layer.trim_start_matches("sha256:"));
    flip_byte(&layout_layer);
    assert_eq!(
        sha256_file(&blob(&app_layer)),
        app_layer,
        "layout damage reached the cache"
    );
    let (again, events) = pack_json(&ws);
    assert_eq!(again, digest);
    assert!(!events.contains("damaged cache entry"), "{events}");
    assert_layout_intact(&layout);
    let out = ws.xtask(["verify", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn concurrent_packs_of_one_app_take_turns() {
    let ws = hello_workspace();
    let (digest, _) = pack_json(&ws);
    let out = ws.root.join("target/gopack/hello");
    // Leftovers of a killed run.
    std::fs::create_dir_all(out.join(".tmp-layout-killed/blobs")).unwrap();
    std::fs::create_dir_all(out.join(format!(".tmp-old-{}", std::process::id()))).unwrap();
    const RUNS: usize = 4;
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let children: Vec<_> = (0..RUNS)
            .map(|_| {
                ws.xtask_command(["pack", "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "round {round}: {}", text(&output));
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                packed_digests(&stdout).contains(&("hello".to_string(), digest.clone())),
                "round {round}: {stdout}"
            );
        }
    }
    let mut left: Vec<String> = out
        .read_dir_utf8()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    for kind in ["bin", "blobs", "layers", "bin-sums", "verified"] {
        if let Ok(entries) = ws.cache_dir().join(kind).read_dir_utf8() {
            left.extend(
                entries
                    .map(|e| e.unwrap().file_name().to_string())
                    .filter(|n| n.starts_with(".tmp-")),
            );
        }
    }
    assert!(left.is_empty(), "leftovers: {left:?}");
    assert_layout_intact(&out.join("oci"));
}

#[test]
fn a_killed_gopack_takes_go_build_with_it() {
    use std::os::unix::fs::PermissionsExt;
    let ws = hello_workspace();
    // A `go` that is the real one, except that `go build` records its pid and hangs.
    let real_go = go_bin_dir().join("go");
    let pid_file = ws.root.join("go-build.pid");
    let fake_go = ws.root.join("fake-go");
    std::fs::write(
        &fake_go,
        format!(
            "#!/bin/sh\nif [ \"$1\" = build ]; then echo $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; exec sleep 300; fi\nexec {real_go} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake_go, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut gopack = ws
        .xtask_command(["pack"])
        .env("GOPACK_GO", &fake_go)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !pid_file.exists() {
        assert!(
            gopack.try_wait().unwrap().is_none(),
            "gopack ended before go build ran"
        );
        assert!(waited < 1200, "go build never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    let go_build: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    assert!(alive(go_build));
    gopack.kill().unwrap();
    gopack.wait().unwrap();
    // The kernel delivers the parent-death signal as gopack exits; allow for reaping.
    let mut waited = 0;
    while alive(go_build) && waited < 100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert!(
        !alive(go_build),
        "go build (pid {go_build}) outlived the killed gopack"
    );
}

/// Flips a byte and puts the mtime back: only the ctime tells the change.
fn flip_byte_keep_mtime(path: &Utf8Path) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    flip_byte(path);
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(mtime).unwrap();
}

#[test]
fn remembered_hashes_never_hide_damage() {
    use std::os::unix::fs::MetadataExt;
    let ws = hello_workspace();
    let (digest, _) = pack_json(&ws);
    let layout = ws.root.join("target/gopack/hello/oci");
    let archive = ws.root.join("target/gopack/hello/hello.tar");
    let archive_digest = sha256_file(&archive);
    // Past the racy window: the next run remembers the identities of the
    // cache's entries and of the outputs, and the one after trusts them.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    assert_eq!(pack_json(&ws).0, digest);
    let inode = |path: &Utf8Path| std::fs::metadata(path).unwrap().ino();
    let (index_inode, archive_inode) = (inode(&layout.join("index.json")), inode(&archive));
    assert_eq!(pack_json(&ws).0, digest);
    assert_eq!(
        (inode(&layout.join("index.json")), inode(&archive)),
        (index_inode, archive_inode),
        "an unchanged layout and archive are left as they are"
    );

    let manifest = layout_json(&layout, &digest);
    let app_layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = app_layer.trim_start_matches("sha256:");
    let cached = ws.cache_dir().join("blobs").join(hex);
    flip_byte_keep_mtime(&cached);
    let (again, events) = pack_json(&ws);
    assert_eq!(again, digest);
    assert!(events.contains("damaged cache entry"), "{events}");
    assert_eq!(sha256_file(&cached), app_layer);
    assert_layout_intact(&layout);

    flip_byte_keep_mtime(&layout.join("blobs/sha256").join(hex));
    std::fs::write(layout.join("blobs/sha256/extra"), b"not a blob").unwrap();
    flip_byte_keep_mtime(&archive);
    assert_eq!(pack_json(&ws).0, digest);
    assert_layout_intact(&layout);
    assert!(!layout.join("blobs/sha256/extra").exists());
    assert_eq!(
        sha256_file(&archive),
        archive_digest,
        "the damaged archive was kept"
    );
}
