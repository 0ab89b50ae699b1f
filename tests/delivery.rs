//! Delivery files (SPEC §10): post-fader stems that sum to the master,
//! pre-fader stems byte for byte as before, FLAC and Broadcast WAV.

use std::path::Path;

use crate::util::{Song, read_wav, render_ok, stderr, stemflow};

/// Σ of the song's stem files, sample by sample, in f64.
fn stem_sum(song: &Path, stems: &[&str]) -> Vec<f64> {
    let mut sum: Vec<f64> = Vec::new();
    for name in stems {
        let (_, s) = read_wav(&song.join(format!("stems/{name}.wav")));
        sum.resize(s.len(), 0.0);
        sum.iter_mut().zip(&s).for_each(|(a, v)| *a += *v as f64);
    }
    sum
}

/// Largest |Σ stems − master| over the song.
fn residual(song: &Path, stems: &[&str]) -> f64 {
    let (_, master) = read_wav(&song.join("master.wav"));
    let sum = stem_sum(song, stems);
    assert_eq!(sum.len(), master.len());
    sum.iter()
        .zip(&master)
        .map(|(s, m)| (s - *m as f64).abs())
        .fold(0.0, f64::max)
}

/// A short song of three busy stems with distinct gains (and pans).
fn three_stems(id: &str, channels: u16, format: &str) -> Song {
    Song::new(id)
        .with(&format!(
            "duration = 1.5\nchannels = {channels}\nformat = \"{format}\"\narchive = \"\""
        ))
        .stem("lead", "{ type = \"tone\", wave = \"saw\", freq = 330.0, amp = 0.7 }")
        .with("gain = 0.6\npan = -0.4\neffects = [{ type = \"lowpass\", cutoff = 5000.0, order = 4 }]")
        .stem("kit", "{ type = \"drums\", amp = 0.9, hats = true }")
        .with("gain_db = -4.0\npan = 0.8")
        .stem("hiss", "{ type = \"noise\", amp = 0.3 }")
        .with("gain = 0.25")
}

#[test]
fn post_fader_float_stems_sum_to_the_unclipped_master() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manifest = String::new();
    for (id, channels) in [("mono", 1), ("stereo", 2)] {
        for (suffix, master) in [("", ""), ("-norm", "normalize_lufs = -24.0")] {
            let song = three_stems(&format!("{id}{suffix}"), channels, "float")
                .table("master")
                .with(&format!("clip = \"none\"\n{master}"));
            manifest.push_str(&song.to_string());
        }
    }
    render_ok(tmp.path(), &manifest);
    for id in ["mono", "mono-norm", "stereo", "stereo-norm"] {
        let r = residual(&tmp.path().join("out").join(id), &["lead", "kit", "hiss"]);
        assert!(r <= 1e-6, "{id}: Σ stems − master reaches {r:e}");
    }
    // The normalised song is louder than the plain one by the same gain in
    // its stems and master: the stems were scaled, not left pre-normalisation.
    let peak = |id: &str, f: &str| {
        let (_, s) = read_wav(&tmp.path().join("out").join(id).join(f));
        s.iter().fold(0f32, |a, v| a.max(v.abs())) as f64
    };
    let master_ratio = peak("stereo-norm", "master.wav") / peak("stereo", "master.wav");
    let stem_ratio = peak("stereo-norm", "stems/kit.wav") / peak("stereo", "stems/kit.wav");
    assert!(
        (master_ratio - 1.0).abs() > 0.05,
        "normalisation moved the level"
    );
    assert!((master_ratio / stem_ratio - 1.0).abs() < 1e-5);
}

#[test]
fn a_post_fader_stem_is_the_source_times_gain_and_pan_law() {
    let tmp = tempfile::tempdir().unwrap();
    let song = Song::new("s")
        .with("duration = 0.5\nchannels = 2\narchive = \"\"")
        .stem("tone", "{ type = \"tone\", freq = 1000.0, amp = 0.5 }")
        .with("gain = 0.8\npan = 0.5");
    render_ok(tmp.path(), &song.to_string());
    let (spec, s) = read_wav(&tmp.path().join("out/s/stems/tone.wav"));
    assert_eq!(spec.channels, 2);
    let theta = 1.5 * std::f64::consts::FRAC_PI_4;
    let (gl, gr) = (0.8 * theta.cos(), 0.8 * theta.sin());
    for (n, frame) in s.chunks_exact(2).enumerate() {
        let x = 0.5 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 48000.0).sin();
        assert!((frame[0] as f64 - gl * x).abs() < 1e-6, "left at {n}");
        assert!((frame[1] as f64 - gr * x).abs() < 1e-6, "right at {n}");
    }
}

