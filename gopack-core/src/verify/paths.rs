//! The facts `fs.paths` reports: tar entries whose name, link or hard link
//! could write or read outside the image root when the tar is unpacked by a
//! naive extractor (an absolute name, a `..` component, a symlink or hard-link
//! target that climbs above `/`), hard links to entries that do not exist, and
//! hard-link loops. Purely lexical: nothing is resolved on the host.
//!
//! A symlink's relative target is resolved from the entry's folder; an
//! absolute target is resolved against the image root, so `/etc/ssl/certs/x`
//! stays inside and only one that climbs above `/` with `..` escapes.

use std::collections::{HashMap, HashSet};

/// How many findings are kept word for word; the rest are counted.
const MAX_KEPT: usize = 100;
/// How far a chain of hard links is followed to find a loop.
const MAX_CHAIN: usize = 64;

/// The longest name a finding shows (a PAX name may be megabytes long).
const MAX_SHOWN: usize = 200;

/// A name as a finding shows it: control characters escaped (a name must not
/// drive the terminal that reads the report), and cut when very long.
pub(crate) fn shown(name: &str) -> String {
    let mut text = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == MAX_SHOWN {
            text.push('…');
            break;
        }
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    text
}

/// Why an entry name is unsafe, if it is.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.starts_with('/') {
        Some("an absolute name")
    } else if name.split('/').any(|part| part == "..") {
        Some("a name with a `..` component")
    } else {
        None
    }
}

