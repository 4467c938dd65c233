//! Signatures and attestations in cosign's format, checked by independent
//! verifiers: skopeo (containers/image's `sigstoreSigned` policy) pulls the
//! signed image from a real registry with the right public key and refuses it
//! with another; Python's `cryptography` checks the signatures and DSSE
//! envelopes in the layout; `verify --key` passes with the key and fails with
//! another key, a signature copied from another image, and a tampered payload.

mod support;

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{json, Value};
use sha2::Digest as _;
use std::process::Command;
use support::*;

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
fn verify_key(ws: &TestWorkspace, image: &Utf8Path, key: &Utf8Path) -> (bool, Vec<(String, String)>) {
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
fn skopeo_pulls_the_signed_image_with_its_key_and_refuses_another() {
    require_tool("skopeo", "skopeo");
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
    let registries_d = ws.root.join("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("default.yaml"),
        format!("docker:\n  {}:\n    use-sigstore-attachments: true\n", registry.address),
    )
    .unwrap();
    let copy = |public: &Utf8Path, reference: &str, out: &str| {
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
                &format!("docker://{repository}{reference}"),
                &format!("dir:{}", ws.root.join(out)),
            ])
            .output()
            .unwrap()
    };
    // By digest and by tag: the index and the linux/amd64 manifest skopeo
    // picks are both checked.
    let by_digest = copy(&right_pub, &format!("@{digest}"), "by-digest");
    assert!(by_digest.status.success(), "skopeo refused the right key:\n{}", text(&by_digest));
    let by_tag = copy(&right_pub, ":1.2.3", "by-tag");
    assert!(by_tag.status.success(), "skopeo refused the right key:\n{}", text(&by_tag));
    let refused = copy(&other_pub, &format!("@{digest}"), "refused");
    assert!(!refused.status.success(), "skopeo accepted another key");
    let message = text(&refused);
    assert!(
        message.contains("signature") && !ws.root.join("refused/manifest.json").exists(),
        "{message}"
    );
}

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
print(" ".join(sorted(kinds)))
"#;

#[test]
fn verify_key_and_python_check_signatures_and_signing_is_reproducible() {
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
    assert!(checks[0].1.contains("does not verify with the key"), "{checks:?}");

    // Signing twice gives identical bytes: a fresh cache and layout, the same signature.
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    std::fs::remove_dir_all(ws.root.join("target/gopack")).unwrap();
    pack_ok(&ws, &["hello", "--sign-key", right_key.as_str()]);
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before,
        "a second signing run wrote other bytes"
    );
    assert_eq!(tagged(&layout, &sig_tag(&digest, "sig")), Some(sig.clone()));

    // The config's verify.key and the environment's key: pack signs from
    // GOPACK_SIGN_KEY and checks what it signed with verify.key before it ships.
    ws.set_config(&format!("{}{}", app("hello", "verify = { key = \"right.pub\" }"), app("other", "")));
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
    for blob in [other_sig.clone()]
        .into_iter()
        .chain(
            read_json(&other_layout.join("blobs/sha256").join(&other_sig[7..]))["layers"]
                .as_array()
                .unwrap()
                .iter()
                .chain(std::iter::once(
                    &read_json(&other_layout.join("blobs/sha256").join(&other_sig[7..]))["config"],
                ))
                .map(|d| d["digest"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        )
    {
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
    let payload_digest = manifest["layers"][0]["digest"].as_str().unwrap().to_string();
    let payload = std::fs::read(tampered.join("blobs/sha256").join(&payload_digest[7..])).unwrap();
    let changed = String::from_utf8(payload)
        .unwrap()
        .replace("\"docker-reference\":\"hello\"", "\"docker-reference\":\"evil.example/hello\"");
    assert!(changed.contains("evil.example"), "{changed}");
    let changed_digest = write_blob(&tampered, changed.as_bytes());
    manifest["layers"][0]["digest"] = json!(changed_digest);
    manifest["layers"][0]["size"] = json!(changed.len());
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = write_blob(&tampered, &manifest);
    retag(&tampered, &sig_tag(&digest, "sig"), &manifest_digest, manifest.len());
    let (ok, checks) = verify_key(&ws, &tampered, &right_pub);
    assert!(!ok);
    assert!(checks[0].1.contains("does not verify with the key"), "{checks:?}");

    // An unsigned image fails sign.valid saying so.
    let unsigned = ws.root.join("target/gopack/unsigned");
    std::fs::remove_dir_all(ws.root.join("target/gopack/other")).unwrap();
    pack_ok(&ws, &["other"]);
    std::fs::rename(ws.root.join("target/gopack/other/oci"), &unsigned).unwrap();
    let (ok, checks) = verify_key(&ws, &unsigned, &right_pub);
    assert!(!ok);
    assert!(checks[0].1.contains("has no signature"), "{checks:?}");
}