#[test]
fn undithered_pcm24_stems_sum_to_the_master_within_one_lsb_per_stem() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manifest = String::new();
    for (id, master) in [("plain", ""), ("norm", "normalize_lufs = -14.0")] {
        let song = three_stems(id, 2, "pcm24")
            .with("")
            .table("master")
            .with(&format!("clip = \"none\"\n{master}"));
        manifest.push_str(&song.to_string().replacen(
            "archive = \"\"",
            "archive = \"\"\ndither = \"none\"",
            1,
        ));
    }
    render_ok(tmp.path(), &manifest);
    let lsb = 1.0 / (1u32 << 23) as f64;
    for id in ["plain", "norm"] {
        let r = residual(&tmp.path().join("out").join(id), &["lead", "kit", "hiss"]);
        assert!(r <= 4.0 * lsb, "{id}: {} LSB", r / lsb);
    }
}

/// `every.toml` with `keys` added to its `[defaults]` and its fixture paths
/// made absolute, so it renders from any folder.
pub fn every_with(keys: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/golden/every.toml")).unwrap();
    let fixtures = format!("{}/", root.join("fixtures").display());
    text.replace("../../fixtures/", &fixtures).replacen(
        "[defaults]\n",
        &format!("[defaults]\n{keys}\n"),
        1,
    )
}

#[test]
fn pre_fader_stems_and_masters_keep_the_bytes_of_before() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("m.toml"),
        every_with("stem_files = \"pre-fader\"\nbwf = false"),
    )
    .unwrap();
    let o = stemflow(
        tmp.path(),
        &["render", "m.toml", "--out", "every", "--quiet"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: String = crate::golden::hash_lines(tmp.path())
        .lines()
        .filter(|l| l.ends_with(".wav"))
        .map(|l| format!("{l}\n"))
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = std::fs::read_to_string(root.join("tests/golden/prefader.sha256")).unwrap();
    assert_eq!(got, want);
}

/// A FLAC file decoded by symphonia (through the crate's file source, the
/// decoder `render` reads inputs with), as f32 full-scale samples.
pub(crate) fn decode_with_symphonia(path: &Path, rate: u32, channels: u16) -> Vec<f32> {
    let mut src = stemflow::source::open_file(path, rate, channels).unwrap();
    let mut block = stemflow::types::Block::new(channels, 4096);
    let mut out = Vec::new();
    while src.read(&mut block).unwrap() > 0 {
        out.extend_from_slice(block.samples());
    }
    out
}

/// `flac -d` (the reference decoder) to a WAV, then read with hound;
/// `None` where the flac tool is not installed.
fn decode_with_flac_tool(path: &Path) -> Option<Vec<f32>> {
    let wav = path.with_extension("decoded.wav");
    let o = std::process::Command::new("flac")
        .args(["-d", "-s", "-f", "-o"])
        .arg(&wav)
        .arg(path)
        .output()
        .ok()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = std::process::Command::new("flac")
        .arg("-t")
        .arg("-s")
        .arg(path)
        .status()
        .unwrap();
    assert!(t.success(), "flac -t {}", path.display());
    Some(read_wav(&wav).1)
}

#[test]
fn flac_files_decode_to_exactly_the_samples_of_the_wav_render() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manifest = String::new();
    for codec in ["wav", "flac"] {
        for (id, channels, format, master) in [
            ("st16", 2, "pcm16", ""),
            (
                "mono24",
                1,
                "pcm24",
                "normalize_lufs = -18.0\nlimit_true_peak_db = -1.0",
            ),
        ] {
            // Same seed and stem names: the same dither in both codecs.
            let song = three_stems(&format!("{id}-{codec}"), channels, format)
                .table("master")
                .with(master);
            let keys = format!("codec = \"{codec}\"");
            manifest.push_str(&song.to_string().replacen("archive = \"\"", &keys, 1));
        }
    }
    render_ok(tmp.path(), &manifest);
    let out = tmp.path().join("out");
    for (id, channels) in [("st16", 2u16), ("mono24", 1)] {
        for file in ["master", "stems/lead", "stems/kit", "stems/hiss"] {
            let (_, wav) = read_wav(&out.join(format!("{id}-wav/{file}.wav")));
            let flac = out.join(format!("{id}-flac/{file}.flac"));
            assert_eq!(&std::fs::read(&flac).unwrap()[..4], b"fLaC");
            let decoded = decode_with_symphonia(&flac, 48000, channels);
            assert!(
                decoded == wav,
                "{id} {file}: symphonia decodes other samples"
            );
            if let Some(reference) = decode_with_flac_tool(&flac) {
                assert!(
                    reference == wav,
                    "{id} {file}: flac -d decodes other samples"
                );
            }
        }
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{id}-flac/report.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["master"]["file"], "master.flac");
        assert_eq!(report["stems"][0]["file"], "stems/lead.flac");
        let zip = std::fs::File::open(out.join(format!("{id}-flac/{id}-flac.zip"))).unwrap();
        let zip = zip::ZipArchive::new(zip).unwrap();
        let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "master.flac",
                "overview.svg",
                "report.json",
                "stems/hiss.flac",
                "stems/kit.flac",
                "stems/lead.flac"
            ]
        );
    }
}