/// Whether `target`, resolved from the folder `dir` (an image path such as
/// `/usr/lib`; ignored when `target` is absolute), climbs above the root.
pub(crate) fn climbs_out(dir: &str, target: &str) -> bool {
    let mut depth = if target.starts_with('/') {
        0
    } else {
        dir.split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .count()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

/// The unsafe paths found, in the order read; a bounded number kept in words.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathFindings {
    pub kept: Vec<String>,
    /// How many more were found than kept.
    pub more: usize,
}

impl PathFindings {
    /// Adds one finding.
    pub(crate) fn push(&mut self, finding: String) {
        if self.kept.len() < MAX_KEPT {
            self.kept.push(finding);
        } else {
            self.more += 1;
        }
    }

    /// How many were found.
    pub(crate) fn len(&self) -> usize {
        self.kept.len() + self.more
    }

    /// Whether nothing was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds what another reading found.
    pub(crate) fn extend(&mut self, other: &PathFindings) {
        for finding in &other.kept {
            self.push(finding.clone());
        }
        self.more += other.more;
    }
}

/// The hard links of one layer, to tell a link to nothing from a loop once
/// the whole layer is read.
#[derive(Debug, Default)]
pub(crate) struct HardLinks {
    /// Every hard-link entry of the layer: name → target (image paths).
    targets: HashMap<String, String>,
    /// Links whose target was not there when they were read: (name, target, where).
    dangling: Vec<(String, String, String)>,
}

impl HardLinks {
    /// Records the hard link `name` → `target`; `exists`: whether the target
    /// was in the tree when the link was read.
    pub(crate) fn link(&mut self, name: &str, target: &str, exists: bool, at: &str) {
        self.targets.insert(name.to_string(), target.to_string());
        if !exists {
            self.dangling
                .push((name.to_string(), target.to_string(), at.to_string()));
        }
    }

    /// Turns the dangling links into findings: a loop, or a link to nothing.
    pub(crate) fn finish(&mut self, findings: &mut PathFindings) {
        for (name, target, at) in std::mem::take(&mut self.dangling) {
            let mut chain = vec![name.clone(), target.clone()];
            let mut seen: HashSet<&str> = HashSet::from([name.as_str()]);
            let mut next = target.as_str();
            let mut looped = false;
            for _ in 0..MAX_CHAIN {
                if !seen.insert(next) {
                    looped = true;
                    break;
                }
                match self.targets.get(next) {
                    Some(further) => {
                        chain.push(further.clone());
                        next = further;
                    }
                    None => break,
                }
            }
            findings.push(if looped {
                let chain: Vec<String> = chain.iter().map(|p| shown(p)).collect();
                format!("hard-link loop {} {at}", chain.join(" -> "))
            } else {
                let (name, target) = (shown(&name), shown(&target));
                format!(
                    "hard link {name} -> {target} {at}: no entry {target} comes before it \
                     in this layer or a lower one"
                )
            });
        }
        self.targets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_targets() {
        assert_eq!(name_problem("etc/passwd"), None);
        assert_eq!(name_problem("./etc/passwd"), None);
        assert_eq!(name_problem("..."), None);
        assert!(name_problem("/tmp/x").is_some());
        assert!(name_problem("../../../tmp/x").is_some());
        assert!(name_problem("a/../b").is_some());
        assert!(!climbs_out("/etc/ssl", "/etc/ssl/certs/x"));
        assert!(!climbs_out("/usr/lib", "../../lib/x"));
        assert!(climbs_out("/usr/lib", "../../../lib/x"));
        assert!(climbs_out("/", "/../etc/shadow"));
        assert!(climbs_out("/", "../../../../etc/shadow"));
        assert!(!climbs_out("/a", "b/../../c"));
        assert_eq!(shown("../\x1b[31mred"), "../\\u{1b}[31mred");
        assert_eq!(shown(&"a".repeat(500)).chars().count(), MAX_SHOWN + 1);
        assert!(climbs_out("/a", "b/../../../c"));
    }

    #[test]
    fn loops_and_links_to_nothing() {
        let mut links = HardLinks::default();
        let mut findings = PathFindings::default();
        links.link("/a", "/b", false, "in layer 1");
        links.link("/b", "/a", false, "in layer 1");
        links.link("/c", "/nowhere", false, "in layer 1");
        links.link("/d", "/etc/passwd", true, "in layer 1");
        links.finish(&mut findings);
        assert_eq!(findings.len(), 3, "{findings:?}");
        assert!(findings.kept[0].contains("hard-link loop /a -> /b -> /a"));
        assert!(findings.kept[2].contains("no entry /nowhere"));
        for i in 0..150 {
            findings.push(format!("{i}"));
        }
        assert_eq!((findings.kept.len(), findings.more), (MAX_KEPT, 53));
    }

    /// A tar entry written byte by byte: the tar crate's builder refuses
    /// the names these tests need.
    pub(crate) fn raw_entry(name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        bytes
    }

    fn findings(entries: &[Vec<u8>]) -> Vec<String> {
        let mut layer = entries.concat();
        layer.resize(layer.len() + 1024, 0);
        let budget = super::super::limits::Budget::default();
        let tree =
            super::super::layers::Tree::read_bytes(&layer, &Default::default(), &budget).unwrap();
        tree.paths.kept
    }

    #[test]
    fn the_tree_reader_finds_every_form() {
        use tar::EntryType::{Link, Regular, Symlink};
        let file = |name: &str| raw_entry(name, Regular, "", b"x");
        let cases: &[(Vec<u8>, &str)] = &[
            (
                file("../../../tmp/x"),
                "`../../../tmp/x` in layer 1: a name with a `..`",
            ),
            (file("/tmp/x"), "`/tmp/x` in layer 1: an absolute name"),
            (
                raw_entry("../../x", Symlink, "y", b""),
                "`../../x` in layer 1",
            ),
            (
                raw_entry("app/l", Symlink, "../../etc/shadow", b""),
                "symlink /app/l -> `../../etc/shadow` in layer 1 leads outside",
            ),
            (
                raw_entry("sh", Link, "../../../../etc/shadow", b""),
                "hard link /sh -> `../../../../etc/shadow` in layer 1 leads outside",
            ),
            (raw_entry("a", Link, "a", b""), "hard-link loop /a -> /a"),
            (
                raw_entry("b", Link, "nothing", b""),
                "hard link /b -> /nothing in layer 1: no entry",
            ),
        ];
        for (entry, expected) in cases {
            let found = findings(std::slice::from_ref(entry));
            assert_eq!(found.len(), 1, "{expected}: {found:?}");
            assert!(found[0].contains(expected), "{expected}: {found:?}");
        }
        let found = findings(&[
            raw_entry("c", Link, "d", b""),
            raw_entry("d", Link, "c", b""),
        ]);
        assert!(
            found
                .iter()
                .any(|f| f.contains("hard-link loop /c -> /d -> /c")),
            "{found:?}"
        );
        // What images hold every day is fine.
        let found = findings(&[
            file("./etc/ssl/certs/ca-certificates.crt"),
            raw_entry(
                "etc/ssl/cert.pem",
                Symlink,
                "/etc/ssl/certs/ca-certificates.crt",
                b"",
            ),
            raw_entry("usr/lib/x", Symlink, "../../lib/x", b""),
            raw_entry(
                "etc/ssl/copy.pem",
                Link,
                "./etc/ssl/certs/ca-certificates.crt",
                b"",
            ),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }
}
