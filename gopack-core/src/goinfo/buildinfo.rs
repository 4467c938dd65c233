//! Go build information, read from a binary's `.go.buildinfo` blob without `go`.
//!
//! The blob starts with the 14-byte magic `\xff Go buildinf:`, a pointer size
//! and a flags byte. Since Go 1.18 (flag bit 2) the Go version and the module
//! info follow inline as uvarint-prefixed strings at offset 32; before that,
//! two pointers at offset 16 lead to Go string headers in the data segment.
//! The module info is the text `go version -m` prints: `path`, `mod`, `dep`,
//! `=>` and `build key=value` lines.

use goblin::elf::Elf;
use serde::Serialize;

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The blob is read at most this far.
const MAX_BLOB: usize = 1 << 20;

/// A module as `go version -m` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Module {
    /// Module path.
    pub path: String,
    /// Version, `(devel)` for the main module of a local build.
    pub version: String,
    /// `h1:` checksum, when known.
    pub sum: String,
    /// What a `replace` directive put in its place.
    pub replace: Option<Box<Module>>,
}

/// What `go version -m` shows about a binary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BuildInfo {
    /// The toolchain, e.g. `go1.23.5`.
    pub go_version: String,
    /// The main package's import path.
    pub path: String,
    /// The main module.
    pub main: Option<Module>,
    /// Dependencies, in the binary's order.
    pub deps: Vec<Module>,
    /// `build` settings in order: `-trimpath`=`true`, `CGO_ENABLED`=`0`, `GOARCH`, `vcs.revision`, ...
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    /// The value of a build setting.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why build info could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildInfoError {
    /// There is no build info: not a Go binary (or one older than Go 1.13).
    NotGo,
    /// There is build info, but it cannot be read.
    Unreadable(String),
}

impl std::fmt::Display for BuildInfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildInfoError::NotGo => f.write_str("no Go build info: not a Go binary"),
            BuildInfoError::Unreadable(why) => write!(f, "could not read the Go build info: {why}"),
        }
    }
}

/// Reads the build info of a Go ELF binary.
pub fn read_build_info(bytes: &[u8]) -> Result<BuildInfo, BuildInfoError> {
    let elf = Elf::parse(bytes).map_err(|e| BuildInfoError::Unreadable(e.to_string()))?;
    let start = find_blob(&elf, bytes).ok_or(BuildInfoError::NotGo)?;
    let blob = bytes
        .get(start..bytes.len().min(start.saturating_add(MAX_BLOB)))
        .ok_or(BuildInfoError::NotGo)?;
    let unreadable = |why: &str| BuildInfoError::Unreadable(why.to_string());
    if blob.len() < 32 {
        return Err(unreadable("the build info blob is cut short"));
    }
    let pointer_size = blob[14] as usize;
    let flags = blob[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let (version, rest) =
            read_varint_string(&blob[32..]).ok_or_else(|| unreadable("bad version string"))?;
        let (modinfo, _) = read_varint_string(rest).ok_or_else(|| unreadable("bad module info"))?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        if pointer_size != 4 && pointer_size != 8 {
            return Err(unreadable(&format!("pointer size {pointer_size}")));
        }
        let big_endian = flags & 1 != 0;
        let reader = PointerReader {
            elf: &elf,
            bytes,
            size: pointer_size,
            big_endian,
        };
        let version_at = reader
            .word(&blob[16..])
            .ok_or_else(|| unreadable("cut short"))?;
        let modinfo_at = reader
            .word(&blob[16 + pointer_size..])
            .ok_or_else(|| unreadable("cut short"))?;
        let version = reader.string(version_at).ok_or_else(|| {
            unreadable("the version pointer leads outside the file (pre-1.18 form)")
        })?;
        let modinfo = reader.string(modinfo_at).ok_or_else(|| {
            unreadable("the module info pointer leads outside the file (pre-1.18 form)")
        })?;
        (version, modinfo)
    };
    let go_version = String::from_utf8_lossy(&version).into_owned();
    if !go_version.starts_with("go") {
        return Err(unreadable(&format!("`{go_version}` is not a Go version")));
    }
    // The module info is framed by 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        &[][..]
    };
    let mut info =
        parse_modinfo(&String::from_utf8_lossy(modinfo)).map_err(BuildInfoError::Unreadable)?;
    info.go_version = go_version;
    Ok(info)
}

