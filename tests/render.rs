//! End-to-end renders: the demo, block-size and jobs invariance, and the
//! master recomputed from the written stems.

use std::io::Read;
use std::path::Path;

use crate::util::{
    Song, files, max_step, output_tree, read_wav, render, stderr, stemflow, windowed_rms,
};

/// A small manifest that exercises every generator, strategy, effect,
/// format and channel layout, kept short so block size 1 stays quick.
const EVERYTHING: &str = r#"
[defaults]
seed = 7

[[songs]]
id = "stereo24"
bpm = 100
duration = 3.0
sample_rate = 48000
channels = 2
format = "pcm24"

[[songs.sections]]
name = "a"
beats = 3

[[songs.sections]]
name = "b"
beats = 2

[[songs.stems]]
name = "saw"
source = { type = "tone", wave = "saw", freq = 97.0, amp = 0.4, length = 1.3 }
align = "loop"
pan = -0.6
gain_db = -3.0
effects = [{ type = "lowpass", cutoff = 5000.0, order = 8 }, { type = "peak", freq = 800.0, q = 1.5, gain_db = 4.0 }]

[[songs.stems]]
name = "noise"
source = { type = "noise", amp = 0.3, length = 2.0 }
align = "crossfade"
crossfade_ms = 30
pan = 0.7
effects = [{ type = "highpass", cutoff = 300.0, order = 6 }, { type = "notch", freq = 1000.0, q = 4.0 }]

[[songs.stems]]
name = "kit"
source = { type = "drums", amp = 0.7, hats = true, length = 1.8 }
effects = [{ type = "echo", delay_ms = 120.0, decay = 0.4, taps = 3 }, { type = "lowshelf", freq = 120.0, gain_db = 3.0 }]

[[songs.stems]]
name = "square"
source = { type = "tone", wave = "square", freq = 330.0, amp = 0.3, length = 3.4 }
align = "truncate"
fade_ms = 25
effects = [{ type = "bandpass", freq = 600.0, q = 0.7 }, { type = "highshelf", freq = 4000.0, gain_db = -6.0 }, { type = "gain", db = 2.0 }]

[[songs.stems]]
name = "quiet"
source = { type = "silence" }

# Stretched from 126 BPM and transposed, then grid-looped: the stretcher
# restarts at every repeat.
[[songs.stems]]
name = "fitted"
source = { type = "tone", wave = "saw", freq = 150.0, amp = 0.1, length = 1.2 }
source_bpm = 126.0
transpose = 2.0
role = "rhythmic"
align = "loop"
pan = 0.2

# Placed: restarted and looped in section b, an echo cut by the gate.
[[songs.stems]]
name = "placed-region"
source = { type = "tone", wave = "saw", freq = 150.0, amp = 0.4, length = 0.5 }
align = "loop"
sections = ["b"]
fade_in_ms = 12
effects = [{ type = "echo", delay_ms = 90.0, decay = 0.5, taps = 2 }]

# Placed on the song's timeline: bar 0 only, gated with long fades.
[[songs.stems]]
name = "placed-song"
source = { type = "noise", amp = 0.3 }
start_bar = 0
end_bar = 1
restart = "song"
fade_in_ms = 20
fade_out_ms = 30
effects = [{ type = "echo", delay_ms = 70.0, decay = 0.5, taps = 3 }]

[[songs]]
id = "mono16"
bpm = 87.5
duration = 2.5
sample_rate = 44100
format = "pcm16"

[[songs.stems]]
name = "tri"
source = { type = "tone", wave = "triangle", freq = 261.6, amp = 0.5, length = 2.2 }
align = "zero-pad"

[[songs.stems]]
name = "drums"
source = { type = "drums", length = 1.0 }
effects = [{ type = "lowpass", cutoff = 8000.0, order = 4 }]

[[songs]]
id = "float-none"
bpm = 140
duration = 1.5
archive = ""

[songs.master]
clip = "none"

[[songs.stems]]
name = "pad"
source = { type = "tone", freq = 440.0, amp = 1.2, length = 1.4 }
role = "melodic"
gain = 1.0
[songs.verify]
max_clip_ratio = 1.0

[[songs]]
id = "limited"
bpm = 120
duration = 2.0
channels = 2
format = "pcm16"

[songs.master]
normalize_lufs = -8.0
limit_true_peak_db = -1.0

[[songs.stems]]
name = "hot"
source = { type = "tone", wave = "saw", freq = 220.0, amp = 0.9 }
pan = 0.3

