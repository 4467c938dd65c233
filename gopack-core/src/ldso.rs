//! The dynamic loader's rules, applied by reading ELF files, never by running
//! them: which loader (`PT_INTERP`) and which shared objects a dynamically
//! linked binary needs, and where each one is found.
//!
//! For every object, each `DT_NEEDED` name is looked up as glibc's `ld.so`
//! does: a name with a slash is a path; otherwise the object's `DT_RUNPATH`
//! (or, when it has none, its `DT_RPATH` and the executable's), with
//! `$ORIGIN` expanded to the folder it was found in, then the folders of
//! `/etc/ld.so.conf` (with its `include`s; the stand-in for ld.so.cache),
//! then the default folders. A candidate for another machine or class is
//! skipped, as the loader skips it. Symlinks on the way (`/lib -> usr/lib`,
//! `libz.so.1 -> libz.so.1.2.13`) are recorded so that an image can keep them
//! as symlinks. Not modelled: `LD_LIBRARY_PATH` and `LD_PRELOAD` (not set in
//! an image), glibc-hwcaps subfolders, `$LIB`/`$PLATFORM`, `DT_AUXILIARY`.
//!
//! The same code reads the build machine (through [`HostFiles`], optionally
//! under a cross compiler's root) and an image's file tree (verify).

use camino::Utf8PathBuf;
use goblin::elf::{header, Elf};

/// The most objects one binary may pull in.
const MAX_OBJECTS: usize = 512;
/// The largest shared object read (bytes).
const MAX_OBJECT_SIZE: u64 = 512 << 20;
/// Symlinks followed while walking one path.
const MAX_LINKS: usize = 40;
/// Nesting of ld.so.conf `include`s.
const MAX_INCLUDE_DEPTH: usize = 8;
/// ld.so.conf files read in all.
const MAX_CONF_FILES: usize = 256;

/// What a path is, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Nothing there.
    Missing,
    /// A folder.
    Dir,
    /// A regular file of this size.
    File(u64),
    /// A symlink to this target.
    Symlink(String),
}

/// A read-only file tree with absolute paths: the build machine's, or an image's.
pub trait Files {
    /// What is at `path`, an absolute normalized path.
    fn entry(&self, path: &str) -> Entry;
    /// The bytes of the regular file at `path` (a path without symlinks).
    fn read(&self, path: &str) -> Result<Vec<u8>, String>;
    /// The names in the folder at `path`.
    fn list(&self, path: &str) -> Vec<String>;
}

/// The build machine's files, under `root` (`/`, or a cross compiler's root
/// such as `/usr/aarch64-linux-gnu`, where absolute symlinks stay inside).
#[derive(Debug, Clone)]
pub struct HostFiles {
    /// The folder that stands for `/`.
    pub root: Utf8PathBuf,
}

impl HostFiles {
    /// The host path of an absolute path inside the root.
    pub fn host_path(&self, path: &str) -> Utf8PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

impl Files for HostFiles {
    fn entry(&self, path: &str) -> Entry {
        let host = self.host_path(path);
        match std::fs::symlink_metadata(&host) {
            Err(_) => Entry::Missing,
            Ok(meta) if meta.file_type().is_symlink() => match std::fs::read_link(&host) {
                Ok(target) => Entry::Symlink(target.to_string_lossy().into_owned()),
                Err(_) => Entry::Missing,
            },
            Ok(meta) if meta.is_dir() => Entry::Dir,
            Ok(meta) if meta.is_file() => Entry::File(meta.len()),
            Ok(_) => Entry::Missing,
        }
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.host_path(path)).map_err(|e| format!("{}: {e}", self.host_path(path)))
    }

    fn list(&self, path: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.host_path(path)) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()
    }
}

/// A path walked to its end: the symlinks met on the way and the file reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    /// The path with no symlink in it.
    pub real: String,
    /// Each symlink met: its path (whose parent has no symlink) and its target, as written.
    pub links: Vec<(String, String)>,
}