/// The file offset of the build info blob: the `.go.buildinfo` section, or the
/// magic at a 16-byte boundary in a file whose sections were removed.
fn find_blob(elf: &Elf<'_>, bytes: &[u8]) -> Option<usize> {
    for section in &elf.section_headers {
        if elf.shdr_strtab.get_at(section.sh_name) == Some(".go.buildinfo") {
            let offset = usize::try_from(section.sh_offset).ok()?;
            return bytes.get(offset..)?.starts_with(MAGIC).then_some(offset);
        }
    }
    let data = elf.program_headers.iter().find(|p| {
        p.p_type == goblin::elf::program_header::PT_LOAD
            && p.p_flags & goblin::elf::program_header::PF_W != 0
    })?;
    let start = usize::try_from(data.p_offset).ok()?;
    // The segment's fields are claims: past the file's end is the file's end.
    let end = usize::try_from(data.p_offset.saturating_add(data.p_filesz))
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    (start..end.saturating_sub(MAGIC.len()))
        .step_by(16)
        .find(|&offset| bytes[offset..].starts_with(MAGIC))
}

fn read_varint_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length: u64 = 0;
    let mut shift = 0;
    for (index, &byte) in bytes.iter().take(10).enumerate() {
        let used = index + 1;
        length |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let length = usize::try_from(length).ok()?;
            let rest = &bytes[used..];
            return (rest.len() >= length).then(|| rest.split_at(length));
        }
        shift += 7;
    }
    None
}

/// Reads words and Go strings at virtual addresses (the pre-1.18 form).
struct PointerReader<'a> {
    elf: &'a Elf<'a>,
    bytes: &'a [u8],
    size: usize,
    big_endian: bool,
}

impl PointerReader<'_> {
    fn word(&self, bytes: &[u8]) -> Option<u64> {
        let bytes = bytes.get(..self.size)?;
        let mut value: u64 = 0;
        if self.big_endian {
            for &b in bytes {
                value = (value << 8) | u64::from(b);
            }
        } else {
            for &b in bytes.iter().rev() {
                value = (value << 8) | u64::from(b);
            }
        }
        Some(value)
    }

    fn at(&self, address: u64, length: usize) -> Option<&[u8]> {
        let offset = super::elf::file_offset(self.elf, address)?;
        self.bytes.get(offset..offset.checked_add(length)?)
    }

    /// A Go string header `{data, len}` at `address`, and the bytes it points to.
    fn string(&self, address: u64) -> Option<Vec<u8>> {
        let header = self.at(address, 2 * self.size)?;
        let data = self.word(header)?;
        let length = usize::try_from(self.word(&header[self.size..])?).ok()?;
        if length > MAX_BLOB {
            return None;
        }
        self.at(data, length).map(<[u8]>::to_vec)
    }
}

/// Parses the module info text (the lines after the version in `go version -m`).
pub fn parse_modinfo(text: &str) -> Result<BuildInfo, String> {
    let mut info = BuildInfo::default();
    let mut deps: Vec<Module> = Vec::new();
    let mut main: Option<Module> = None;
    let mut last_is_main = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.first().copied() {
            Some("path") if fields.len() >= 2 => info.path = fields[1].to_string(),
            Some("mod") if fields.len() >= 3 => {
                main = Some(module(&fields[1..]));
                last_is_main = true;
            }
            Some("dep") if fields.len() >= 3 => {
                deps.push(module(&fields[1..]));
                last_is_main = false;
            }
            Some("=>") if fields.len() >= 3 => {
                let target = if last_is_main {
                    main.as_mut()
                } else {
                    deps.last_mut()
                };
                match target {
                    Some(m) => m.replace = Some(Box::new(module(&fields[1..]))),
                    None => return Err(format!("`=>` with no module before it: {line}")),
                }
            }
            Some("build") if fields.len() >= 2 => {
                let setting = fields[1..].join("\t");
                info.settings.push(parse_setting(&setting)?);
            }
            Some("") | None => {}
            _ => return Err(format!("unexpected module info line: {line}")),
        }
    }
    info.main = main;
    info.deps = deps;
    Ok(info)
}

