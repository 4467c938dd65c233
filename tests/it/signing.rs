//! Signatures and attestations in cosign's format, checked by independent
//! verifiers: skopeo (containers/image's `sigstoreSigned` policy) pulls the
//! signed image from a real registry with the right public key and refuses it
//! with another; Python's `cryptography` checks the signatures and DSSE
//! envelopes in the layout; `verify --key` passes with the key and fails with
//! another key, a signature copied from another image, and a tampered payload.

use crate::support::*;
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{json, Value};
use sha2::Digest as _;
use std::process::Command;

const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";

fn app(name: &str, extra: &str) -> String {
    format!(
        "[[workspace.metadata.gopack.apps]]\nname = \"{name}\"\npath = \"hello\"\n\
         platforms = [\"linux/amd64\"]\nversion = \"1.2.3\"\n{extra}\n"
    )
}

/// A P-256 key pair made by openssl: (private PKCS#8 PEM, public PEM).
fn key_pair(dir: &Utf8Path, name: &str) -> (Utf8PathBuf, Utf8PathBuf) {
    require_tool("openssl", "openssl");
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    run_ok(Command::new("openssl").args([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        private.as_str(),
    ]));
    run_ok(Command::new("openssl").args([
        "pkey",
        "-in",
        private.as_str(),
        "-pubout",
        "-out",
        public.as_str(),
    ]));
    (private, public)
}

/// Fails saying what to install when Python lacks `module`.
fn require_python(module: &str, package: &str) {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "python3 cannot import {module}: install it with `python3 -m pip install {package}` \
         (.ci/setup does)"
    );
}

fn pack_ok(ws: &TestWorkspace, args: &[&str]) -> Vec<(String, String)> {
    let out = ws.xtask([&["pack"], args].concat());
    assert!(out.status.success(), "{}", text(&out));
    packed_digests(&String::from_utf8_lossy(&out.stdout))
}