#[test]
fn float_flac_is_a_manifest_error_and_align_never_writes_riff_as_flac() {
    let tmp = tempfile::tempdir().unwrap();
    let song = three_stems("f", 1, "float").to_string();
    let song = song.replacen("archive = \"\"", "codec = \"flac\"", 1);
    std::fs::write(tmp.path().join("m.toml"), song).unwrap();
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("`codec`"), "{}", stderr(&o));
    assert!(!tmp.path().join("out/f").exists());

    let input = tmp.path().join("in.wav");
    let tone: Vec<f32> = (0..4800).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    crate::util::write_float_wav(&input, 48000, 1, &tone);
    let o = stemflow(
        tmp.path(),
        &["align", "in.wav", "out.flac", "--duration", "0.2"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("pcm16"), "{}", stderr(&o));
    assert!(!tmp.path().join("out.flac").exists());
    let args = [
        "align",
        "in.wav",
        "out.flac",
        "--duration",
        "0.2",
        "--format",
        "pcm16",
    ];
    let o = stemflow(tmp.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let flac = tmp.path().join("out.flac");
    assert_eq!(&std::fs::read(&flac).unwrap()[..4], b"fLaC");
    let decoded = decode_with_symphonia(&flac, 48000, 1);
    assert_eq!(decoded.len(), 9600);
    let lsb = 1.0 / 32768.0;
    for (d, t) in decoded.iter().zip(&tone) {
        assert!((d - t).abs() <= 1.5 * lsb);
    }
}

/// The body of a RIFF/RF64 file's chunk `id`, found by walking the chunks.
fn riff_chunk(bytes: &[u8], id: &[u8; 4]) -> Option<Vec<u8>> {
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == id {
            return Some(bytes[at + 8..at + 8 + len].to_vec());
        }
        if &bytes[at..at + 4] == b"data" {
            return None;
        }
        at += 8 + len + len % 2;
    }
    None
}

/// A fixed-width text field, up to its first NUL.
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8(field[..end].to_vec()).unwrap()
}

/// Checks `file`'s bext chunk field by field against EBU Tech 3285 v2 and
/// the figures the report gives for it (`figures`).
pub(crate) fn check_bext(
    file: &Path,
    description: &str,
    date: &str,
    time: &str,
    figures: &serde_json::Value,
) {
    let body = riff_chunk(&std::fs::read(file).unwrap(), b"bext").expect("a bext chunk");
    // Layout from the standard: Description 256, Originator 32,
    // OriginatorReference 32, OriginationDate 10, OriginationTime 8,
    // TimeReferenceLow/High 4+4, Version 2, UMID 64, then five loudness
    // WORDs, Reserved 180, CodingHistory.
    let fields = [256, 32, 32, 10, 8, 4, 4, 2, 64, 2, 2, 2, 2, 2, 180];
    let mut offsets = vec![0usize];
    for len in fields {
        offsets.push(offsets.last().unwrap() + len);
    }
    assert!(
        body.len() >= offsets[15],
        "bext body of {} bytes",
        body.len()
    );
    let field = |i: usize| &body[offsets[i]..offsets[i + 1]];
    assert_eq!(text(field(0)), description);
    assert_eq!(text(field(1)), "stemflow");
    assert_eq!(text(field(3)), date);
    assert_eq!(text(field(4)), time);
    assert_eq!(field(5), [0; 4]);
    assert_eq!(field(6), [0; 4]);
    assert_eq!(u16::from_le_bytes(field(7).try_into().unwrap()), 2);
    let keys = [
        "lufs",
        "loudness_range",
        "true_peak_db",
        "max_momentary",
        "max_short_term",
    ];
    for (k, key) in keys.iter().enumerate() {
        let got = i16::from_le_bytes(field(9 + k).try_into().unwrap());
        let want = match figures[key].as_f64() {
            Some(v) => (v * 100.0).round() as i16,
            None => 0x7FFF,
        };
        assert_eq!(got, want, "{}: {key}", file.display());
    }
    assert!(figures["max_momentary"].as_f64().is_some(), "reported");
}