/// Follows every symlink of `path` inside `files`; `None` when something on
/// the way is missing or the links loop. The final entry must be a file.
pub fn walk(files: &dyn Files, path: &str) -> Option<(Walked, u64)> {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .rev()
        .map(String::from)
        .collect();
    let mut current = String::new();
    let mut links = Vec::new();
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current = match current.rfind('/') {
                    Some(i) => current[..i].to_string(),
                    None => String::new(),
                };
                continue;
            }
            _ => {}
        }
        let next = format!("{current}/{part}");
        match files.entry(&next) {
            Entry::Missing => return None,
            Entry::Symlink(target) => {
                if links.len() >= MAX_LINKS {
                    return None;
                }
                links.push((next, target.clone()));
                if target.starts_with('/') {
                    current = String::new();
                }
                for piece in target.split('/').filter(|p| !p.is_empty()).rev() {
                    pending.push(piece.to_string());
                }
            }
            Entry::Dir if !pending.is_empty() => current = next,
            Entry::File(size) if pending.is_empty() => {
                return Some((Walked { real: next, links }, size));
            }
            _ => return None,
        }
    }
    None
}

/// One object the binary needs, found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The `DT_NEEDED` name, or the interpreter's path.
    pub name: String,
    /// Where the loader finds it (the path searched, as `ldd` prints it).
    pub path: String,
    /// That path walked: the file and the symlinks on the way.
    pub walked: Walked,
    /// Whether this is the loader itself (`PT_INTERP`).
    pub interpreter: bool,
}

/// One object the binary needs and that is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The `DT_NEEDED` name, or the interpreter's path.
    pub name: String,
    /// The object that needs it.
    pub needed_by: String,
    /// Whether this is the loader itself (`PT_INTERP`).
    pub interpreter: bool,
}

/// Everything a binary needs to start: found objects in load order, and missing ones.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// The loader first, then libraries breadth first, as the loader maps them.
    pub found: Vec<Object>,
    /// What is not there.
    pub missing: Vec<Missing>,
    /// Objects that could not be read as ELF for the right machine, with why.
    pub unreadable: Vec<String>,
}

impl Resolution {
    /// Every path an image must hold for the binary to start: each object's
    /// symlinks and file, without repeats.
    pub fn image_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        for object in &self.found {
            for (link, _) in &object.walked.links {
                if !paths.contains(link) {
                    paths.push(link.clone());
                }
            }
            if !paths.contains(&object.walked.real) {
                paths.push(object.walked.real.clone());
            }
        }
        paths
    }
}

/// The dynamic parts of an ELF file.
#[derive(Debug, Clone)]
struct Dynamic {
    machine: u16,
    is_64: bool,
    interpreter: Option<String>,
    soname: Option<String>,
    needed: Vec<String>,
    runpath: Vec<String>,
    rpath: Vec<String>,
}

fn parse(bytes: &[u8]) -> Result<Dynamic, String> {
    let elf = Elf::parse(bytes).map_err(|e| format!("not a readable ELF file: {e}"))?;
    let split = |list: &[&str]| -> Vec<String> {
        list.iter()
            .flat_map(|p| p.split(':'))
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    };
    Ok(Dynamic {
        machine: elf.header.e_machine,
        is_64: elf.is_64,
        interpreter: elf.interpreter.map(String::from),
        soname: elf.soname.map(String::from),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        runpath: split(&elf.runpaths),
        rpath: split(&elf.rpaths),
    })
}

/// Whether an ELF file is dynamically linked (has a loader or needs libraries).
pub fn is_dynamic(bytes: &[u8]) -> bool {
    parse(bytes).is_ok_and(|d| d.interpreter.is_some() || !d.needed.is_empty())
}

