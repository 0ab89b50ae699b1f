//! The golden outputs: the demo and `tests/golden/every.toml` (every
//! generator, strategy, effect, format and master option) must render to the
//! bytes pinned in `tests/golden/golden.sha256`, so a refactor that changes
//! one output byte fails `cargo test`, not only a hand-run script. The hashes
//! are computed exactly as `tests/golden/hashes.sh` computes them, so either
//! can check the other's file.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::util::{files, stderr, stemflow};

#[test]
fn demo_and_every_option_render_to_the_golden_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let every = golden.join("every.toml");
    let every = every.to_str().expect("a UTF-8 checkout path");
    for args in [
        &["render", "--out", "demo", "--quiet"][..],
        &["render", every, "--out", "every", "--quiet"],
    ] {
        let o = stemflow(tmp.path(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
    let got = hash_lines(tmp.path());
    let want = std::fs::read_to_string(golden.join("golden.sha256")).unwrap();
    let differ: Vec<_> = want
        .lines()
        .zip(got.lines())
        .filter(|(w, g)| w != g)
        .collect();
    assert!(
        got == want,
        "outputs differ from golden.sha256 (want, got): {differ:#?}\nall got:\n{got}"
    );
}

/// `sha256  ./path` for every file under `dir` but `summary.json` (it holds
/// wall-clock times), sorted by path as a string, as `hashes.sh` prints them.
pub fn hash_lines(dir: &Path) -> String {
    let mut rows: Vec<(String, String)> = files(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "summary.json"))
        .map(|p| {
            let name = format!("./{}", p.display());
            let path = dir.join(&p);
            let hash = if name.ends_with(".zip") {
                zip_hash(&path)
            } else {
                hex(&Sha256::digest(normalise(
                    &name,
                    std::fs::read(&path).unwrap(),
                )))
            };
            (name, hash)
        })
        .collect();
    rows.sort();
    rows.iter().map(|(p, h)| format!("{h}  {p}\n")).collect()
}

/// A zip as the SHA-256 over its entries in order, each as its name, a NUL
/// and the SHA-256 of its (normalised) content: what the archive holds, not
/// how it was compressed.
fn zip_hash(path: &Path) -> String {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut all = Sha256::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let name = entry.name().expect("a UTF-8 entry name").into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        all.update(name.as_bytes());
        all.update(b"\0");
        all.update(Sha256::digest(normalise(&name, data)));
    }
    hex(&all.finalize())
}

/// A report without its `digest` line: that hashes the plan's internal form
/// and the inputs' mtimes, which a refactor or a fresh checkout may change
/// without changing any audio.
fn normalise(name: &str, data: Vec<u8>) -> Vec<u8> {
    if name.ends_with("report.json") {
        strip_digest(&data)
    } else {
        data
    }
}

/// `data` with every match of the regex `\n\s*"digest": "[0-9a-f]*",`
/// removed, leftmost first as Python's `re.sub` in `hashes.sh` removes them.
fn strip_digest(data: &[u8]) -> Vec<u8> {
    const KEY: &[u8] = b"\"digest\": \"";
    // Python's `\s` on bytes.
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut out = Vec::with_capacity(data.len());
    let (mut copied, mut from) = (0, 0);
    while let Some(k) = data[from..].windows(KEY.len()).position(|w| w == KEY) {
        let k = from + k;
        let value = k + KEY.len();
        let end = value
            + data[value..]
                .iter()
                .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                .count();
        let run = k - data[copied..k]
            .iter()
            .rev()
            .take_while(|b| space(b))
            .count();
        let newline = data[run..k].iter().position(|&b| b == b'\n');
        match newline {
            Some(n) if data[end..].starts_with(b"\",") => {
                out.extend_from_slice(&data[copied..run + n]);
                copied = end + 2;
                from = copied;
            }
            _ => from = k + 1,
        }
    }
    out.extend_from_slice(&data[copied..]);
    out
}

/// Lower-case hex, as `hexdigest()` prints it.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