#[test]
fn every_wav_carries_a_bext_chunk_with_its_measured_loudness() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = three_stems("plain", 2, "pcm24").to_string();
    let dated = three_stems("dated", 1, "float")
        .table("master")
        .with("normalize_lufs = -20.0\nlimit_true_peak_db = -1.0")
        .to_string()
        .replacen("archive = \"\"", "date = \"2024-06-30 12:34:56\"", 1);
    let off =
        three_stems("off", 1, "float")
            .to_string()
            .replacen("archive = \"\"", "bwf = false", 1);
    render_ok(tmp.path(), &format!("{plain}{dated}{off}"));
    let out = tmp.path().join("out");
    for (id, date, time) in [
        ("plain", "1980-01-01", "00:00:00"),
        ("dated", "2024-06-30", "12:34:56"),
    ] {
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(id).join("report.json")).unwrap(),
        )
        .unwrap();
        let master = out.join(id).join("master.wav");
        check_bext(
            &master,
            &format!("song {id}: master"),
            date,
            time,
            &report["master"],
        );
        for (k, stem) in ["lead", "kit", "hiss"].iter().enumerate() {
            let file = out.join(id).join(format!("stems/{stem}.wav"));
            let what = format!("song {id}: stem {stem}");
            check_bext(&file, &what, date, time, &report["stems"][k]);
            // An independent reader still reads the file.
            let frames = read_wav(&file).1.len();
            assert_eq!(
                frames,
                report["target_frames"].as_u64().unwrap() as usize
                    * if id == "plain" { 2 } else { 1 }
            );
        }
    }
    for file in ["master.wav", "stems/lead.wav"] {
        let bytes = std::fs::read(out.join("off").join(file)).unwrap();
        assert_eq!(riff_chunk(&bytes, b"bext"), None, "bwf = false: {file}");
    }
}

/// `stemflow verify` on `file` with `extra` arguments.
fn verify(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["verify", "tone.wav"];
    args.extend_from_slice(extra);
    stemflow(dir, &args)
}

#[test]
fn verify_measures_loudness_and_checks_its_targets() {
    let tmp = tempfile::tempdir().unwrap();
    // 6 s of a 997 Hz tone whose level steps up halfway, in stereo.
    let samples: Vec<f32> = (0..6 * 48000)
        .flat_map(|n| {
            let amp = if n < 3 * 48000 { 0.05 } else { 0.2 };
            let v = (amp * (2.0 * std::f64::consts::PI * 997.0 * n as f64 / 48000.0).sin()) as f32;
            [v, 0.5 * v]
        })
        .collect();
    crate::util::write_float_wav(&tmp.path().join("tone.wav"), 48000, 2, &samples);
    let mut reference = ebur128::EbuR128::new(
        2,
        48000,
        ebur128::Mode::I | ebur128::Mode::LRA | ebur128::Mode::TRUE_PEAK,
    )
    .unwrap();
    reference.add_frames_f32(&samples).unwrap();
    let lufs = reference.loudness_global().unwrap();
    let lra = reference.loudness_range().unwrap();
    let tp = 20.0
        * reference
            .true_peak(0)
            .unwrap()
            .max(reference.true_peak(1).unwrap())
            .log10();

    let o = verify(tmp.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        (r["lufs"].as_f64().unwrap() - lufs).abs() < 0.02,
        "{r} vs {lufs}"
    );
    // Six seconds give only four short-term blocks: 0.1 LU is tight enough.
    assert!(
        (r["loudness_range"].as_f64().unwrap() - lra).abs() < 0.1,
        "{r} vs {lra}"
    );
    assert!(
        (r["true_peak_db"].as_f64().unwrap() - tp).abs() < 0.02,
        "{r} vs {tp}"
    );

    let o = verify(tmp.path(), &[]);
    let line = crate::util::stdout(&o);
    let shown = format!("{:.2} LUFS", r["lufs"].as_f64().unwrap());
    assert!(line.contains(&shown), "{line}");
    assert!(line.contains("LRA") && line.contains("dBTP"), "{line}");

    let near = format!("{:.1}", lufs + 0.5);
    let o = verify(
        tmp.path(),
        &["--target-lufs", &near, "--max-true-peak", "0"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let far = format!("{:.1}", lufs + 3.0);
    let o = verify(tmp.path(), &["--target-lufs", &far]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("LUFS"), "{}", stderr(&o));
    let o = verify(
        tmp.path(),
        &["--target-lufs", &far, "--lufs-tolerance", "3.5"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let below = format!("{:.1}", tp - 1.0);
    let o = verify(tmp.path(), &["--max-true-peak", &below, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("dBTP"), "{}", stderr(&o));
}
