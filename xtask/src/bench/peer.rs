//! `bench --peer`: gopack against a Dockerfile build with the best Dockerfile
//! tooling Debian has, `buildah bud --layers` (daemonless, `RUN
//! --mount=type=cache`), on the same one-line change of a vendored service.
//!
//! Nothing can be pulled, so the builder image is made here: the host's Go
//! toolchain (GOROOT copied with its symlinks resolved, as Debian's points
//! into /usr/share), a static busybox as `/bin/sh`, root's passwd and group,
//! `/tmp`. The Dockerfile follows the seed's idioms (builder stage with cache
//! mounts for the Go build and module caches, `CGO_ENABLED=0 go build -trimpath
//! -ldflags="-s -w"`, a `FROM scratch` final stage with the binary, passwd and
//! group, non-root `USER`) and is written into the bench's scratch folder.
//!
//! buildah gets its own storage (`--root`, `--runroot`), runc state
//! (`--runtime-flag root=`) and cache-mount folder (`TMPDIR`) in a scratch
//! folder; everything is removed when the measurement ends, even on error,
//! including the blob-info cache buildah writes under /var/lib/containers when
//! that did not exist before.

use super::{apps, generate, median, ms, time};
use camino::{Utf8Path, Utf8PathBuf};
use std::process::{Command, Stdio};

/// The image names used inside the bench's private buildah storage.
const BUILDER: &str = "localhost/gopack-bench-builder:latest";
const APP_IMAGE: &str = "localhost/gopack-bench-large:latest";

/// Vendored third-party modules added to the generated large app: modules,
/// packages per module, files per package.
const VENDOR_MODULES: &[&str] = &[
    "github.com/acme/logfmt",
    "github.com/acme/router",
    "golang.example.org/x/textproto",
    "gopkg.example.in/yaml.v3",
];
const VENDOR_PACKAGES: usize = 4;
const VENDOR_FILES: usize = 8;

/// The heading of the section in docs/benchmarks.md.
pub const HEADING: &str = "## Against a Dockerfile build (buildah)";

/// The section `bench --write` writes: the table, or why there is none.
pub fn section(scratch: &Utf8Path, me: &std::path::Path, runs: usize) -> Result<String, String> {
    let body = match find_buildah() {
        Some(_) => measure(scratch, me, runs)?,
        None => format!("{NOT_FOUND}.\n"),
    };
    Ok(format!("\n{HEADING}\n\n{}\n\n{body}", description(runs)))
}

const NOT_FOUND: &str = "buildah not found: apt-get install buildah";

/// What the table measures and the exact commands.
pub fn description(runs: usize) -> String {
    format!(
        "`cargo xtask bench --peer` (median of {runs} runs, warm caches: one build of each \
         before the timed ones): the generated large app plus {} vendored modules \
         (`GOFLAGS=-mod=vendor`, `GOPROXY=off`), a one-line change of code (a package variable set in an `init` \
         appended to main.go, a new binary each time) before each run. gopack: `pack large --platform linux/amd64`, whole process. \
         Plain `go build` with gopack's flags. buildah: `buildah --root R --runroot RR \
         --storage-driver overlay bud --layers --force-rm --runtime-flag root=S -q -f Dockerfile \
         -t IMAGE APP` with the seed's multi-stage Dockerfile (`RUN --mount=type=cache,\
         target=/root/.cache/go-build --mount=type=cache,target=/go/pkg/mod CGO_ENABLED=0 go \
         build -trimpath -ldflags=\"-s -w\"`, `FROM scratch`, `USER appuser:appuser`) on a \
         builder image made locally from the host's Go toolchain and busybox-static; root, \
         default (runc) isolation.",
        VENDOR_MODULES.len()
    )
}

