//! The cache registry against canned and hostile registries.

use super::*;

#[test]
fn tags_are_valid_and_unique() {
    let key = "a".repeat(64);
    assert_eq!(tag("bin", &key), format!("bin-{key}"));
    let long = "b".repeat(200);
    let t = tag("layer", &long);
    assert!(t.len() <= 128 && t.starts_with("layer-h"), "{t}");
    assert_ne!(tag("bin", "x/y"), tag("bin", "x_y"));
    assert!(tag("bin", "x/y")
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
}

/// A registry on 127.0.0.1 that answers `GET` by path from `routes` (404
/// otherwise), for `requests` requests.
fn canned_registry(routes: Vec<(String, Vec<u8>)>, requests: usize) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or_default();
            let mut stream = reader.into_inner();
            let (status, body) = match routes.iter().find(|(p, _)| p == path) {
                Some((_, body)) => ("200 OK", body.clone()),
                None if path == "/v2/" => ("200 OK", b"{}".to_vec()),
                None => ("404 Not Found", Vec::new()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    address
}

fn entry(artifact_type: &str, layers: Vec<Descriptor>) -> Vec<u8> {
    canonical_json(&Manifest {
        schema_version: 2,
        media_type: Some(media_type::MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: Descriptor::new(
            "application/vnd.oci.empty.v1+json",
            &digest::sha256(EMPTY),
            2,
        ),
        layers,
        subject: None,
        annotations: None,
    })
}

#[test]
fn hostile_entries_are_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
    let key = "c".repeat(64);
    let binary = b"\x7fELF not really".to_vec();
    let bin_digest = digest::sha256(&binary);
    // A record that names another binary.
    let record = format!("{} 99\n", digest::sha256(b"other")).into_bytes();
    let huge = Descriptor::new(BINARY_MEDIA, &bin_digest, BLOB_LIMIT + 1);
    let cases = [
        (
            entry(
                BINARY_TYPE,
                vec![
                    Descriptor::new(
                        BIN_SUMS_MEDIA,
                        &digest::sha256(&record),
                        record.len() as u64,
                    ),
                    Descriptor::new(BINARY_MEDIA, &bin_digest, binary.len() as u64),
                ],
            ),
            "does not describe its binary",
        ),
        (
            entry(
                BINARY_TYPE,
                vec![
                    Descriptor::new(
                        BIN_SUMS_MEDIA,
                        &digest::sha256(&record),
                        record.len() as u64,
                    ),
                    huge,
                ],
            ),
            "at most",
        ),
        (entry(LAYER_TYPE, Vec::new()), "is not a"),
        (b"not json".to_vec(), "cannot read"),
    ];
    for (manifest, expected) in cases {
        let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
        let routes = vec![
            (format!("/v2/{REPOSITORY}/manifests/bin-{key}"), manifest),
            (
                format!(
                    "/v2/{REPOSITORY}/blobs/sha256:{}",
                    hex(&digest::sha256(&record))
                ),
                record.clone(),
            ),
            (
                format!("/v2/{REPOSITORY}/blobs/sha256:{}", hex(&bin_digest)),
                binary.clone(),
            ),
        ];
        let address = canned_registry(routes, 4);
        let recorder = crate::report::Recorder::default();
        let remote = RemoteCache::new(
            &address,
            "--cache-registry",
            CacheRegistryMode::Read,
            Connection::default(),
            &cache,
            &recorder,
        )
        .unwrap();
        assert!(!remote.fetch_binary("api", &key));
        let events = recorder.events();
        assert!(
            matches!(&events[..], [Event::Warning { message }] if message.contains(expected) && message.contains("ignored")),
            "{expected}: {events:?}"
        );
        assert!(!remote.is_down());
        assert!(
            cache.get(crate::cache::Kind::Bin, &key).is_none()
                && cache.get(crate::cache::Kind::BinSums, &key).is_none()
        );
    }
}

#[test]
fn a_registry_that_is_down_is_one_warning_and_never_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(Utf8PathBuf::from_path_buf(dir.path().into()).unwrap()).unwrap();
    // Bound and closed: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let recorder = crate::report::Recorder::default();
    let remote = RemoteCache::new(
        &format!("127.0.0.1:{port}"),
        "--cache-registry",
        CacheRegistryMode::ReadWrite,
        Connection::default(),
        &cache,
        &recorder,
    )
    .unwrap();
    assert!(!remote.fetch_binary("api", &"a".repeat(64)));
    assert!(remote.fetch_layer("api", &"b".repeat(64)).is_none());
    remote.built_binary("api", "linux/amd64", &"a".repeat(64));
    remote.push_pending();
    let warnings = recorder
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Warning { .. }))
        .count();
    assert_eq!(warnings, 1, "{:?}", recorder.events());
    assert!(remote.is_down());
}