/// The folders the loader searches after the object's own paths and ld.so.conf:
/// Debian's multiarch folders, then the lib64 and lib folders.
pub fn default_dirs(machine: u16, is_64: bool) -> Vec<String> {
    let triplet = match machine {
        header::EM_X86_64 => Some("x86_64-linux-gnu"),
        header::EM_AARCH64 => Some("aarch64-linux-gnu"),
        header::EM_ARM => Some("arm-linux-gnueabihf"),
        header::EM_386 => Some("i386-linux-gnu"),
        header::EM_PPC64 => Some("powerpc64le-linux-gnu"),
        header::EM_S390 => Some("s390x-linux-gnu"),
        header::EM_RISCV => Some("riscv64-linux-gnu"),
        _ => None,
    };
    let mut dirs = Vec::new();
    if let Some(triplet) = triplet {
        dirs.push(format!("/lib/{triplet}"));
        dirs.push(format!("/usr/lib/{triplet}"));
    }
    if is_64 {
        dirs.push("/lib64".into());
        dirs.push("/usr/lib64".into());
    }
    dirs.push("/lib".into());
    dirs.push("/usr/lib".into());
    dirs
}

/// The folders listed by `/etc/ld.so.conf` and the files it includes, in order.
pub fn ld_so_conf_dirs(files: &dyn Files) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut seen = Vec::new();
    read_conf(files, "/etc/ld.so.conf", 0, &mut seen, &mut dirs);
    dirs
}

fn read_conf(
    files: &dyn Files,
    path: &str,
    depth: usize,
    seen: &mut Vec<String>,
    dirs: &mut Vec<String>,
) {
    if depth > MAX_INCLUDE_DEPTH || seen.len() >= MAX_CONF_FILES {
        return;
    }
    let Some((walked, size)) = walk(files, path) else {
        return;
    };
    // Each file once: an include of itself (or a loop) is read no further.
    if size > 1 << 20 || seen.contains(&walked.real) {
        return;
    }
    seen.push(walked.real.clone());
    let Ok(bytes) = files.read(&walked.real) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    let conf_dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            if !pattern.starts_with(char::is_whitespace) {
                continue;
            }
            for pattern in pattern.split_whitespace() {
                let pattern = if pattern.starts_with('/') {
                    pattern.to_string()
                } else {
                    format!("{conf_dir}/{pattern}")
                };
                for included in glob(files, &pattern) {
                    read_conf(files, &included, depth + 1, seen, dirs);
                }
            }
        } else if line.starts_with("hwcap") {
            continue;
        } else {
            for word in line.split(|c: char| c.is_whitespace() || c == ',' || c == ':') {
                // `dir=type` is ldconfig's old form; the type is ignored.
                let dir = word.split('=').next().unwrap_or("").trim_end_matches('/');
                if dir.starts_with('/') && !dirs.iter().any(|d| d == dir) {
                    dirs.push(dir.to_string());
                }
            }
        }
    }
}

/// Files matching a pattern with `*` and `?` in its last component, sorted.
fn glob(files: &dyn Files, pattern: &str) -> Vec<String> {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    if !name.contains(['*', '?']) {
        return vec![pattern.to_string()];
    }
    let mut found: Vec<String> = files
        .list(if dir.is_empty() { "/" } else { dir })
        .into_iter()
        .filter(|n| wildcard(name.as_bytes(), n.as_bytes()))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    found.sort();
    found
}

/// `*` and `?` matching in linear time (the greedy algorithm with one backtrack
/// point), so that a hostile pattern cannot make it explode.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn expand_origin(dir: &str, origin: &str) -> String {
    let origin = origin.trim_end_matches('/');
    dir.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
}