/// `bench --peer` alone: the table, without the section's heading.
pub fn measure(scratch: &Utf8Path, me: &std::path::Path, runs: usize) -> Result<String, String> {
    let buildah = find_buildah().ok_or_else(|| NOT_FOUND.to_string())?;
    let busybox = static_busybox()?;
    let version = output(Command::new(&buildah).arg("--version"))?;
    let load = apps::load();

    let app = scratch.join("large");
    generate::large_app(&app)?;
    vendor(&app)?;
    let manifest = scratch.join("Cargo.toml");
    std::fs::write(
        &manifest,
        "[workspace]\nmembers = []\n\n[[workspace.metadata.gopack.apps]]\nname = \"large\"\n\
         path = \"large\"\nplatforms = [\"linux/amd64\"]\nversion-variable = \"main.version\"\n\
         version = \"1.0.0\"\n",
    )
    .map_err(|e| format!("{manifest}: {e}"))?;
    let ctx = apps::Context::new(&scratch.join("apps"), me)?;
    let gopack = ctx.measure(Some(&manifest), "large", runs)?;

    let storage = Storage::new(&buildah, &scratch.join("buildah"))?;
    eprintln!("peer: making the builder image...");
    storage.make_builder(&busybox, &scratch.join("builder-rootfs"))?;
    let dockerfile = scratch.join("Dockerfile");
    std::fs::write(&dockerfile, DOCKERFILE).map_err(|e| format!("{dockerfile}: {e}"))?;
    let bud = || {
        let mut cmd = storage.command();
        cmd.args(["bud", "--layers", "--force-rm", "--runtime-flag"])
            .arg(format!("root={}", storage.runc))
            .args(["-q", "-f"])
            .arg(&dockerfile)
            .args(["-t", APP_IMAGE])
            .arg(&app);
        cmd
    };
    eprintln!("peer: first buildah build (compiles the standard library into the cache mount)...");
    time(&mut bud()).map_err(|e| format!("{e} (buildah's own error is above)"))?;
    let main_go = app.join("main.go");
    let original = std::fs::read(&main_go).map_err(|e| format!("{main_go}: {e}"))?;
    let _restore = apps::Restore {
        path: main_go.clone(),
        bytes: original.clone(),
    };
    let mut n = 0;
    let buildah_time = median(runs, || {
        n += 1;
        let bytes = apps::code_edit(&original, 1000 + n);
        std::fs::write(&main_go, bytes).map_err(|e| format!("{main_go}: {e}"))?;
        time(&mut bud())
    })?;

    let go = gopack.code_go_build.as_secs_f64().max(1e-9);
    Ok(format!(
        "{version}; `large` + vendored modules: {} files, {} bytes.\n\n\
         | one line of code changed, warm caches (load average {load}) | time | against plain `go build` |\n\
         |---|---|---|\n\
         | plain `go build` (gopack's flags) | {} | 1.00 |\n\
         | gopack `pack` (build, layers, image, verify) | {} | {:.2} |\n\
         | `buildah bud --layers` (Dockerfile, cache mounts) | {} | {:.2} |\n",
        gopack.files,
        gopack.bytes,
        ms(gopack.code_go_build),
        ms(gopack.code_change),
        gopack.code_change.as_secs_f64() / go,
        ms(buildah_time),
        buildah_time.as_secs_f64() / go,
    ))
}

/// The seed's Dockerfile for a vendored app: no `go mod download` (vendor/
/// replaces it, and it would need the network), the same build flags, the
/// user written by printf (busybox-static has no adduser).
const DOCKERFILE: &str = r#"FROM localhost/gopack-bench-builder:latest AS builder
ARG USERNAME=appuser
ARG USER_ID=10001
ARG GROUP_ID=10001
RUN printf '%s:x:%s:%s::/nonexistent:/sbin/nologin\n' "$USERNAME" "$USER_ID" "$GROUP_ID" > /passwd \
 && printf '%s:x:%s:\n' "$USERNAME" "$GROUP_ID" > /group
WORKDIR /src
COPY go.mod ./
COPY vendor/ vendor/
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build --mount=type=cache,target=/go/pkg/mod \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /go/bin/large .

FROM scratch
COPY --from=builder /passwd /etc/passwd
COPY --from=builder /group /etc/group
COPY --from=builder /go/bin/large /go/bin/large
USER appuser:appuser
ENTRYPOINT ["/go/bin/large"]
"#;

fn find_buildah() -> Option<Utf8PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(|dir| Utf8Path::new(dir).join("buildah"))
        .find(|p| p.is_file())
}

/// A statically linked busybox (Debian's busybox-static), the builder's `/bin/sh`.
fn static_busybox() -> Result<Utf8PathBuf, String> {
    const FIX: &str = "the buildah peer's builder image needs a static busybox as its shell: \
                       apt-get install busybox-static";
    for path in ["/bin/busybox", "/usr/bin/busybox"] {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        if is_static_elf(&bytes) {
            return Ok(path.into());
        }
        return Err(format!("{path} is dynamically linked; {FIX}"));
    }
    Err(format!("busybox not found; {FIX}"))
}

