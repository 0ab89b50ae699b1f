//! What the end-to-end tests share: running the binary, reading what it
//! wrote, and building manifests. In one module (and one test binary) so a
//! fixture is written once and nothing here goes unused unnoticed.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the stemflow binary with `args` in `dir`.
pub fn stemflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stemflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// Runs the stemflow binary with `args` in `dir`, `input` on its standard
/// input and `env` added to (and the batch schedulers' variables removed
/// from) its environment.
pub fn stemflow_with(dir: &Path, args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stemflow"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "JOB_COMPLETION_INDEX",
        "STEMFLOW_SHARDS",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("the binary runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // Fed from a thread: a child that writes a lot before reading would
    // otherwise block on a full stdout pipe while we block on its stdin.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("the binary runs");
    feeder.join().expect("stdin feeder");
    out
}

/// A run's stderr, lossily decoded (a test prints it when it fails).
/// Runs `render MANIFEST --out OUT --quiet` plus `extra` in `dir`.
pub fn render(dir: &Path, manifest: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["render", manifest, "--out", out, "--quiet"];
    args.extend_from_slice(extra);
    stemflow(dir, &args)
}

/// Writes `manifest` to `dir/m.toml` and renders it into `dir/out`, which
/// must succeed.
pub fn render_ok(dir: &Path, manifest: &str) {
    std::fs::write(dir.join("m.toml"), manifest).unwrap();
    let o = render(dir, "m.toml", "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A run's stdout, lossily decoded.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The committed audio fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `n` bytes no decoder recognises, the same in every test that needs them.
pub fn random_bytes(n: u32) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A WAV file's samples as f32 (integer formats scaled to ±1) and spec.
pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let samples = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.unwrap() as f32 / scale)
                .collect()
        }
    };
    (spec, samples)
}

/// Writes a 32-bit float WAV of interleaved samples with hound (an
/// independent writer, for inputs).
pub fn write_float_wav(path: &Path, rate: u32, channels: u16, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
}

/// Every output file under `dir`, relative, sorted. Store bookkeeping is
/// left out: run state folders `.stemflow/` (locks, staging) and song
/// markers `.stemflow-song` (which hold the plan's internal fingerprint, like
/// report.json's digest); tests/safety.rs checks those directly.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .is_some_and(|n| n == ".stemflow" || n == ".stemflow-song")
            {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every file below `dir` except a run's `summary.json` (which holds
/// wall-clock times), with its bytes, sorted by path.
pub fn output_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(dir)
        .into_iter()
        .filter(|p| p != Path::new("summary.json"))
        .map(|p| {
            let bytes = std::fs::read(dir.join(&p)).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Fails if a temporary entry is left in `out` (a run must remove or
/// publish every one, whether it finishes, fails, skips or is interrupted):
/// staging folders under `.stemflow/tmp`, replaced folders under
/// `.stemflow/trash`, or anything else starting with `.stemflow` in OUT.
pub fn no_temp_left(out: &Path) {
    if !out.is_dir() {
        return;
    }
    for e in std::fs::read_dir(out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == ".stemflow" || !name.starts_with(".stemflow"),
            "temporary {name} left in OUT"
        );
    }
    for sub in ["tmp", "trash"] {
        let dir = out.join(".stemflow").join(sub);
        if dir.is_dir() {
            let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
            assert!(left.is_empty(), "{left:?} left in {}", dir.display());
        }
    }
}

/// Largest sample-to-sample step.
pub fn max_step(x: &[f32]) -> f32 {
    x.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

/// RMS of consecutive windows.
pub fn windowed_rms(x: &[f32], window: usize, hop: usize) -> Vec<f64> {
    (0..x.len().saturating_sub(window))
        .step_by(hop)
        .map(|s| {
            (x[s..s + window]
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                / window as f64)
                .sqrt()
        })
        .collect()
}

/// One `[[songs]]` entry of a manifest, built up table by table. Every table
/// header follows a blank line, so songs concatenate into a valid manifest
/// and error line numbers are the same whatever comes before a song.
#[derive(Clone)]
pub struct Song(String);

impl Song {
    /// A song at 120 BPM, the tempo most tests do not care about.
    pub fn new(id: &str) -> Song {
        Song::at_bpm(id, 120)
    }

    /// A song at `bpm` (anything that prints as a TOML number).
    pub fn at_bpm(id: &str, bpm: impl Display) -> Song {
        Song(format!("\n[[songs]]\nid = \"{id}\"\nbpm = {bpm}\n"))
    }

    /// Keys (or whole tables) appended to the table opened last.
    pub fn with(mut self, lines: &str) -> Song {
        self.0.push_str(lines);
        self.0.push('\n');
        self
    }

    /// A sub-table of the song (`reference`, `master`, `verify`); its keys
    /// follow with [`Song::with`].
    pub fn table(self, name: &str) -> Song {
        self.with(&format!("\n[songs.{name}]"))
    }

    /// A `[[songs.sections]]` entry.
    pub fn section(self, name: &str, beats: u32) -> Song {
        self.with(&format!(
            "\n[[songs.sections]]\nname = \"{name}\"\nbeats = {beats}"
        ))
    }

    /// A `[[songs.stems]]` entry; `source` is an inline TOML table.
    pub fn stem(self, name: &str, source: &str) -> Song {
        self.with(&format!(
            "\n[[songs.stems]]\nname = \"{name}\"\nsource = {source}"
        ))
    }

    /// A stem reading `path` (relative to the manifest).
    pub fn file_stem(self, name: &str, path: &str) -> Song {
        self.stem(name, &format!("{{ type = \"file\", path = \"{path}\" }}"))
    }

    /// A silent stem, the cheapest way to add one.
    pub fn silent_stem(self, name: &str) -> Song {
        self.stem(name, "{ type = \"silence\" }")
    }
}

impl Display for Song {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The base song the manifest-error tests edit: one section and a filtered
/// 440 Hz lead. Its second line is `[[songs]]`, its fifth `duration`.
pub fn lead_song(id: &str, duration: f64, beats: u32) -> Song {
    Song::new(id)
        .with(&format!("duration = {duration}"))
        .section("a", beats)
        .stem("lead", "{ type = \"tone\", freq = 440.0 }")
        .with("effects = [{ type = \"lowpass\", cutoff = 8000.0, order = 4 }]")
}

/// SplitMix64 over the crate's own mixer: reproducible random inputs with no
/// dependency.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        stemflow::seed::mix64(self.0)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One of `xs`.
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}
