#!/usr/bin/env python3
"""Writes the seed corpus of gopack's fuzz targets (fuzz/corpus/<target>/).

Small, valid inputs of each parser, plus the hostile shapes of issue 10 cut to a
few kilobytes. Run from the repository root: python3 fuzz/make_seeds.py
"""
import gzip
import hashlib
import io
import json
import os
import struct
import tarfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def tar_bytes(entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, data, extra in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = extra.get("mode", 0o644)
            info.mtime = 0
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = extra.get("link", "")
                tar.addfile(info)
    return buf.getvalue()


def tiny_elf(blob, p_offset, p_vaddr, p_filesz, sections=False):
    elf = bytearray(0x100)
    elf[0:4] = b"\x7fELF"
    elf[4], elf[5], elf[6] = 2, 1, 1
    struct.pack_into("<HHIQQ", elf, 16, 2, 62, 1, p_vaddr, 64)
    struct.pack_into("<HHH", elf, 52, 64, 56, 1)
    struct.pack_into("<IIQQQQQQ", elf, 64, 1, 6, p_offset, p_vaddr, p_vaddr, p_filesz, p_filesz, 0x1000)
    elf += blob
    if sections:
        # .shstrtab and a .go.buildinfo section at 0x100.
        strtab = b"\0.shstrtab\0.go.buildinfo\0.symtab\0"
        stroff = len(elf)
        elf += strtab
        while len(elf) % 8:
            elf.append(0)
        shoff = len(elf)
        sh = bytearray(64 * 4)
        struct.pack_into("<IIQQQQIIQQ", sh, 64, 1, 3, 0, 0, stroff, len(strtab), 0, 0, 1, 0)
        struct.pack_into("<IIQQQQIIQQ", sh, 128, 11, 1, 3, 0x400000, 0x100, len(blob), 0, 0, 16, 0)
        struct.pack_into("<IIQQQQIIQQ", sh, 192, 25, 2, 0, 0, 0x100, 0, 0, 0, 8, 24)
        elf += sh
        struct.pack_into("<Q", elf, 40, shoff)
        struct.pack_into("<HHH", elf, 58, 64, 4, 1)
    return bytes(elf)


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def buildinfo(settings):
    blob = bytearray(b"\xff Go buildinf:") + bytes([8, 2])
    blob += bytes(32 - len(blob))
    blob += uvarint(8) + b"go1.23.5"
    mod = b"0" * 16 + b"path\texample.com/app\nmod\texample.com/app\t(devel)\t\n"
    mod += b"dep\texample.com/greet\tv1.0.0\th1:abc=\n=>\t../greet\t(devel)\t\n"
    for key, value in settings:
        mod += b"build\t" + key.encode() + b"=" + value.encode() + b"\n"
    mod += b"1" * 16
    blob += uvarint(len(mod)) + mod
    return bytes(blob)


def old_buildinfo(version_ptr, mod_ptr):
    blob = bytearray(b"\xff Go buildinf:") + bytes([8, 0])
    blob += struct.pack("<QQ", version_ptr, mod_ptr)
    blob += bytes(64 - len(blob))
    return bytes(blob)


GO_ELF = tiny_elf(buildinfo([("CGO_ENABLED", "0"), ("GOOS", "linux"), ("GOARCH", "amd64"),
                             ("-trimpath", "true"), ("vcs.revision", "0123456789abcdef0123456789abcdef01234567")]),
                  0, 0x400000, 0x1000)
PASSWD = b"root:x:0:0:root:/root:/sbin/nologin\nappuser:x:10001:10001::/nonexistent:/sbin/nologin\n"
GROUP = b"root:x:0:\nappuser:x:10001:\n"
LAYER = tar_bytes([
    ("etc", tarfile.DIRTYPE, b"", {"mode": 0o755}),
    ("etc/passwd", tarfile.REGTYPE, PASSWD, {}),
    ("etc/group", tarfile.REGTYPE, GROUP, {}),
    ("tmp", tarfile.DIRTYPE, b"", {"mode": 0o1777}),
    ("app", tarfile.REGTYPE, GO_ELF, {"mode": 0o755}),
    ("bin/app", tarfile.SYMTYPE, b"", {"link": "../app"}),
    ("usr/bin", tarfile.SYMTYPE, b"", {"link": "/bin"}),
    ("app-hard", tarfile.LNKTYPE, b"", {"link": "app"}),
])


def tar_layer_seeds():
    write("tar_layer", "plain.tar", LAYER)
    write("tar_layer", "gzip.tar.gz", gzip.compress(LAYER, mtime=0))
    write("tar_layer", "whiteouts.tar", tar_bytes([
        ("etc/.wh..wh..opq", tarfile.REGTYPE, b"", {}),
        ("bin/.wh.sh", tarfile.REGTYPE, b"", {}),
        ("etc/passwd", tarfile.REGTYPE, PASSWD, {}),
    ]))
    write("tar_layer", "pax-long-name.tar", tar_bytes([
        ("d/" + "x" * 200, tarfile.REGTYPE, b"long", {}),
        ("l/" + "y" * 150, tarfile.SYMTYPE, b"", {"link": "/" + "z" * 150}),
    ], fmt=tarfile.PAX_FORMAT))
    write("tar_layer", "gnu-long-name.tar", tar_bytes([
        ("g/" + "x" * 200, tarfile.REGTYPE, b"long", {}),
    ], fmt=tarfile.GNU_FORMAT))
    # etc/passwd claims 1 TiB; a few bytes follow.
    header = tarfile.TarInfo("etc/passwd")
    header.size = 1 << 40
    write("tar_layer", "terabyte-header.tar", header.tobuf(tarfile.GNU_FORMAT) + PASSWD)
    # A zero bomb: 4 MiB of zeros as /app, in a few kilobytes.
    header = tarfile.TarInfo("app")
    header.size = 4 << 20
    write("tar_layer", "zeros.tar.gz", gzip.compress(header.tobuf(tarfile.GNU_FORMAT) + bytes(4 << 20) + bytes(1024), 9, mtime=0))


def elf_seeds():
    write("elf_binary", "go-inline.elf", GO_ELF)
    write("elf_binary", "go-sections.elf", tiny_elf(buildinfo([("CGO_ENABLED", "1")]), 0, 0x400000, 0x1000, sections=True))
    write("elf_binary", "go-pointers.elf", tiny_elf(old_buildinfo(0x400140, 0x400150) + struct.pack("<QQQQ", 0x400160, 8, 0x400160, 8) + b"go1.16.1", 0, 0x400000, 0x1000))
    write("elf_binary", "huge-offsets.elf", tiny_elf(old_buildinfo(2**64 - 1, 2**64 - 9), 0x100, 2**64 - 0x1000, 2**64 - 0x10))
    write("elf_binary", "truncated.elf", GO_ELF[:80])
    write("elf_binary", "not-elf", b"#!/bin/sh\necho hi\n")


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image(layer_blob, diff_id, labels=None):
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/app"], "User": "10001:10001", "Env": ["PATH=/bin"],
                   "Labels": labels or {"org.opencontainers.image.revision": "0123456789abcdef"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_bytes = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(layer_blob), "size": len(layer_blob)}],
    }
    manifest_bytes = json.dumps(manifest).encode()
    nested = {"schemaVersion": 2, "manifests": [{"mediaType": manifest["mediaType"], "digest": digest(manifest_bytes),
                                                  "size": len(manifest_bytes), "platform": {"os": "linux", "architecture": "amd64"}}]}
    nested_bytes = json.dumps(nested).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest(nested_bytes),
                                                 "size": len(nested_bytes), "annotations": {"org.opencontainers.image.ref.name": "app:1"}}]}
    return config_bytes, manifest_bytes, nested_bytes, json.dumps(index).encode()


