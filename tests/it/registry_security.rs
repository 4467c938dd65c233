//! The registry as an attacker's ground, end to end against a real
//! `docker-registry`: credential helpers come from PATH and never from the
//! current folder (`pack --push` and the cache registry in read mode); a
//! registry behind a private CA is reached with `--registry-ca-file` and
//! refused, naming the flag, without it; credentials go over plain HTTP to a
//! host that is not this machine, or to a token service given as `http://`
//! on another host, only with `--insecure-registry-credentials`, and when
//! refused nothing is sent.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output};

/// `ci:s3cret`, bcrypt (cost 5), for the registry's htpasswd file.
const HTPASSWD: &str = "ci:$2b$05$lxZkQWLSEqd6PbJn02m0Y.1lEcUE4ig8WD75SK74LvCVzFPFOqG5a\n";

const APP: &str = r#"
[[workspace.metadata.gopack.apps]]
name = "hello"
path = "hello"
platforms = ["linux/amd64"]
"#;

/// A `docker-registry` on `ip` (a free port) with the given `http`/`auth`
/// options; its access log is kept. Stopped when dropped.
struct SecureRegistry {
    child: std::process::Child,
    dir: tempfile::TempDir,
    address: String,
}

impl SecureRegistry {
    /// `auth`: require `ci:s3cret` (HTTP basic). `tls`: certificate and key files.
    fn start(ip: &str, auth: bool, tls: Option<(&Utf8Path, &Utf8Path)>) -> SecureRegistry {
        require_tool("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("gopack-secure-registry-")
            .tempdir()
            .unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        let port = std::net::TcpListener::bind(format!("{ip}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("{ip}:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage: {{filesystem: {{rootdirectory: {root}/data}}}}\n"
        );
        match tls {
            Some((cert, key)) => config.push_str(&format!(
                "http: {{addr: \"{address}\", tls: {{certificate: {cert}, key: {key}}}}}\n"
            )),
            None => config.push_str(&format!("http: {{addr: \"{address}\"}}\n")),
        }
        if auth {
            std::fs::write(root.join("htpasswd"), HTPASSWD).unwrap();
            config.push_str(&format!(
                "auth: {{htpasswd: {{realm: gopack-test, path: {root}/htpasswd}}}}\n"
            ));
        }
        std::fs::write(root.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(root.join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(root.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let registry = SecureRegistry {
            child,
            dir,
            address,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.address).is_ok() {
                return registry;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("docker-registry did not start on {}", registry.address);
    }

    /// The registry's log: one line per request it answered.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The repositories it stores.
    fn repositories(&self) -> Vec<String> {
        let dir = self.dir.path().join("data/docker/registry/v2/repositories");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for SecureRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hello app in a committed workspace.
fn workspace() -> TestWorkspace {
    let ws = TestWorkspace::new(APP);
    ws.copy("examples/hello", "hello");
    git_commit_all(&ws.root);
    ws
}

/// `cargo xtask ARGS` in the workspace, with no registry credentials from the
/// environment and an empty docker config unless the test gives one.
fn xtask(ws: &TestWorkspace, args: &[&str], env: &[(&str, &str)]) -> Output {
    let docker_config = tempfile::tempdir().unwrap();
    let mut cmd = ws.xtask_command(args);
    cmd.env_remove("GOPACK_REGISTRY_USERNAME")
        .env_remove("GOPACK_REGISTRY_PASSWORD")
        .env_remove("GOPACK_CACHE_REGISTRY")
        .env_remove("GOPACK_CACHE_REGISTRY_MODE")
        .env_remove("GOPACK_REGISTRY_CA_FILE")
        .env_remove("SSL_CERT_FILE")
        .env("DOCKER_CONFIG", docker_config.path());
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

fn make_executable(path: &Utf8Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn credential_helpers_come_from_path_never_from_the_current_folder() {
    let registry = SecureRegistry::start("127.0.0.1", true, None);
    let ws = workspace();
    let temp = tempfile::tempdir().unwrap();
    let temp = Utf8Path::from_path(temp.path()).unwrap();
    // The real helper, in a folder on PATH: answers `get` and logs the host.
    let bin = temp.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let asked = temp.join("asked");
    make_executable(
        &bin.join("docker-credential-x"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread host\necho \"$host\" >> {asked}\n\
             echo '{{\"ServerURL\":\"'$host'\",\"Username\":\"ci\",\"Secret\":\"s3cret\"}}'\n"
        ),
    );
    // The decoy a pull request would add to the checkout.
    let marker = temp.join("decoy-ran");
    make_executable(
        &ws.root.join("docker-credential-x"),
        &format!(
            "#!/bin/sh\ntouch {marker}\necho '{{\"Username\":\"evil\",\"Secret\":\"evil\"}}'\n"
        ),
    );
    let docker_config = temp.join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    let path = |with_helper: bool| {
        // `.` and an empty entry first: a lookup that honoured them would find the decoy.
        let helper = if with_helper { bin.as_str() } else { "" };
        format!(".::{helper}:{}", std::env::var("PATH").unwrap())
    };
    let push = ["pack", "hello", "--push", "--registry", &registry.address];

    for config in [
        r#"{"credsStore": "x"}"#.to_string(),
        format!(r#"{{"credHelpers": {{"{}": "x"}}}}"#, registry.address),
    ] {
        std::fs::write(docker_config.join("config.json"), &config).unwrap();
        let _ = std::fs::remove_file(&asked);
        // No helper on PATH: the push fails saying so, and the decoy did not run.
        let out = xtask(
            &ws,
            &push,
            &[
                ("PATH", &path(false)),
                ("DOCKER_CONFIG", docker_config.as_str()),
            ],
        );
        assert!(!out.status.success(), "{config}\n{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("docker-credential-x") && err.contains("PATH"),
            "{err}"
        );
        assert!(!marker.exists(), "the decoy in the current folder ran");

        // The helper on PATH: its credentials open the registry.
        let out = xtask(
            &ws,
            &push,
            &[
                ("PATH", &path(true)),
                ("DOCKER_CONFIG", docker_config.as_str()),
            ],
        );
        assert!(out.status.success(), "{config}\n{}", text(&out));
        assert!(!marker.exists(), "the decoy in the current folder ran");
        assert_eq!(
            std::fs::read_to_string(&asked).unwrap().trim(),
            registry.address,
            "{config}"
        );
        assert_eq!(registry.repositories(), ["hello"]);
    }

    // The cache registry in read mode finds the same helper, and only it.
    std::fs::write(docker_config.join("config.json"), r#"{"credsStore": "x"}"#).unwrap();
    let _ = std::fs::remove_file(&asked);
    let out = xtask(
        &ws,
        &["build", "hello", "--json", "--cache-registry-mode", "read"],
        &[
            ("PATH", &path(true)),
            ("DOCKER_CONFIG", docker_config.as_str()),
            ("GOPACK_CACHE_DIR", temp.join("cold-cache").as_str()),
            ("GOPACK_CACHE_REGISTRY", &format!("{}/ci", registry.address)),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"cache-remote-miss\""), "{err}");
    assert!(!err.contains("\"warning\""), "{err}");
    assert!(!marker.exists(), "the decoy in the current folder ran");
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap().trim(),
        registry.address
    );
    // Without the helper on PATH, the cache registry is one warning naming it.
    let out = xtask(
        &ws,
        &["build", "hello", "--json", "--cache-registry-mode", "read"],
        &[
            ("PATH", &path(false)),
            ("DOCKER_CONFIG", docker_config.as_str()),
            ("GOPACK_CACHE_DIR", temp.join("cold-cache-2").as_str()),
            ("GOPACK_CACHE_REGISTRY", &format!("{}/ci", registry.address)),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"warning\"") && err.contains("docker-credential-x"),
        "{err}"
    );
    assert!(!marker.exists(), "the decoy in the current folder ran");
}

/// A test CA and a certificate it signed for 127.0.0.1, made with openssl.
fn test_ca(dir: &Utf8Path) -> (Utf8PathBuf, Utf8PathBuf, Utf8PathBuf) {
    require_tool("openssl", "openssl");
    let openssl = |args: &[&str]| {
        run_ok(Command::new("openssl").args(args).current_dir(dir));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=gopack test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn a_registry_behind_a_private_ca_needs_its_ca_file() {
    let temp = tempfile::tempdir().unwrap();
    let temp = Utf8Path::from_path(temp.path()).unwrap();
    let (ca, cert, key) = test_ca(temp);
    let registry = SecureRegistry::start("127.0.0.1", false, Some((&cert, &key)));
    let ws = workspace();
    let prefix = format!("https://{}", registry.address);
    let push = ["pack", "hello", "--push", "--registry", &prefix];

    // Not trusted: refused, naming the flag.
    let out = xtask(&ws, &push, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--registry-ca-file") && err.contains(&registry.address),
        "{err}"
    );
    assert!(registry.repositories().is_empty());

    // Trusted with the flag, with its variable, and with SSL_CERT_FILE.
    let mut with_flag = push.to_vec();
    with_flag.extend(["--registry-ca-file", ca.as_str()]);
    let out = xtask(&ws, &with_flag, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(registry.repositories(), ["hello"]);
    for variable in ["GOPACK_REGISTRY_CA_FILE", "SSL_CERT_FILE"] {
        let out = xtask(&ws, &push, &[(variable, ca.as_str())]);
        assert!(out.status.success(), "{variable}\n{}", text(&out));
    }
    // A CA file with no certificate in it is an error naming it.
    let empty = temp.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let mut with_empty = push.to_vec();
    with_empty.extend(["--registry-ca-file", empty.as_str()]);
    let out = xtask(&ws, &with_empty, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--registry-ca-file") && err.contains("empty.pem") && err.contains("no PEM"),
        "{err}"
    );

    // The cache registry (read mode): a warning naming the flag without the CA,
    // entries asked for with it.
    let cache_run = |env: &[(&str, &str)]| {
        let cache = tempfile::tempdir().unwrap();
        let mut all = vec![
            ("GOPACK_CACHE_DIR", cache.path().to_str().unwrap()),
            ("GOPACK_CACHE_REGISTRY", prefix.as_str()),
            ("GOPACK_CACHE_REGISTRY_MODE", "read"),
        ];
        all.extend_from_slice(env);
        let out = xtask(&ws, &["build", "hello", "--json"], &all);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = cache_run(&[]);
    assert!(
        err.contains("\"warning\"") && err.contains("--registry-ca-file"),
        "{err}"
    );
    let err = cache_run(&[("GOPACK_REGISTRY_CA_FILE", ca.as_str())]);
    assert!(
        !err.contains("\"warning\"") && err.contains("\"cache-remote-miss\""),
        "{err}"
    );
}

/// An IPv4 address of this machine that is not loopback, or a panic saying so.
fn non_loopback_ip() -> String {
    let out = run_ok(Command::new("hostname").arg("-I"));
    out.split_whitespace()
        .find(|ip| {
            ip.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
        .expect("this test needs a network interface with an IPv4 address that is not loopback")
}

#[test]
fn credentials_go_over_plain_http_to_another_host_only_when_asked() {
    let ip = non_loopback_ip();
    let registry = SecureRegistry::start(&ip, true, None);
    let ws = workspace();
    let creds = [
        ("GOPACK_REGISTRY_USERNAME", "ci"),
        ("GOPACK_REGISTRY_PASSWORD", "s3cret"),
    ];
    let mut push = vec![
        "pack",
        "hello",
        "--push",
        "--registry",
        &registry.address,
        "--insecure-registry",
    ];
    let out = xtask(&ws, &push, &creds);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was sent") && err.contains("--insecure-registry-credentials"),
        "{err}"
    );
    // Not one request reached the registry.
    assert!(!registry.log().contains("\"GET /v2/"), "{}", registry.log());

    push.push("--insecure-registry-credentials");
    let out = xtask(&ws, &push, &creds);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(registry.repositories(), ["hello"]);
    assert!(registry.log().contains("\"GET /v2/"), "{}", registry.log());
}

#[test]
fn a_token_service_over_plain_http_on_another_host_gets_no_credentials() {
    let ip = non_loopback_ip();
    // The token service a hostile registry names: records whether anyone came.
    let token_service = std::net::TcpListener::bind(format!("{ip}:0")).unwrap();
    let realm = format!("http://{}/token", token_service.local_addr().unwrap());
    token_service.set_nonblocking(true).unwrap();
    // The registry on loopback: every request gets the bearer challenge.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let answer = format!(
                "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"{realm}\",service=\"x\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    let ws = workspace();
    let out = xtask(
        &ws,
        &["pack", "hello", "--push", "--registry", &address],
        &[
            ("GOPACK_REGISTRY_USERNAME", "ci"),
            ("GOPACK_REGISTRY_PASSWORD", "s3cret"),
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was sent")
            && err.contains(&ip)
            && err.contains("--insecure-registry-credentials"),
        "{err}"
    );
    // The token service never saw a connection.
    match token_service.accept() {
        Ok((mut stream, _)) => {
            let mut request = String::new();
            let _ = stream.read_to_string(&mut request);
            panic!("the token service was asked: {request}");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
    }
}