[[songs.stems]]
name = "kit"
source = { type = "drums", amp = 1.0, hats = true }

[[songs]]
id = "normalized"
bpm = 120
duration = 2.0
archive = ""
verify = "broadcast"

[songs.master]
normalize_lufs = -23.0

[[songs.stems]]
name = "pad"
source = { type = "tone", freq = 330.0, amp = 0.2 }

[[songs]]
id = "flac"
bpm = 120
duration = 1.0
channels = 2
format = "pcm24"
codec = "flac"
archive = ""

[songs.master]
normalize_lufs = -20.0

[[songs.stems]]
name = "lead"
source = { type = "tone", wave = "saw", freq = 220.0, amp = 0.5 }
pan = -0.3

[[songs.deliver]]
name = "stream"
sample_rate = 44100
format = "pcm16"
codec = "flac"
normalize_lufs = -14.0
limit_true_peak_db = -1.0

[[songs.deliver]]
name = "hires"
sample_rate = 96000
normalize_lufs = -23.0
limit_true_peak_db = -1.0
"#;

#[test]
fn output_bytes_do_not_depend_on_block_size_or_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.toml"), EVERYTHING).unwrap();
    let reference = {
        let o = render(
            tmp.path(),
            "m.toml",
            "ref",
            &["--block-size", "4096", "--jobs", "1"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        output_tree(&tmp.path().join("ref"))
    };
    let names: Vec<_> = reference
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".wav")).count(),
        20,
        "{names:?}"
    );
    assert!(names.contains(&"stereo24/stereo24.zip".to_string()));
    assert!(names.contains(&"flac/stems/lead.flac".to_string()));
    // Delivery versions (SPEC §10), resampled down and up.
    assert!(names.contains(&"flac/deliver/stream.flac".to_string()));
    assert!(names.contains(&"flac/deliver/hires.wav".to_string()));
    assert!(names.contains(&"stereo24/stems/fitted.wav".to_string()));
    // Six songs: up to 6 jobs each song runs on one thread (its stems
    // taking turns); with 16, every stem of a song gets its own thread.
    for (i, (block, jobs)) in [("1", "3"), ("64", "16"), ("1000", "1"), ("4096", "2")]
        .iter()
        .enumerate()
    {
        let out = format!("run{i}");
        let o = render(
            tmp.path(),
            "m.toml",
            &out,
            &["--block-size", block, "--jobs", jobs],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let got = output_tree(&tmp.path().join(&out));
        assert_eq!(got.len(), reference.len());
        for ((p, a), (q, b)) in reference.iter().zip(&got) {
            assert_eq!(p, q);
            assert!(
                a == b,
                "{} differs at --block-size {block} --jobs {jobs}",
                p.display()
            );
        }
    }
}

#[test]
fn stereo_pcm_master_is_the_panned_sum_of_its_stems() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.toml"), EVERYTHING).unwrap();
    let o = render(tmp.path(), "m.toml", "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let song = tmp.path().join("out/stereo24");
    let (spec, master) = read_wav(&song.join("master.wav"));
    assert_eq!(
        (spec.channels, spec.bits_per_sample, spec.sample_rate),
        (2, 24, 48000)
    );
    assert_eq!(master.len(), 2 * 144_000);
    // Post-fader stem files (SPEC §10) already hold their gain and pan
    // (pan law cos/sin((pan+1)π/4)): the master is their plain sum.
    let stems = [
        "saw",
        "noise",
        "kit",
        "square",
        "fitted",
        "quiet",
        "placed-region",
        "placed-song",
    ];
    let mut sum = vec![0.0f64; master.len()];
    for name in stems {
        let (_, x) = read_wav(&song.join(format!("stems/{name}.wav")));
        for (i, v) in x.iter().enumerate() {
            sum[i] += *v as f64;
        }
    }
    // Each 24-bit file carries up to ±1 LSB of dither plus rounding.
    let lsb = 1.0 / (1 << 23) as f64;
    let worst = sum
        .iter()
        .zip(&master)
        .map(|(s, m)| (s.clamp(-1.0, 1.0) - *m as f64).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 8.0 * lsb,
        "master differs from the stem sum by {worst}"
    );
}

/// Loudness of a written WAV, measured with the EBU R128 meter.
fn measure(path: &Path) -> stemflow::verify::Loudness {
    let (spec, x) = read_wav(path);
    let mut meter = stemflow::verify::LoudnessMeter::new(spec.channels, spec.sample_rate);
    let mut block = stemflow::types::Block::new(spec.channels, x.len() / spec.channels as usize);
    block.samples_mut().copy_from_slice(&x);
    meter.update(&block);
    meter.loudness()
}

