//! A generated large Go app for `bench`: thousands of source files in many
//! packages, an embedded asset that makes the binary about 10 MB, and test
//! data, so that the no-change and one-file measurements see an app of a
//! real service's size. Deterministic: the same files on every run.

use camino::Utf8Path;

/// Packages × files per package = Go source files.
const PACKAGES: usize = 40;
const FILES_PER_PACKAGE: usize = 50;
const FUNCS_PER_FILE: usize = 12;
/// Bytes of the embedded asset (compressible text, like a binary's data).
const ASSET_BYTES: usize = 6 << 20;
/// Files and bytes of `testdata/` (hashed by gopack, ignored by go build).
const TESTDATA_FILES: usize = 200;
const TESTDATA_BYTES: usize = 100 << 10;

/// Writes the app into `dir` (which must not exist); returns (files, bytes).
pub fn large_app(dir: &Utf8Path) -> Result<(usize, u64), String> {
    let mut files = 0usize;
    let mut bytes = 0u64;
    let mut write = |path: &Utf8Path, text: &[u8]| -> Result<(), String> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{parent}: {e}"))?;
        }
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
        files += 1;
        bytes += text.len() as u64;
        Ok(())
    };
    write(
        &dir.join("go.mod"),
        b"module example.com/large\n\ngo 1.21\n",
    )?;
    let mut words = Words::new(7);
    let mut main = String::from(
        "// Command large is a generated app of gopack's benchmark.\npackage main\n\nimport (\n\t_ \"embed\"\n\t\"fmt\"\n\t\"os\"\n\n",
    );
    for p in 0..PACKAGES {
        main.push_str(&format!("\t\"example.com/large/pkg/p{p:02}\"\n"));
    }
    main.push_str(")\n\n//go:embed assets/words.txt\nvar words string\n\nvar version = \"dev\"\n\nfunc main() {\n\ttotal := len(words)\n");
    for p in 0..PACKAGES {
        main.push_str(&format!("\ttotal += p{p:02}.Sum(len(os.Args))\n"));
    }
    main.push_str("\tfmt.Println(\"large\", version, total)\n}\n");
    write(&dir.join("main.go"), main.as_bytes())?;

    for p in 0..PACKAGES {
        let pkg = format!("p{p:02}");
        let pkg_dir = dir.join("pkg").join(&pkg);
        let mut sum = format!(
            "package {pkg}\n\n// table holds every generated function, so the linker keeps them.\nvar table []func(int) int\n\n// Sum calls every function of the package.\nfunc Sum(n int) int {{\n\ttotal := 0\n\tfor _, f := range table {{\n\t\ttotal += f(n)\n\t}}\n\treturn total\n}}\n"
        );
        sum.push('\n');
        write(&pkg_dir.join("sum.go"), sum.as_bytes())?;
        for f in 0..FILES_PER_PACKAGE - 1 {
            let mut text = format!(
                "package {pkg}\n\nimport \"strings\"\n\nfunc init() {{\n\ttable = append(table"
            );
            for i in 0..FUNCS_PER_FILE {
                text.push_str(&format!(", f{f:02}x{i:02}"));
            }
            text.push_str(")\n}\n");
            for i in 0..FUNCS_PER_FILE {
                let a = words.sentence(6);
                let b = words.sentence(4);
                text.push_str(&format!(
                    "\n// f{f:02}x{i:02} is generated.\nfunc f{f:02}x{i:02}(n int) int {{\n\ts := \"{a}\"\n\tif n > {i} {{\n\t\ts = strings.ToUpper(s) + \"{b}\"\n\t}}\n\treturn len(s) * {m}\n}}\n",
                    m = f * FUNCS_PER_FILE + i + 1
                ));
            }
            write(&pkg_dir.join(format!("f{f:02}.go")), text.as_bytes())?;
        }
    }

    let mut asset = String::with_capacity(ASSET_BYTES + 100);
    while asset.len() < ASSET_BYTES {
        asset.push_str(&words.sentence(12));
        asset.push('\n');
    }
    write(&dir.join("assets/words.txt"), asset.as_bytes())?;
    for t in 0..TESTDATA_FILES {
        let mut text = String::with_capacity(TESTDATA_BYTES + 100);
        while text.len() < TESTDATA_BYTES {
            text.push_str(&words.sentence(10));
            text.push('\n');
        }
        write(
            &dir.join(format!("testdata/case{t:03}.txt")),
            text.as_bytes(),
        )?;
    }
    Ok((files, bytes))
}

/// Pseudo-random words (xorshift), so generated text compresses like real text.
struct Words {
    state: u64,
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "pa", "qu", "do", "fe", "gu", "hi", "jo",
    "ban", "cor", "del", "fin", "gar", "hol", "mun", "tor",
];

impl Words {
    fn new(seed: u64) -> Self {
        Words {
            state: 0x9E37_79B9_7F4A_7C15 ^ seed,
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn sentence(&mut self, words: usize) -> String {
        let mut out = String::new();
        for w in 0..words {
            if w > 0 {
                out.push(' ');
            }
            let n = 1 + self.next() % 3;
            for _ in 0..n {
                out.push_str(SYLLABLES[(self.next() % SYLLABLES.len() as u64) as usize]);
            }
        }
        out
    }
}