fn module(fields: &[&str]) -> Module {
    Module {
        path: fields.first().copied().unwrap_or_default().to_string(),
        version: fields.get(1).copied().unwrap_or_default().to_string(),
        sum: fields.get(2).copied().unwrap_or_default().to_string(),
        replace: None,
    }
}

/// `key=value` where either side may be Go-quoted.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    let (key, rest) = if text.starts_with('"') {
        let (key, used) = unquote_prefix(text).ok_or_else(|| format!("bad quoted key: {text}"))?;
        let rest = text[used..]
            .strip_prefix('=')
            .ok_or_else(|| format!("no `=` in setting: {text}"))?;
        (key, rest)
    } else {
        let (key, rest) = text
            .split_once('=')
            .ok_or_else(|| format!("no `=` in setting: {text}"))?;
        (key.to_string(), rest)
    };
    let value = if rest.starts_with('"') {
        unquote_prefix(rest)
            .filter(|(_, used)| *used == rest.len())
            .map(|(v, _)| v)
            .ok_or_else(|| format!("bad quoted value: {text}"))?
    } else {
        rest.to_string()
    };
    Ok((key, value))
}

/// Unquotes a Go double-quoted string at the start of `text`; returns it and the bytes used.
fn unquote_prefix(text: &str) -> Option<(String, usize)> {
    let mut chars = text.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let (_, escape) = chars.next()?;
                match escape {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let digits = match escape {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..digits)
                            .filter_map(|_| chars.next().map(|c| c.1))
                            .collect();
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_module_info() {
        let text = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
                    dep\texample.com/greet\tv1.0.0\th1:abc=\n=>\t../greet\t(devel)\t\n\
                    build\t-ldflags=\"-s -w -X \\\"main.v=1\\\"\"\nbuild\tCGO_ENABLED=0\n\
                    build\t\"we=ird\"=x\n";
        let info = parse_modinfo(text).unwrap();
        assert_eq!(info.path, "example.com/app");
        assert_eq!(info.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(info.deps[0].sum, "h1:abc=");
        assert_eq!(info.deps[0].replace.as_ref().unwrap().path, "../greet");
        assert_eq!(info.setting("-ldflags"), Some("-s -w -X \"main.v=1\""));
        assert_eq!(info.setting("CGO_ENABLED"), Some("0"));
        assert_eq!(info.setting("we=ird"), Some("x"));
        assert!(parse_modinfo("bogus\tline").is_err());
    }

    #[test]
    fn inline_blob() {
        let mut blob = MAGIC.to_vec();
        blob.extend([8, 2]);
        blob.resize(32, 0);
        let version = b"go1.23.5";
        blob.push(version.len() as u8);
        blob.extend(version);
        let mut modinfo = vec![b'x'; 16];
        modinfo.extend(b"path\tx\nbuild\tGOOS=linux\n");
        modinfo.extend([b'y'; 16]);
        blob.push(modinfo.len() as u8);
        blob.extend(&modinfo);
        let (v, rest) = read_varint_string(&blob[32..]).unwrap();
        assert_eq!(v, version);
        let (m, _) = read_varint_string(rest).unwrap();
        assert_eq!(m.len(), modinfo.len());
        assert_eq!(read_varint_string(&[0x85]), None);
    }

    #[test]
    fn a_rust_binary_is_not_go() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(read_build_info(&bytes), Err(BuildInfoError::NotGo));
    }
}