#[test]
fn normalised_and_limited_masters_meet_their_targets() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.toml"), EVERYTHING).unwrap();
    let o = render(tmp.path(), "m.toml", "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = tmp.path().join("out");
    // Normalised: −23 LUFS within 0.1 LU, still exactly T frames.
    let (_, x) = read_wav(&out.join("normalized/master.wav"));
    assert_eq!(x.len(), 96_000);
    let l = measure(&out.join("normalized/master.wav"));
    assert!((l.lufs.unwrap() + 23.0).abs() <= 0.1, "{l:?}");
    // Limited (and pushed hard by normalisation): no true peak above −1 dBTP.
    let (spec, x) = read_wav(&out.join("limited/master.wav"));
    assert_eq!(x.len(), 2 * 96_000);
    assert_eq!(spec.bits_per_sample, 16);
    let l = measure(&out.join("limited/master.wav"));
    assert!(l.true_peak_db.unwrap() <= -1.0, "{l:?}");
    assert!(
        l.lufs.unwrap() > -10.0,
        "the limiter should only shave peaks: {l:?}"
    );
}

#[test]
fn limiter_passes_quiet_audio_unchanged_and_in_time() {
    // Under the ceiling the limiter's gain is exactly 1: with its latency
    // compensated, the master equals the unlimited one sample for sample.
    let song = Song::new("q").with("duration = 1.0\narchive = \"\"");
    let limited = song
        .clone()
        .table("master")
        .with("limit_true_peak_db = -1.0");
    let tone = "{ type = \"tone\", freq = 1234.5, amp = 0.3 }";
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.toml"), song.stem("t", tone).to_string()).unwrap();
    std::fs::write(
        tmp.path().join("b.toml"),
        limited.stem("t", tone).to_string(),
    )
    .unwrap();
    for (m, out) in [("a.toml", "a"), ("b.toml", "b")] {
        let o = stemflow(
            tmp.path(),
            &["render", m, "--out", out, "--quiet", "--block-size", "777"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let (_, a) = read_wav(&tmp.path().join("a/q/master.wav"));
    let (_, b) = read_wav(&tmp.path().join("b/q/master.wav"));
    assert_eq!(a, b);
}

#[test]
fn clip_none_lets_the_master_exceed_full_scale() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.toml"), EVERYTHING).unwrap();
    let o = render(tmp.path(), "m.toml", "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, master) = read_wav(&tmp.path().join("out/float-none/master.wav"));
    let peak = master.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    assert!((peak - 1.2).abs() < 1e-3, "{peak}");
    // archive = "" means no zip.
    assert!(
        !files(&tmp.path().join("out/float-none"))
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "zip"))
    );
}

#[test]
fn demo_renders_as_the_spec_describes() {
    let tmp = tempfile::tempdir().unwrap();
    let o = stemflow(tmp.path(), &["render", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let song = tmp.path().join("stemflow-out/demo");
    let want: Vec<String> = [
        "audio_deliverables.zip",
        "master.wav",
        "overview.svg",
        "report.json",
        "stems/bass.wav",
        "stems/bridge.wav",
        "stems/drums.wav",
        "stems/guitars.wav",
        "stems/synths.wav",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let got: Vec<String> = files(&song)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(got, want);

    demo_report_is_ok(&song);
    let stems = demo_master_is_the_stem_sum(&song);
    demo_extensions_are_seamless(&stems);
    demo_is_arranged(&stems);
    demo_archive_holds_the_files(&song);
}

/// The demo's report: ok, T frames, no clipping, each stem's strategy.
fn demo_report_is_ok(song: &Path) {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(song.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "ok");
    assert_eq!(report["target_frames"], 6_576_000);
    assert_eq!(report["master"]["clip_ratio"], 0.0);
    let strategies: Vec<&str> = report["stems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(
        strategies,
        ["loop", "zero-pad", "crossfade", "truncate", "loop"]
    );
}

/// The demo's stems and master: mono 48 kHz float, T frames, the master
/// the gained sum of the stems to the bit. Returns the stems' samples.
fn demo_master_is_the_stem_sum(song: &Path) -> Vec<(&'static str, Vec<f32>)> {
    let gains = [
        ("bass", 0.25),
        ("guitars", 0.2),
        ("synths", 0.15),
        ("bridge", 0.15),
        ("drums", 0.35),
    ];
    let mut sum = vec![0.0f64; 6_576_000];
    let mut stems = Vec::new();
    // Stem files are post-fader (SPEC §10): each already holds its gain.
    for (name, _gain) in gains {
        let (spec, x) = read_wav(&song.join(format!("stems/{name}.wav")));
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 48000, 32)
        );
        assert_eq!(spec.sample_format, hound::SampleFormat::Float);
        assert_eq!(x.len(), 6_576_000, "{name}");
        for (s, v) in sum.iter_mut().zip(&x) {
            *s += *v as f64;
        }
        stems.push((name, x));
    }
    let (spec, master) = read_wav(&song.join("master.wav"));
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 48000, 32)
    );
    assert_eq!(master.len(), 6_576_000);
    let peak = master.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    assert!(peak < 0.99, "the demo master clips: peak {peak}");
    // The same sum in the same order, rounded to f32 once: bit-exact.
    for (i, (s, m)) in sum.iter().zip(&master).enumerate() {
        assert_eq!(s.clamp(-1.0, 1.0) as f32, *m, "master frame {i}");
    }
    stems
}

