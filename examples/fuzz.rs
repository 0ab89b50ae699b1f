//! A dependency-free mutation fuzzer for the manifest parser and the file
//! decode path (cargo-fuzz needs a nightly toolchain, which this project's
//! machines do not have).
//!
//! Usage: cargo run --release --example fuzz -- manifest|decode SECONDS [SEED]
//!
//! Starts from the committed corpus (fixtures/), applies random byte flips,
//! insertions, deletions, splices and dictionary tokens, and runs each input
//! under `catch_unwind`. A panic is a crash: the input is written to
//! fuzz-crashes/ and counted. Prints executions, distinct outcomes and
//! crashes at the end; exits 1 if anything crashed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stemflow::source::{Source, file};
use stemflow::types::Block;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        stemflow::seed::mix64(self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "[[songs]]",
    "[[songs.stems]]",
    "[[songs.sections]]",
    "[songs.reference]",
    "[songs.verify]",
    "[songs.master]",
    "[defaults]",
    "[limits]",
    "id = ",
    "bpm = ",
    "duration = ",
    "name = ",
    "beats = ",
    "source = ",
    "type = ",
    "\"tone\"",
    "\"drums\"",
    "\"noise\"",
    "\"file\"",
    "\"silence\"",
    "align = ",
    "\"loop\"",
    "\"crossfade\"",
    "effects = [",
    "{ type = \"lowpass\", cutoff = 1e9, order = 8 }",
    "gain = ",
    "pan = ",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "-0",
    "0",
    "4294967296",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"../\"",
    "'''",
    "\"\"\"",
    "=",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\n",
    "#",
    "length = ",
    "freq = ",
    "sample_rate = ",
    "channels = ",
    "crossfade_ms = 1e300",
    "fade_ms = ",
    "delay_ms = 1e-300",
    "taps = 4294967295",
    "q = 0",
    "order = 255",
    "archive = ",
    "\"summary.json\"",
    "\"overview.svg\"",
    "\".stemflow\"",
    "\"\\u001b[31m\"",
    "\"a\\u0007\"",
    "1e-6",
    "[songs.sections]",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], text_tokens: bool) -> Vec<u8> {
    let mut x = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(x.len() + 1);
        match rng.below(if text_tokens { 6 } else { 5 }) {
            0 if !x.is_empty() => {
                let i = rng.below(x.len());
                x[i] ^= 1 << rng.below(8);
            }
            1 => x.insert(at, rng.next() as u8),
            2 if !x.is_empty() => {
                let start = at.min(x.len());
                let n = rng.below(16).min(x.len() - start);
                x.drain(start..start + n);
            }
            3 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let n = rng.below(64).min(other.len() - from);
                x.splice(at..at, other[from..from + n].iter().copied());
            }
            4 if !x.is_empty() => {
                // Overwrite a run with an "interesting" value.
                let v = [0u8, 0xFF, 0x7F, 0x80][rng.below(4)];
                let start = at.min(x.len());
                let n = rng.below(8).min(x.len() - start);
                x[start..start + n].fill(v);
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                x.splice(at..at, t.iter().copied());
            }
        }
    }
    x
}

fn load_corpus(dir: &Path, exts: &[&str]) -> Vec<Vec<u8>> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("fixtures folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect();
    v.sort();
    v.into_iter().map(|(_, b)| b).collect()
}

/// Decodes a file completely (bounded), as a stem of a stereo song would.
fn decode(path: &Path) -> Result<u64, String> {
    let mut src = file::FileSource::open(path, 2).map_err(|e| e.to_string())?;
    let mut block = Block::new(2, 4096);
    let mut total = 0u64;
    while total < 50_000_000 {
        let n = src.read(&mut block).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    file::probe(path).map_err(|e| e.to_string())?;
    Ok(total)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).map(String::as_str).unwrap_or("manifest");
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let corpus = match target {
        "manifest" => load_corpus(&fixtures, &["toml"]),
        "decode" => load_corpus(&fixtures, &["wav", "flac", "mp3", "ogg", "aiff", "m4a"]),
        other => {
            eprintln!("unknown target {other:?}: use manifest or decode");
            std::process::exit(2);
        }
    };
    std::panic::set_hook(Box::new(|_| {}));
    let crash_dir = PathBuf::from("fuzz-crashes");
    let work = std::env::temp_dir().join(format!("stemflow-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temp dir");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut execs, mut ok, mut errors, mut crashes) = (0u64, 0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        let input = mutate(&mut rng, &corpus, target == "manifest");
        let result = match target {
            "manifest" => {
                let text = String::from_utf8_lossy(&input).into_owned();
                catch_unwind(|| {
                    stemflow::manifest::parse(&text, "fuzz.toml", Path::new("."))
                        .map(|_| 0)
                        .map_err(|e| e.to_string())
                })
            }
            _ => {
                let path = work.join("input.bin");
                std::fs::write(&path, &input).expect("write input");
                catch_unwind(AssertUnwindSafe(|| decode(&path)))
            }
        };
        execs += 1;
        match result {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(msg)) => {
                errors += 1;
                assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
            }
            Err(_) => {
                crashes += 1;
                std::fs::create_dir_all(&crash_dir).expect("crash dir");
                std::fs::write(crash_dir.join(format!("{target}-{execs}")), &input)
                    .expect("save crash");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "target {target}: {execs} executions in {seconds} s ({ok} accepted, {errors} rejected with an error, {crashes} crashes)"
    );
    if crashes > 0 {
        std::process::exit(1);
    }
}