/// Resolves what the executable at `exe_path` (its bytes given) needs, in `files`.
pub fn resolve(files: &dyn Files, exe_path: &str, exe_bytes: &[u8]) -> Result<Resolution, String> {
    let exe = parse(exe_bytes)?;
    let mut resolution = Resolution::default();
    let conf_dirs = ld_so_conf_dirs(files);
    let defaults = default_dirs(exe.machine, exe.is_64);

    // Names already mapped: a DT_NEEDED that matches one (or its soname) is not searched.
    let mut loaded: Vec<String> = Vec::new();
    let mut real_loaded: Vec<String> = Vec::new();
    if let Some(interpreter) = &exe.interpreter {
        match walk(files, interpreter) {
            Some((walked, size)) => {
                if size <= MAX_OBJECT_SIZE {
                    if let Some(soname) = files
                        .read(&walked.real)
                        .ok()
                        .and_then(|b| parse(&b).ok())
                        .and_then(|d| d.soname)
                    {
                        loaded.push(soname);
                    }
                }
                real_loaded.push(walked.real.clone());
                resolution.found.push(Object {
                    name: interpreter.clone(),
                    path: interpreter.clone(),
                    walked,
                    interpreter: true,
                });
            }
            None => resolution.missing.push(Missing {
                name: interpreter.clone(),
                needed_by: exe_path.to_string(),
                interpreter: true,
            }),
        }
    }

    // The executable's RPATH also serves its libraries when it has no RUNPATH.
    let exe_rpath: Vec<String> = if exe.runpath.is_empty() {
        exe.rpath
            .iter()
            .map(|d| expand_origin(d, parent(exe_path)))
            .collect()
    } else {
        Vec::new()
    };
    let mut queue = std::collections::VecDeque::new();
    queue.push_back((exe_path.to_string(), exe, true));
    while let Some((object_path, object, is_exe)) = queue.pop_front() {
        let origin = parent(&object_path).to_string();
        let mut dirs: Vec<String> = if !object.runpath.is_empty() {
            object
                .runpath
                .iter()
                .map(|d| expand_origin(d, &origin))
                .collect()
        } else {
            let mut dirs: Vec<String> = object
                .rpath
                .iter()
                .map(|d| expand_origin(d, &origin))
                .collect();
            if !is_exe {
                dirs.extend(exe_rpath.iter().cloned());
            }
            dirs
        };
        dirs.extend(conf_dirs.iter().cloned());
        dirs.extend(defaults.iter().cloned());

        for name in &object.needed {
            if loaded.contains(name) {
                continue;
            }
            if loaded.len() >= MAX_OBJECTS {
                return Err(format!("more than {MAX_OBJECTS} shared objects are needed"));
            }
            loaded.push(name.clone());
            let candidates: Vec<String> = if name.contains('/') {
                vec![name.clone()]
            } else {
                dirs.iter()
                    .map(|d| format!("{}/{name}", d.trim_end_matches('/')))
                    .collect()
            };
            let mut found = None;
            for candidate in candidates {
                let Some((walked, size)) = walk(files, &candidate) else {
                    continue;
                };
                if size > MAX_OBJECT_SIZE {
                    resolution
                        .unreadable
                        .push(format!("{candidate}: {size} bytes is too large to read"));
                    continue;
                }
                let parsed = files.read(&walked.real).and_then(|b| parse(&b));
                match parsed {
                    Ok(lib) if lib.machine == object.machine && lib.is_64 == object.is_64 => {
                        found = Some((candidate, walked, lib));
                        break;
                    }
                    // Another machine's library in a shared folder: the loader skips it too.
                    Ok(_) => continue,
                    Err(why) => resolution.unreadable.push(format!("{candidate}: {why}")),
                }
            }
            match found {
                Some((path, walked, lib)) => {
                    let real = walked.real.clone();
                    resolution.found.push(Object {
                        name: name.clone(),
                        path: path.clone(),
                        walked,
                        interpreter: false,
                    });
                    if let Some(soname) = &lib.soname {
                        if !loaded.contains(soname) {
                            loaded.push(soname.clone());
                        }
                    }
                    // One file is mapped once, whatever the name it is needed by.
                    if !real_loaded.contains(&real) {
                        real_loaded.push(real);
                        queue.push_back((path, lib, false));
                    }
                }
                None => resolution.missing.push(Missing {
                    name: name.clone(),
                    needed_by: object_path.clone(),
                    interpreter: false,
                }),
            }
        }
    }
    Ok(resolution)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A tree of files in memory.
    #[derive(Default)]
    struct Memory(BTreeMap<String, Entry>, BTreeMap<String, Vec<u8>>);

    impl Files for Memory {
        fn entry(&self, path: &str) -> Entry {
            if let Some(e) = self.0.get(path) {
                return e.clone();
            }
            let prefix = format!("{path}/");
            if self.0.keys().any(|k| k.starts_with(&prefix)) {
                Entry::Dir
            } else {
                Entry::Missing
            }
        }
        fn read(&self, path: &str) -> Result<Vec<u8>, String> {
            self.1.get(path).cloned().ok_or_else(|| "missing".into())
        }
        fn list(&self, path: &str) -> Vec<String> {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            self.0
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|r| !r.contains('/'))
                .map(String::from)
                .collect()
        }
    }

    impl Memory {
        fn file(&mut self, path: &str, bytes: &[u8]) {
            self.0.insert(path.into(), Entry::File(bytes.len() as u64));
            self.1.insert(path.into(), bytes.to_vec());
        }
        fn link(&mut self, path: &str, target: &str) {
            self.0.insert(path.into(), Entry::Symlink(target.into()));
        }
    }

    #[test]
    fn walks_links_and_keeps_them() {
        let mut files = Memory::default();
        files.link("/lib", "usr/lib");
        files.link("/usr/lib/x/libz.so.1", "libz.so.1.2.13");
        files.file("/usr/lib/x/libz.so.1.2.13", b"z");
        let (walked, size) = walk(&files, "/lib/x/libz.so.1").unwrap();
        assert_eq!(size, 1);
        assert_eq!(walked.real, "/usr/lib/x/libz.so.1.2.13");
        assert_eq!(
            walked.links,
            vec![
                ("/lib".to_string(), "usr/lib".to_string()),
                (
                    "/usr/lib/x/libz.so.1".to_string(),
                    "libz.so.1.2.13".to_string()
                )
            ]
        );
        files.link("/loop", "/loop");
        assert!(walk(&files, "/loop").is_none());
        assert!(
            walk(&files, "/usr/lib/x").is_none(),
            "a folder is not a file"
        );
    }

    #[test]
    fn reads_ld_so_conf_with_includes() {
        let mut files = Memory::default();
        files.file(
            "/etc/ld.so.conf",
            b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/first\n",
        );
        files.file("/etc/ld.so.conf.d/b.conf", b"/opt/b\n");
        files.file(
            "/etc/ld.so.conf.d/a.conf",
            b"/opt/a/ # trailing\nhwcap 1 x\n",
        );
        files.file("/etc/ld.so.conf.d/skip.txt", b"/opt/no\n");
        assert_eq!(
            ld_so_conf_dirs(&files),
            vec!["/opt/a", "/opt/b", "/opt/first"]
        );
        assert!(wildcard(b"*.conf", b"x86_64-linux-gnu.conf"));
        assert!(!wildcard(b"*.conf", b"x.confx"));
        assert!(wildcard(b"a?c*", b"abcdef") && !wildcard(b"a?c", b"abcd"));
        let stars = [b'*'; 64];
        assert!(!wildcard(&[&stars[..], b"x"].concat(), &[b'a'; 4096]));

        // A file that includes itself is read once.
        files.file(
            "/etc/ld.so.conf.d/self.conf",
            b"include self.conf\n/opt/self\n",
        );
        let dirs = ld_so_conf_dirs(&files);
        assert_eq!(dirs.iter().filter(|d| *d == "/opt/self").count(), 1);
    }

    #[test]
    fn this_test_binary_resolves_on_the_host() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let files = HostFiles { root: "/".into() };
        let resolution = resolve(&files, exe.to_str().unwrap(), &bytes).unwrap();
        assert!(resolution.missing.is_empty(), "{resolution:?}");
        assert!(resolution.found.iter().any(|o| o.name == "libc.so.6"));
        assert!(resolution.found[0].interpreter, "{resolution:?}");
    }
}