/// A 64-bit little-endian ELF with no PT_INTERP program header.
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).all(|i| {
        let at = phoff as usize + i * phentsize as usize;
        u32_at(at).is_some_and(|kind| kind != 3)
    })
}

/// Adds vendored modules to the generated app: go.mod's requirements,
/// vendor/modules.txt, the packages, and a file of the main package that
/// uses every one of them.
fn vendor(app: &Utf8Path) -> Result<(), String> {
    let write = |path: Utf8PathBuf, text: String| -> Result<(), String> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{parent}: {e}"))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))
    };
    let mut go_mod = String::from("module example.com/large\n\ngo 1.21\n\nrequire (\n");
    let mut modules_txt = String::new();
    let mut uses = String::from("package main\n\nimport (\n");
    let mut calls = String::new();
    for (m, module) in VENDOR_MODULES.iter().enumerate() {
        let version = format!("v1.{m}.{}", m * 3 + 1);
        go_mod.push_str(&format!("\t{module} {version}\n"));
        modules_txt.push_str(&format!("# {module} {version}\n## explicit; go 1.21\n"));
        write(
            app.join(format!("vendor/{module}/LICENSE")),
            "Generated for gopack's benchmark.\n".repeat(20),
        )?;
        for p in 0..VENDOR_PACKAGES {
            let name = format!("v{m}p{p}");
            let import = format!("{module}/{name}");
            modules_txt.push_str(&format!("{import}\n"));
            uses.push_str(&format!("\t\"{import}\"\n"));
            calls.push_str(&format!("\tvendored += {name}.Sum({m}{p})\n"));
            let dir = app.join(format!("vendor/{import}"));
            let mut sum = format!("// Package {name} is a generated vendored package.\npackage {name}\n\nvar table []func(int) int\n\n// Sum calls every function of the package.\nfunc Sum(n int) int {{\n\ttotal := 0\n\tfor _, f := range table {{\n\t\ttotal += f(n)\n\t}}\n\treturn total\n}}\n");
            sum.push('\n');
            write(dir.join("sum.go"), sum)?;
            for f in 0..VENDOR_FILES {
                let mut text = format!(
                    "package {name}\n\nimport \"strconv\"\n\nfunc init() {{ table = append(table, f{f}a, f{f}b) }}\n"
                );
                for (suffix, k) in [("a", 3), ("b", 7)] {
                    text.push_str(&format!(
                        "\n// f{f}{suffix} is generated.\nfunc f{f}{suffix}(n int) int {{\n\ts := strconv.Itoa(n * {k})\n\tfor i := 0; i < {f}; i++ {{\n\t\ts += strconv.Itoa(i)\n\t}}\n\treturn len(s)\n}}\n"
                    ));
                }
                write(dir.join(format!("f{f}.go")), text)?;
            }
        }
    }
    go_mod.push_str(")\n");
    uses.push_str(")\n\n// vendored makes the vendored packages part of the binary.\nvar vendored int\n\nfunc init() {\n");
    uses.push_str(&calls);
    uses.push_str("}\n");
    write(app.join("go.mod"), go_mod)?;
    write(app.join("vendor/modules.txt"), modules_txt)?;
    write(app.join("vendored.go"), uses)
}

/// A private buildah storage in a scratch folder, removed on drop: containers,
/// images, overlay mounts, runc state, cache mounts.
struct Storage {
    buildah: Utf8PathBuf,
    dir: Utf8PathBuf,
    runc: Utf8PathBuf,
    driver: &'static str,
    /// /var/lib/containers/cache, when this run made it (buildah writes its
    /// blob-info cache there as root whatever `--root` says).
    made_blob_cache: Option<Utf8PathBuf>,
}