/// Looped and extended demo stems: no click and no dip after the source
/// ends. Placed stems start their source at their region (`offset`) and
/// are checked up to the region's fade-out (`end`).
fn demo_extensions_are_seamless(stems: &[(&str, Vec<f32>)]) {
    const S: usize = 48000;
    for (name, offset, source_len, end) in [
        ("bass", 0, 134 * S, 137 * S),
        ("synths", 40 * S, 28 * S, 72 * S),
        ("synths", 88 * S, 28 * S, 120 * S),
        ("drums", 8 * S, 128 * S, 137 * S),
    ] {
        let x = &stems.iter().find(|(n, _)| *n == name).unwrap().1;
        // Past the 5-ms fade-in, before the seam and the fade-out.
        let source = &x[offset + 240..offset + source_len - 2400];
        let ext = &x[offset + source_len - 4800..end - 240];
        assert!(max_step(ext) <= 1.5 * max_step(source), "{name}: click");
        if name != "drums" {
            let mut rms = windowed_rms(source, 960, 960);
            rms.sort_by(f64::total_cmp);
            let median = rms[rms.len() / 2];
            let low = windowed_rms(ext, 960, 48)
                .into_iter()
                .fold(f64::INFINITY, f64::min);
            assert!(
                low >= 0.5 * median && median > 0.01,
                "{name}: dip to {low} (median {median})"
            );
        }
    }
}

/// The demo's arrangement: synths only in the choruses, bridge only in the
/// bridge, drums from the verse on; digital silence everywhere else.
fn demo_is_arranged(stems: &[(&str, Vec<f32>)]) {
    const S: usize = 48000;
    for (name, regions) in [
        ("synths", vec![(40 * S, 72 * S), (88 * S, 120 * S)]),
        ("bridge", vec![(72 * S, 88 * S)]),
        ("drums", [(8 * S, 137 * S)].to_vec()),
    ] {
        let x = &stems.iter().find(|(n, _)| *n == name).unwrap().1;
        for (i, v) in x.iter().enumerate() {
            let inside = regions.iter().any(|(s, e)| (*s..*e).contains(&i));
            assert!(inside || v.to_bits() == 0, "{name} sounds at frame {i}");
        }
        for (s, e) in regions {
            let body = &x[s + 240..e - 240];
            assert!(
                body.iter().any(|v| v.abs() > 0.05),
                "{name} silent in {s}..{e}"
            );
        }
    }
}

/// The demo's archive holds the same bytes, stored, dated 1980-01-01.
fn demo_archive_holds_the_files(song: &Path) {
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(song.join("audio_deliverables.zip")).unwrap())
            .unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "master.wav",
            "overview.svg",
            "report.json",
            "stems/bass.wav",
            "stems/bridge.wav",
            "stems/drums.wav",
            "stems/guitars.wav",
            "stems/synths.wav"
        ]
    );
    let mut entry = zip.by_name("master.wav").unwrap();
    assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
    let t = entry.last_modified().unwrap();
    assert_eq!((t.year(), t.month(), t.day()), (1980, 1, 1));
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    assert!(bytes == std::fs::read(song.join("master.wav")).unwrap());
}