def archive(files):
    return tar_bytes([(name, tarfile.REGTYPE, data, {}) for name, data in files])


def document_and_image_seeds():
    layer_blob = gzip.compress(LAYER, mtime=0)
    config, manifest, nested, index = image(layer_blob, digest(LAYER))
    for name, data in [("config.json", config), ("manifest.json", manifest), ("nested-index.json", nested), ("index.json", index)]:
        write("documents", name, data)
    write("documents", "policy.json", b'{"max-size": "20MiB", "allow": ["go.trimpath"], "limits": {"max-entries": 10}}')
    blobs = [(f"blobs/sha256/{digest(d)[7:]}", d) for d in (layer_blob, config, manifest, nested)]
    write("image_archive", "oci.tar", archive([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)] + blobs))
    docker = json.dumps([{"Config": f"blobs/sha256/{digest(config)[7:]}", "RepoTags": ["app:1"], "Layers": [f"blobs/sha256/{digest(layer_blob)[7:]}"]}]).encode()
    write("image_archive", "docker-save.tar", archive([("manifest.json", docker)] + blobs))
    # Non-ASCII revision label, and one layer listed many times.
    config2, manifest2, nested2, index2 = image(layer_blob, digest(LAYER), {"org.opencontainers.image.revision": "a" + "é" * 20})
    blobs2 = [(f"blobs/sha256/{digest(d)[7:]}", d) for d in (layer_blob, config2, manifest2, nested2)]
    write("image_archive", "non-ascii-label.tar", archive([("oci-layout", b"{}"), ("index.json", index2)] + blobs2))


def fs_paths_seeds():
    """Every traversal form fs.paths fails, and the everyday links it lets pass."""
    REG, SYM, LNK = tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
    write("fs_paths", "traversals.tar", tar_bytes([
        ("../../../tmp/x", REG, b"x", {}),
        ("/tmp/x", REG, b"x", {}),
        ("../../x", SYM, b"", {"link": "app"}),
        ("etc/l", SYM, b"", {"link": "../../../etc/shadow"}),
        ("etc/m", SYM, b"", {"link": "/../etc/shadow"}),
        ("etc/h", LNK, b"", {"link": "../../../../etc/shadow"}),
    ]))
    write("fs_paths", "hard-links.tar.gz", gzip.compress(tar_bytes([
        ("etc/passwd", REG, PASSWD, {}),
        ("a", LNK, b"", {"link": "b"}),
        ("b", LNK, b"", {"link": "a"}),
        ("self", LNK, b"", {"link": "self"}),
        ("nowhere", LNK, b"", {"link": "etc/nothing"}),
        ("copy", LNK, b"", {"link": "./etc/passwd"}),
    ]), mtime=0))
    write("fs_paths", "inside.tar", tar_bytes([
        ("etc/ssl/certs/ca-certificates.crt", REG, b"", {}),
        ("etc/ssl/cert.pem", SYM, b"", {"link": "/etc/ssl/certs/ca-certificates.crt"}),
        ("usr/lib/x", SYM, b"", {"link": "../../lib/x"}),
    ]))
    write("fs_paths", "docker-save-escape.tar", archive([
        ("manifest.json", b'[{"Config":"c.json","Layers":["../../etc/cron.d/x"]}]'),
        ("../../etc/cron.d/x", b"* * * * * root id\n"),
        ("/tmp/abs", b"x"),
    ]))


if __name__ == "__main__":
    tar_layer_seeds()
    elf_seeds()
    document_and_image_seeds()
    fs_paths_seeds()