fn read_json(path: &Utf8Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The digest of the manifest the layout tags `tag`.
fn tagged(layout: &Utf8Path, tag: &str) -> Option<String> {
    read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .map(|d| d["digest"].as_str().unwrap().to_string())
}

fn sig_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

fn write_blob(layout: &Utf8Path, bytes: &[u8]) -> String {
    let hex = hex_sha256(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

fn hex_sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Points the layout's `tag` at `digest` (a manifest of `size` bytes).
fn retag(layout: &Utf8Path, tag: &str, digest: &str, size: usize) {
    let path = layout.join("index.json");
    let mut index = read_json(&path);
    for d in index["manifests"].as_array_mut().unwrap() {
        if d["annotations"]["org.opencontainers.image.ref.name"] == tag {
            d["digest"] = json!(digest);
            d["size"] = json!(size);
        }
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// `verify --key KEY --image IMAGE --format json`: (exit success, sign.valid messages).
fn verify_key(
    ws: &TestWorkspace,
    image: &Utf8Path,
    key: &Utf8Path,
) -> (bool, Vec<(String, String)>) {
    let out = ws.xtask([
        "verify",
        "--format",
        "json",
        "--image",
        image.as_str(),
        "--key",
        key.as_str(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("verify --format json: {e}\n{}", text(&out)));
    let mut found = Vec::new();
    for report in reports.as_array().unwrap() {
        let checks = report["checks"].as_array().unwrap().iter().chain(
            report["platforms"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["checks"].as_array().unwrap()),
        );
        for check in checks {
            if check["id"] == "sign.valid" {
                found.push((
                    check["status"].as_str().unwrap().to_string(),
                    check["message"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    (out.status.success(), found)
}

#[test]
fn pushed_signatures_are_where_cosign_and_skopeo_look_and_verify() {
    require_tool("skopeo", "skopeo");
    require_python("cryptography", "cryptography");
    let registry = Registry::start();
    let ws = TestWorkspace::new(&format!(
        "registry = \"{}/gopack\"\n{}",
        registry.address,
        app("hello", "platforms = [\"linux/amd64\", \"linux/arm64\"]")
            .replace("platforms = [\"linux/amd64\"]\n", "")
    ));
    ws.copy("examples/hello", "hello");
    let (right_key, right_pub) = key_pair(&ws.root, "right");
    let (_, other_pub) = key_pair(&ws.root, "other");
    let (_, digest) = pack_ok(&ws, &["--push", "--sign-key", right_key.as_str()]).remove(0);
    let repository = format!("{}/gopack/hello", registry.address);

    // skopeo fetches each manifest's `.sig` (the index's and both platforms')
    // and each platform's `.att` from the registry, where cosign looks for
    // them; Python's cryptography checks what arrived.
    let index: Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{repository}@{digest}"),
    ])))
    .unwrap();
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(platforms.len(), 2);
    let fetched = ws.root.join("fetched");
    std::fs::create_dir_all(&fetched).unwrap();
    for (subject, suffix) in std::iter::once((digest.clone(), "sig"))
        .chain(platforms.iter().map(|p| (p.clone(), "sig")))
        .chain(platforms.iter().map(|p| (p.clone(), "att")))
    {
        let tag = sig_tag(&subject, suffix);
        let dir = fetched.join(&tag);
        run_ok(Command::new("skopeo").args([
            "copy",
            "--src-tls-verify=false",
            "--insecure-policy",
            &format!("docker://{repository}:{tag}"),
            &format!("dir:{dir}"),
        ]));
        let manifest = read_json(&dir.join("manifest.json"));
        let layer = &manifest["layers"][0];
        let blob = dir.join(&layer["digest"].as_str().unwrap()[7..]);
        if suffix == "sig" {
            assert_eq!(layer["mediaType"], SIMPLESIGNING);
            let signature = layer["annotations"][SIGNATURE].as_str().unwrap();
            let check = |public: &Utf8Path| {
                Command::new("python3")
                    .args([
                        "-c",
                        PYTHON_SIG,
                        public.as_str(),
                        blob.as_str(),
                        signature,
                        &subject,
                        &repository,
                    ])
                    .output()
                    .unwrap()
            };
            let ok = check(&right_pub);
            assert!(ok.status.success(), "{tag}: {}", text(&ok));
            let refused = check(&other_pub);
            assert!(!refused.status.success(), "{tag} verified with another key");
            assert!(
                text(&refused).contains("InvalidSignature"),
                "{}",
                text(&refused)
            );
        } else {
            assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
            assert_eq!(
                manifest["layers"].as_array().unwrap().len(),
                2,
                "SBOM and provenance"
            );
        }
    }

    // verify --key reads the registry's .sig and .att tags itself.
    let image = format!("registry://{repository}@{digest}");
    let (ok, checks) = verify_key(&ws, Utf8Path::new(&image), &right_pub);
    assert!(ok, "{checks:?}");
    assert_eq!(checks.len(), 3, "the index and two platforms: {checks:?}");
    assert!(
        checks.iter().all(|(status, _)| status == "pass"),
        "{checks:?}"
    );
    let (ok, checks) = verify_key(
        &ws,
        Utf8Path::new(&format!("registry://{repository}:1.2.3")),
        &other_pub,
    );
    assert!(!ok);
    assert!(
        checks.iter().all(|(status, message)| status == "fail"
            && message.contains("does not verify with the key")),
        "{checks:?}"
    );

    // containers/image's own check (`sigstoreSigned` in policy.json, the
    // `.sig` tags read through registries.d) where this skopeo has it: Debian
    // builds skopeo and containers/image without sigstore ("sigstore disabled").
    let registries_d = ws.root.join("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("default.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n",
            registry.address
        ),
    )
    .unwrap();
    let copy = |public: &Utf8Path, out: &str| {
        let policy = ws.root.join(format!("policy-{out}.json"));
        // cosign's identities are repositories without a tag: matchRepository, as
        // containers-policy.json(5) advises for them.
        let requirement = json!([{
            "type": "sigstoreSigned",
            "keyPath": public.as_str(),
            "signedIdentity": {"type": "matchRepository"},
        }]);
        std::fs::write(
            &policy,
            serde_json::to_vec(&json!({
                "default": [{"type": "reject"}],
                "transports": {"docker": {repository.clone(): requirement}},
            }))
            .unwrap(),
        )
        .unwrap();
        Command::new("skopeo")
            .args([
                "copy",
                "--src-tls-verify=false",
                "--policy",
                policy.as_str(),
                "--registries.d",
                registries_d.as_str(),
                &format!("docker://{repository}:1.2.3"),
                &format!("dir:{}", ws.root.join(out)),
            ])
            .output()
            .unwrap()
    };
    let accepted = copy(&right_pub, "accepted");
    if text(&accepted).contains("sigstore disabled") {
        eprintln!(
            "note: this skopeo is built without sigstore (Debian's); the policy check ran \
             only on skopeo builds that have it:\n{}",
            text(&accepted)
        );
        return;
    }
    assert!(
        accepted.status.success(),
        "skopeo refused the right key:\n{}",
        text(&accepted)
    );
    let refused = copy(&other_pub, "refused");
    assert!(!refused.status.success(), "skopeo accepted another key");
}

/// Checks a simple-signing payload and its signature with Python's
/// `cryptography`: argv = public key, payload file, base64 signature, digest, repository.
const PYTHON_SIG: &str = r#"
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
public, payload, signature, digest, repository = sys.argv[1:6]
key = serialization.load_pem_public_key(open(public, "rb").read())
payload = open(payload, "rb").read()
key.verify(base64.b64decode(signature), payload, ec.ECDSA(hashes.SHA256()))
claims = json.loads(payload)
assert claims["critical"]["image"]["docker-manifest-digest"] == digest, claims
assert claims["critical"]["identity"]["docker-reference"] == repository, claims
assert claims["critical"]["type"] == "cosign container image signature", claims
assert claims["optional"] is None, claims
"#;

/// The second verifier: Python's `cryptography` checks every signature layer
/// and DSSE envelope of the layout against the public key, and what they name.
const PYTHON_CHECK: &str = r#"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

layout, public, digest = sys.argv[1:4]
key = serialization.load_pem_public_key(open(public, "rb").read())
index = json.load(open(layout + "/index.json"))
def blob(d):
    data = open(layout + "/blobs/sha256/" + d.split(":")[1], "rb").read()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == d, d
    return data
def tagged(tag):
    for m in index["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return json.loads(blob(m["digest"]))
    raise SystemExit("no " + tag)
sig = tagged(digest.replace(":", "-") + ".sig")
layer = sig["layers"][0]
assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
payload = blob(layer["digest"])
key.verify(base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"]), payload, ec.ECDSA(hashes.SHA256()))
claims = json.loads(payload)
assert claims["critical"]["image"]["docker-manifest-digest"] == digest, claims
assert claims["critical"]["type"] == "cosign container image signature", claims
assert "optional" in claims
att = tagged(digest.replace(":", "-") + ".att")
kinds = []
for layer in att["layers"]:
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    env = json.loads(blob(layer["digest"]))
    body = base64.b64decode(env["payload"])
    t = env["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)
    key.verify(base64.b64decode(env["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    statement = json.loads(body)
    assert any("sha256:" + s["digest"]["sha256"] == digest for s in statement["subject"]), statement
    assert statement["predicateType"] == layer["annotations"]["predicateType"]
    kinds.append(statement["predicateType"])
    # securesystemslib, in-toto's DSSE implementation, checks the envelope too.
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey
    # (cosign leaves keyid empty; it is an unsigned hint, so name the key's own.)
    sslib_key = SSlibKey.from_crypto(key)
    for signature in env["signatures"]:
        signature["keyid"] = sslib_key.keyid
    Envelope.from_dict(env).verify([sslib_key], 1)
print(" ".join(sorted(kinds)))
"#;

/// cosign's encrypted key format, written by an independent implementation
/// (hashlib's scrypt with cosign's N = 32768, r = 8, p = 1; PyNaCl's
/// SecretBox): argv = password, key file, public key file.
const PYTHON_ENCRYPTED_KEY: &str = r#"
import base64, hashlib, json, os, sys, nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
password, key_file, pub_file = sys.argv[1:4]
key = ec.generate_private_key(ec.SECP256R1())
der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
salt, nonce = os.urandom(32), os.urandom(24)
secret = hashlib.scrypt(password.encode(), salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=128 << 20)
sealed = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
b64 = lambda b: base64.b64encode(b).decode()
doc = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": b64(salt)},
       "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)}, "ciphertext": b64(sealed)}
body = b64(json.dumps(doc).encode())
lines = [body[i:i + 64] for i in range(0, len(body), 64)]
open(key_file, "w").write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
open(pub_file, "wb").write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
"#;

#[test]
fn cosign_encrypted_keys_sign_with_cosign_password() {
    require_python("nacl.secret", "pynacl");
    require_python("cryptography", "cryptography");
    let ws = TestWorkspace::new(&app("hello", ""));
    ws.copy("examples/hello", "hello");
    let key = ws.root.join("cosign.key");
    let public = ws.root.join("cosign.pub");
    run_ok(Command::new("python3").args([
        "-c",
        PYTHON_ENCRYPTED_KEY,
        "correct horse",
        key.as_str(),
        public.as_str(),
    ]));
    // Without the password, and with a wrong one: a clear error, nothing signed.
    let out = ws.xtask(["pack", "--sign-key", key.as_str()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("COSIGN_PASSWORD is not set"),
        "{}",
        text(&out)
    );
    let out = ws
        .xtask_command(["pack", "--sign-key", key.as_str()])
        .env("COSIGN_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not open with COSIGN_PASSWORD"),
        "{}",
        text(&out)
    );
    let out = ws
        .xtask_command(["pack", "--sign-key", key.as_str()])
        .env("COSIGN_PASSWORD", "correct horse")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let layout = ws.root.join("target/gopack/hello/oci");
    let (ok, checks) = verify_key(&ws, &layout, &public);
    assert!(ok, "{checks:?}");
    assert_eq!(checks[0].0, "pass", "{checks:?}");
}

#[test]
fn verify_key_and_python_check_signatures_and_signing_is_reproducible() {
    require_python("securesystemslib.dsse", "securesystemslib");
    require_python("cryptography", "cryptography");
    let ws = TestWorkspace::new(&format!(
        "{}{}",
        app("hello", ""),
        app("other", "version = \"2.0.0\"").replace("version = \"1.2.3\"\n", "")
    ));
    ws.copy("examples/hello", "hello");
    let (right_key, right_pub) = key_pair(&ws.root, "right");
    let (_, other_pub) = key_pair(&ws.root, "other");
    let packed = pack_ok(&ws, &["--sign-key", right_key.as_str()]);
    let digest = packed.iter().find(|(n, _)| n == "hello").unwrap().1.clone();
    let other_digest = packed.iter().find(|(n, _)| n == "other").unwrap().1.clone();
    let layout = ws.root.join("target/gopack/hello/oci");
    let archive = ws.root.join("target/gopack/hello/hello.tar");

    // Python's cryptography, an independent verifier.
    let python = run_ok(Command::new("python3").args([
        "-c",
        PYTHON_CHECK,
        layout.as_str(),
        right_pub.as_str(),
        &digest,
    ]));
    assert_eq!(
        python.trim(),
        "https://slsa.dev/provenance/v1 https://spdx.dev/Document"
    );
    let sig = tagged(&layout, &sig_tag(&digest, "sig")).expect("a .sig in the layout");
    let manifest = read_json(&layout.join("blobs/sha256").join(&sig[7..]));
    assert_eq!(manifest["layers"][0]["mediaType"], SIMPLESIGNING);
    assert!(manifest["layers"][0]["annotations"][SIGNATURE].is_string());

    // verify --key on the layout and the archive: the right key passes.
    for image in [&layout, &archive] {
        let (ok, checks) = verify_key(&ws, image, &right_pub);
        assert!(ok, "{image}: {checks:?}");
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert_eq!(checks[0].0, "pass", "{checks:?}");
        assert!(checks[0].1.contains("attested"), "{checks:?}");
    }
    // Another key fails.
    let (ok, checks) = verify_key(&ws, &layout, &other_pub);
    assert!(!ok);
    assert_eq!(checks[0].0, "fail");
    assert!(
        checks[0].1.contains("does not verify with the key"),
        "{checks:?}"
    );

    // Signing twice gives identical bytes: a fresh cache and layout, the same signature.
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    std::fs::remove_dir_all(ws.root.join("target/gopack")).unwrap();
    pack_ok(&ws, &["--sign-key", right_key.as_str()]);
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before,
        "a second signing run wrote other bytes"
    );
    assert_eq!(tagged(&layout, &sig_tag(&digest, "sig")), Some(sig.clone()));

    // The config's verify.key and the environment's key: pack signs from
    // GOPACK_SIGN_KEY and checks what it signed with verify.key before it ships.
    ws.set_config(&format!(
        "{}{}",
        app("hello", "verify = { key = \"right.pub\" }"),
        app("other", "")
    ));
    let pem = std::fs::read_to_string(&right_key).unwrap();
    let out = ws
        .xtask_command(["pack", "hello"])
        .env("GOPACK_SIGN_KEY", &pem)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = ws.xtask(["verify", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sign.valid"), "{}", text(&out));
    // Packing with a key other than verify.key's fails pack's own verify.
    let (wrong_key, _) = key_pair(&ws.root, "wrong");
    let out = ws.xtask(["pack", "hello", "--sign-key", wrong_key.as_str()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sign.valid"), "{}", text(&out));
    pack_ok(&ws, &["hello", "--sign-key", right_key.as_str()]);

    // A signature copied from another image: the other app's .sig put under this tag.
    let other_layout = ws.root.join("target/gopack/other/oci");
    let copied = ws.root.join("copied");
    copy_dir(&layout, &copied);
    let other_sig = tagged(&other_layout, &sig_tag(&other_digest, "sig")).unwrap();
    let mut size = 0;
    for blob in [other_sig.clone()].into_iter().chain(
        read_json(&other_layout.join("blobs/sha256").join(&other_sig[7..]))["layers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(std::iter::once(
                &read_json(&other_layout.join("blobs/sha256").join(&other_sig[7..]))["config"],
            ))
            .map(|d| d["digest"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
    ) {
        let bytes = std::fs::read(other_layout.join("blobs/sha256").join(&blob[7..])).unwrap();
        if blob == other_sig {
            size = bytes.len();
        }
        write_blob(&copied, &bytes);
    }
    retag(&copied, &sig_tag(&digest, "sig"), &other_sig, size);
    let (ok, checks) = verify_key(&ws, &copied, &right_pub);
    assert!(!ok);
    assert!(
        checks[0].1.contains("copied from another image") && checks[0].1.contains(&other_digest),
        "{checks:?}"
    );

    // A tampered payload: another repository in the payload, the signature kept.
    let tampered = ws.root.join("tampered");
    copy_dir(&layout, &tampered);
    let mut manifest = read_json(&tampered.join("blobs/sha256").join(&sig[7..]));
    let payload_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let payload = std::fs::read(tampered.join("blobs/sha256").join(&payload_digest[7..])).unwrap();
    let changed = String::from_utf8(payload).unwrap().replace(
        "\"docker-reference\":\"hello\"",
        "\"docker-reference\":\"evil.example/hello\"",
    );
    assert!(changed.contains("evil.example"), "{changed}");
    let changed_digest = write_blob(&tampered, changed.as_bytes());
    manifest["layers"][0]["digest"] = json!(changed_digest);
    manifest["layers"][0]["size"] = json!(changed.len());
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = write_blob(&tampered, &manifest);
    retag(
        &tampered,
        &sig_tag(&digest, "sig"),
        &manifest_digest,
        manifest.len(),
    );
    let (ok, checks) = verify_key(&ws, &tampered, &right_pub);
    assert!(!ok);
    assert!(
        checks[0].1.contains("does not verify with the key"),
        "{checks:?}"
    );

    // An unsigned image fails sign.valid saying so.
    let unsigned = ws.root.join("target/gopack/unsigned");
    std::fs::remove_dir_all(ws.root.join("target/gopack/other")).unwrap();
    pack_ok(&ws, &["other"]);
    std::fs::rename(ws.root.join("target/gopack/other/oci"), &unsigned).unwrap();
    let (ok, checks) = verify_key(&ws, &unsigned, &right_pub);
    assert!(!ok);
    assert!(checks[0].1.contains("has no signature"), "{checks:?}");
}