impl Storage {
    fn new(buildah: &Utf8Path, dir: &Utf8Path) -> Result<Storage, String> {
        let system = Utf8Path::new("/var/lib/containers");
        let made_blob_cache = if system.join("cache").exists() {
            None
        } else if system.exists() {
            Some(system.join("cache"))
        } else {
            Some(system.to_path_buf())
        };
        for sub in ["root", "run", "tmp", "runc"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("{dir}/{sub}: {e}"))?;
        }
        let mut storage = Storage {
            buildah: buildah.to_path_buf(),
            dir: dir.to_path_buf(),
            runc: dir.join("runc"),
            driver: "overlay",
            made_blob_cache,
        };
        // overlay where the kernel and the backing file system allow it (as
        // buildah would pick), else vfs (a copy of the whole root per step).
        let probe = |s: &Storage| output(s.command().args(["from", "scratch"]));
        let container = match probe(&storage) {
            Ok(container) => container,
            Err(overlay) => {
                eprintln!("peer: buildah's overlay storage failed ({overlay}); using vfs");
                storage.driver = "vfs";
                probe(&storage).map_err(|e| {
                    format!("{e}\nbuildah cannot make a container here (run the bench as root, or configure subuids for rootless buildah)")
                })?
            }
        };
        output(storage.command().args(["rm", &container]))?;
        Ok(storage)
    }

    /// `buildah` with this storage.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.buildah);
        cmd.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", self.driver])
            .env("TMPDIR", self.dir.join("tmp"));
        cmd
    }

    /// The builder image: the host's GOROOT (symlinks resolved), busybox as
    /// /bin/sh, root's passwd and group, /tmp; the Go environment of a
    /// vendored, offline build.
    fn make_builder(&self, busybox: &Utf8Path, rootfs: &Utf8Path) -> Result<(), String> {
        let go = gopack_core::toolchain::Go::find().map_err(|e| e.to_string())?;
        let goroot = output(Command::new(&go.path).args(["env", "GOROOT"]))?;
        let goroot = Utf8PathBuf::from(goroot);
        let inside = rootfs.join(goroot.as_str().trim_start_matches('/'));
        for name in ["bin", "pkg", "src", "go.env", "VERSION"] {
            let from = goroot.join(name);
            if from.is_dir() {
                super::copy_dir(&from, &inside.join(name))?;
            } else if from.is_file() {
                std::fs::create_dir_all(&inside).map_err(|e| format!("{inside}: {e}"))?;
                std::fs::copy(&from, inside.join(name)).map_err(|e| format!("{from}: {e}"))?;
            }
        }
        for dir in ["bin", "etc", "root", "tmp", "go/bin"] {
            std::fs::create_dir_all(rootfs.join(dir))
                .map_err(|e| format!("{rootfs}/{dir}: {e}"))?;
        }
        std::fs::copy(busybox, rootfs.join("bin/busybox"))
            .map_err(|e| format!("{busybox}: {e}"))?;
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).map_err(|e| e.to_string())?;
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
            .map_err(|e| e.to_string())?;
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .map_err(|e| e.to_string())?;

        let container = output(self.command().args(["from", "scratch"]))?;
        let made = (|| {
            output(
                self.command()
                    .args(["copy", &container, rootfs.as_str(), "/"]),
            )?;
            let mut config = self.command();
            config.arg("config");
            for env in [
                format!("PATH={goroot}/bin:/go/bin:/usr/bin:/bin"),
                "HOME=/root".into(),
                "GOPATH=/go".into(),
                "GOTOOLCHAIN=local".into(),
                "GOPROXY=off".into(),
                "GOFLAGS=-mod=vendor".into(),
            ] {
                config.args(["--env", &env]);
            }
            output(config.arg(&container))?;
            output(self.command().args(["commit", "-q", &container, BUILDER]))
        })();
        let _ = output(self.command().args(["rm", &container]));
        let _ = std::fs::remove_dir_all(rootfs);
        made.map(|_| ())
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let _ = output(self.command().args(["rm", "--all"]));
        let _ = output(self.command().args(["rmi", "--all", "--force"]));
        // Whatever buildah left mounted under the storage (deepest first).
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Utf8Path::new(m).starts_with(&self.dir))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in mounts {
            let _ = Command::new("umount")
                .arg(mount)
                .stderr(Stdio::null())
                .status();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("peer: could not remove buildah's storage {}: {e}", self.dir);
        }
        if let Some(made) = &self.made_blob_cache {
            let _ = std::fs::remove_dir_all(made);
        }
    }
}

/// A command's trimmed stdout; its stderr in the error.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_elf_is_told_from_dynamic() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // Test binaries are linked dynamically against glibc.
        assert!(!is_static_elf(&me));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }
}