#[test]
fn tpdf_dither_moves_pcm16_by_at_most_one_lsb() {
    let song = |dither: &str| {
        Song::new("d")
            .with(&format!(
                "duration = 1.0\nformat = \"pcm16\"\ndither = \"{dither}\"\narchive = \"\""
            ))
            .stem("t", "{ type = \"tone\", freq = 441.0, amp = 0.25 }")
            .to_string()
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.toml"), song("tpdf")).unwrap();
    std::fs::write(tmp.path().join("b.toml"), song("none")).unwrap();
    for (m, out) in [("a.toml", "a"), ("b.toml", "b")] {
        let o = stemflow(tmp.path(), &["render", m, "--out", out, "--quiet"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let lsb = 1.0 / 32768.0;
    let (_, dithered) = read_wav(&tmp.path().join("a/d/stems/t.wav"));
    let (_, plain) = read_wav(&tmp.path().join("b/d/stems/t.wav"));
    let diffs: Vec<f32> = dithered
        .iter()
        .zip(&plain)
        .map(|(a, b)| (a - b) / lsb)
        .collect();
    assert!(
        diffs.iter().all(|d| d.abs() <= 1.0),
        "dither moved a sample by more than 1 LSB"
    );
    let changed = diffs.iter().filter(|d| **d != 0.0).count();
    assert!(
        changed > diffs.len() / 10,
        "dither barely present: {changed} of {}",
        diffs.len()
    );
    let mean: f32 = diffs.iter().sum::<f32>() / diffs.len() as f32;
    assert!(mean.abs() < 0.02, "dither is biased: {mean}");
    // The undithered file is plain rounding of the float tone.
    for (n, v) in plain.iter().enumerate().take(2000) {
        let ideal = 0.25 * (2.0 * std::f64::consts::PI * 441.0 * n as f64 / 48000.0).sin();
        assert_eq!(*v as f64, (ideal * 32768.0).round() / 32768.0, "frame {n}");
    }
}

#[test]
fn overview_and_archive_only_output() {
    let tmp = tempfile::tempdir().unwrap();
    let song = Song::new("z")
        .with("duration = 2.0\nkeep_files = false")
        .section("intro", 2)
        .section("drop", 2)
        .stem("kick", "{ type = \"drums\" }")
        .stem("pad", "{ type = \"tone\", freq = 220.0, length = 1.0 }");
    std::fs::write(tmp.path().join("m.toml"), song.to_string()).unwrap();
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = tmp.path().join("out/z");
    // keep_files = false: the audio lives only in the archive.
    let names: Vec<String> = files(&dir)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(names, ["overview.svg", "report.json", "z.zip"]);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(dir.join("z.zip")).unwrap()).unwrap();
    let mut inside: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
    inside.sort();
    assert_eq!(
        inside,
        [
            "master.wav",
            "overview.svg",
            "report.json",
            "stems/kick.wav",
            "stems/pad.wav"
        ]
    );
    let mut wav = Vec::new();
    zip.by_name("stems/pad.wav")
        .unwrap()
        .read_to_end(&mut wav)
        .unwrap();
    let r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(r.duration(), 96_000);
    // The overview names the sections and the stems, and draws every lane.
    let svg = std::fs::read_to_string(dir.join("overview.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for word in [">intro<", ">drop<", ">kick<", ">pad<", ">master<", "LUFS"] {
        assert!(svg.contains(word), "overview lacks {word}");
    }
    assert_eq!(svg.matches("<path ").count(), 3);
}

#[test]
fn demo_normalised_to_streaming_loudness_with_the_limiter() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = stemflow::DEMO_MANIFEST.replace(
        "archive = \"audio_deliverables.zip\"",
        "archive = \"\"\nverify = \"streaming\"\n\n[songs.master]\nnormalize_lufs = -14.0\nlimit_true_peak_db = -1.0",
    );
    std::fs::write(tmp.path().join("m.toml"), &manifest).unwrap();
    let o = render(tmp.path(), "m.toml", "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let master = tmp.path().join("out/demo/master.wav");
    let (_, x) = read_wav(&master);
    assert_eq!(x.len(), 6_576_000);
    let l = measure(&master);
    assert!((l.lufs.unwrap() + 14.0).abs() <= 0.1, "{l:?}");
    assert!(l.true_peak_db.unwrap() <= -1.0, "{l:?}");

    // Without normalising, the demo misses the streaming preset's target.
    let plain = stemflow::DEMO_MANIFEST.replace(
        "archive = \"audio_deliverables.zip\"",
        "archive = \"\"\nverify = \"streaming\"",
    );
    std::fs::write(tmp.path().join("p.toml"), plain).unwrap();
    let o = render(tmp.path(), "p.toml", "plain", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("loudness check failed: master integrated loudness is -17.83 LUFS, the target -14 ± 1 LUFS"), "{}", stderr(&o));
}
