//! Delivery versions and `--keep-failed` (SPEC §10), checked against
//! independent truth: the `ebur128` crate's integrated loudness, the 16×
//! windowed-sinc true peak of tests/truepeak.rs, frame counts from the
//! formula round(T·r/R), a sinc resampling of the master done here (for
//! "no time shift"), and the archive's bytes.

use std::io::Read;
use std::path::Path;

use crate::delivery::{check_bext, decode_with_symphonia};
use crate::truepeak::reference_db;
use crate::util::{Song, no_temp_left, read_wav, render, stderr};

/// How close each version must come to its loudness target, LU.
const LOUDNESS_TOLERANCE: f64 = 0.2;

/// A stereo float song at `rate`, unclipped master (so master.wav is the
/// mix every version is made from), with a kick-heavy mix: at −14 LUFS its
/// peaks pass −1 dBTP, so the limiter has work to do. `versions` are
/// `[[songs.deliver]]` tables.
fn song(id: &str, rate: u32, versions: &[(&str, u32, &str, &str, f64)]) -> String {
    let mut s = Song::new(id)
        .with(&format!(
            "duration = 3.0013\nsample_rate = {rate}\nchannels = 2\nformat = \"float\""
        ))
        .table("master")
        .with("clip = \"none\"")
        .stem("drums", "{ type = \"drums\", amp = 0.8 }")
        .stem("bass", "{ type = \"tone\", freq = 110.0, amp = 0.25 }")
        .with("pan = -0.4")
        .stem("air", "{ type = \"noise\", amp = 0.05 }")
        .to_string();
    for (name, r, format, codec, lufs) in versions {
        s.push_str(&format!(
            "\n[[songs.deliver]]\nname = \"{name}\"\nsample_rate = {r}\nformat = \"{format}\"\n\
             codec = \"{codec}\"\nnormalize_lufs = {lufs}\nlimit_true_peak_db = -1.0\n"
        ));
    }
    s
}

/// The two versions the issue asks for: 44.1 kHz/16-bit FLAC at −14 LUFS
/// and 48 kHz/24-bit WAV at −23 LUFS, all −1 dBTP.
const VERSIONS: [(&str, u32, &str, &str, f64); 2] = [
    ("stream", 44100, "pcm16", "flac", -14.0),
    ("broadcast", 48000, "pcm24", "wav", -23.0),
];

/// Integrated loudness by the `ebur128` crate.
fn ebur128_lufs(samples: &[f32], channels: u32, rate: u32) -> f64 {
    let mut m = ebur128::EbuR128::new(channels, rate, ebur128::Mode::I).unwrap();
    m.add_frames_f32(samples).unwrap();
    m.loudness_global().unwrap()
}

/// One channel of `x` resampled from `from` to `to` Hz by a Kaiser-windowed
/// sinc (±48 taps at the lower rate, cutoff 0.95 of its Nyquist), with no
/// delay: output frame m is the input at time m/to.
fn sinc_resample(x: &[f64], from: u32, to: u32, frames: usize) -> Vec<f64> {
    let ratio = from as f64 / to as f64;
    let cutoff = 0.95 * (1.0f64).min(1.0 / ratio);
    let half = (48.0 * ratio.max(1.0)).ceil() as isize;
    (0..frames)
        .map(|m| {
            let t = m as f64 * ratio;
            let centre = t.floor() as isize;
            (centre - half + 1..=centre + half)
                .filter(|&n| n >= 0 && (n as usize) < x.len())
                .map(|n| {
                    let d = t - n as f64;
                    let arg = std::f64::consts::PI * cutoff * d;
                    let sinc = if arg == 0.0 { 1.0 } else { arg.sin() / arg };
                    let r = d / half as f64;
                    let w = (1.0 - r * r).max(0.0).sqrt();
                    x[n as usize] * cutoff * sinc * w
                })
                .sum()
        })
        .collect()
}

/// The lag (frames, −4..=4) at which `a` and `b` correlate best.
fn best_lag(a: &[f64], b: &[f64]) -> isize {
    let corr = |lag: isize| -> f64 {
        (8..a.len().min(b.len()) - 8)
            .map(|i| a[i] * b[(i as isize + lag) as usize])
            .sum()
    };
    (-4..=4)
        .max_by(|&x, &y| corr(x).total_cmp(&corr(y)))
        .unwrap()
}

/// The left channel of interleaved stereo, in f64.
fn left(x: &[f32]) -> Vec<f64> {
    x.iter().step_by(2).map(|&v| v as f64).collect()
}

/// A version's samples, decoded independently of the render (hound for
/// WAV, symphonia for FLAC).
fn decode(path: &Path, rate: u32) -> Vec<f32> {
    if path.extension().is_some_and(|e| e == "flac") {
        decode_with_symphonia(path, rate, 2)
    } else {
        let (spec, samples) = read_wav(path);
        assert_eq!((spec.sample_rate, spec.channels), (rate, 2));
        samples
    }
}

/// The bytes of `name` inside the zip at `zip`.
fn zip_entry(zip: &Path, name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut bytes = Vec::new();
    z.by_name(name)
        .unwrap_or_else(|e| panic!("{name} not in the archive: {e}"))
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// Checks every version of song `id` (rendered at `rate` into `out`).
fn check_versions(out: &Path, id: &str, rate: u32) {
    let dir = out.join(id);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    let (_, master) = read_wav(&dir.join("master.wav"));
    let t = master.len() / 2;
    let master_lufs = ebur128_lufs(&master, 2, rate);
    for (k, (name, r, _, codec, target)) in VERSIONS.iter().enumerate() {
        let file = format!("deliver/{name}.{codec}");
        let samples = decode(&dir.join(&file), *r);
        let frames = samples.len() / 2;
        let want = (t as f64 * *r as f64 / rate as f64).round() as usize;
        assert_eq!(frames, want, "{id} {name}: frames, T = {t}");
        let lufs = ebur128_lufs(&samples, 2, *r);
        let peak = reference_db(&samples, 2);
        // The mix brought to the target with no limiter would pass the
        // ceiling: the limiter had to act, and the loudness still holds.
        let unlimited = reference_db(&master, 2) + target - master_lufs;
        println!(
            "{id} ({rate} Hz) {name}: {lufs:.3} LUFS (target {target}), {peak:.3} dBTP \
             (unlimited {unlimited:.2}), {frames} frames = round({t}·{r}/{rate})"
        );
        assert!(
            (lufs - target).abs() <= LOUDNESS_TOLERANCE,
            "{id} {name}: {lufs:.3} LUFS, target {target}"
        );
        assert!(
            peak <= -1.0,
            "{id} {name}: {peak:.3} dBTP by 16x oversampling"
        );
        if *target == -14.0 {
            assert!(
                unlimited > -1.0,
                "{id} {name}: the limiter had nothing to do"
            );
        }
        // No time shift: the version lines up with the master resampled here.
        let truth = sinc_resample(&left(&master), rate, *r, frames);
        assert_eq!(
            best_lag(&truth, &left(&samples)),
            0,
            "{id} {name}: time shift"
        );
        let entry = &report["deliver"][k];
        assert_eq!(entry["file"], file.as_str());
        assert_eq!(entry["frames"], want as u64);
        let reported = entry["lufs"].as_f64().unwrap();
        assert!(
            (reported - lufs).abs() < 0.05,
            "{id} {name}: report {reported}"
        );
        let archived = zip_entry(&dir.join(format!("{id}.zip")), &file);
        assert!(
            archived == std::fs::read(dir.join(&file)).unwrap(),
            "{file} archived"
        );
        if *codec == "wav" {
            let description = format!("song {id}: deliver {name}");
            check_bext(
                &dir.join(&file),
                &description,
                "1980-01-01",
                "00:00:00",
                entry,
            );
        }
    }
}

#[test]
fn delivery_versions_meet_their_targets_by_independent_meters() {
    let tmp = tempfile::tempdir().unwrap();
    // At 48 kHz the FLAC is resampled down and the WAV keeps the rate; at
    // 44.1 kHz the WAV is resampled up and the FLAC keeps the rate.
    let text = format!(
        "{}\n{}",
        song("at48", 48000, &VERSIONS),
        song("at44", 44100, &VERSIONS)
    );
    std::fs::write(tmp.path().join("m.toml"), text).unwrap();
    let o = render(tmp.path(), "m.toml", "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    check_versions(&tmp.path().join("out"), "at48", 48000);
    check_versions(&tmp.path().join("out"), "at44", 44100);
}

#[test]
fn bad_delivery_versions_are_manifest_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (("a", 44100, "float", "flac", -14.0), "`deliver.codec`"),
        (("stems", 44100, "pcm16", "wav", -14.0), "`deliver.name`"),
        (("a", 44000, "pcm16", "wav", -14.0), "`deliver.sample_rate`"),
    ];
    for (version, key) in cases {
        std::fs::write(tmp.path().join("m.toml"), song("s", 48000, &[version])).unwrap();
        let o = render(tmp.path(), "m.toml", "out", &[]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("song \"s\": key ") && e.contains(key), "{e}");
        assert!(!tmp.path().join("out/s").exists(), "nothing rendered");
    }
}

/// A song failing `verify = "broadcast"` (−23 LUFS): its mix is far louder.
fn failing(freq: f64, versions: &[(&str, u32, &str, &str, f64)]) -> String {
    let mut s = Song::new("loud")
        .with("duration = 1.0\nverify = \"broadcast\"")
        .stem(
            "tone",
            &format!("{{ type = \"tone\", freq = {freq}, amp = 0.5 }}"),
        )
        .to_string();
    for (name, r, format, codec, lufs) in versions {
        s.push_str(&format!(
            "\n[[songs.deliver]]\nname = \"{name}\"\nsample_rate = {r}\nformat = \"{format}\"\n\
             codec = \"{codec}\"\nnormalize_lufs = {lufs}\n"
        ));
    }
    s
}

/// Relative paths of the files under `dir`, sorted (store bookkeeping
/// left out).
fn tree(dir: &Path) -> Vec<String> {
    crate::util::files(dir)
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

/// The failed report has the figures that failed, with or without the flag.
fn check_failed_report(path: &Path) {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(r["status"], "failed");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("loudness check failed"), "{message}");
    let lufs = r["master"]["lufs"].as_f64().expect("the failing figure");
    assert!(
        message.contains(&format!("{lufs:.2} LUFS")),
        "{message} vs {lufs}"
    );
    assert_eq!(r["master"]["frames"], 48000);
    assert_eq!(r["stems"][0]["name"], "tone");
    assert!(r["stems"][0]["lufs"].as_f64().is_some());
}

#[test]
fn keep_failed_keeps_the_audio_of_a_song_failing_its_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let kept = out.join(".stemflow/failed/loud");
    let extra = [("extra", 44100, "pcm16", "flac", -16.0)];
    // Without the flag: the song folder holds only its report.
    std::fs::write(tmp.path().join("m.toml"), failing(440.0, &extra)).unwrap();
    let o = render(tmp.path(), "m.toml", "out", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(tree(&out.join("loud")), ["report.json"]);
    check_failed_report(&out.join("loud/report.json"));
    assert!(!kept.exists());
    no_temp_left(&out);
    // With it: everything rendered, kept for inspection.
    let o = render(tmp.path(), "m.toml", "out", &["--keep-failed"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        tree(&kept),
        [
            "deliver/extra.flac",
            "master.wav",
            "overview.svg",
            "report.json",
            "stems/tone.wav"
        ]
    );
    check_failed_report(&kept.join("report.json"));
    check_failed_report(&out.join("loud/report.json"));
    let (_, master) = read_wav(&kept.join("master.wav"));
    assert_eq!(master.len(), 48000);
    let (_, tone) = read_wav(&kept.join("stems/tone.wav"));
    assert_eq!(tone, master, "one post-fader stem is the master");
    no_temp_left(&out);
    // Failing again replaces the kept folder whole: nothing of the first
    // failure (its version, its master) stays.
    std::fs::write(tmp.path().join("m.toml"), failing(220.0, &[])).unwrap();
    let o = render(tmp.path(), "m.toml", "out", &["--keep-failed"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        tree(&kept),
        [
            "master.wav",
            "overview.svg",
            "report.json",
            "stems/tone.wav"
        ]
    );
    let (_, again) = read_wav(&kept.join("master.wav"));
    assert_ne!(again, master);
    no_temp_left(&out);
    // The next run's cleanup of dead processes' state leaves it alone.
    std::fs::write(
        tmp.path().join("m.toml"),
        Song::new("other")
            .with("duration = 0.5")
            .stem("t", "{ type = \"tone\", freq = 440.0 }")
            .to_string(),
    )
    .unwrap();
    let o = render(tmp.path(), "m.toml", "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tree(&kept).len(), 4, "kept after a later run");
}

#[test]
fn versions_leave_the_master_and_stems_as_they_were() {
    // A song with versions renders its master in two passes from the
    // unclipped mix; with no gain and no limiter that is the one-pass
    // master, hard clip and dither included.
    let tmp = tempfile::tempdir().unwrap();
    let base = Song::new("s")
        .with("duration = 1.0\nformat = \"pcm24\"\nchannels = 2\narchive = \"\"")
        .table("verify")
        .with("max_clip_ratio = 1.0")
        .stem(
            "hot",
            "{ type = \"tone\", wave = \"saw\", freq = 220.0, amp = 1.5 }",
        )
        .with("pan = 0.3")
        .stem("air", "{ type = \"noise\", amp = 0.3 }")
        .to_string();
    let versions = format!("{base}\n[[songs.deliver]]\nname = \"v\"\nsample_rate = 44100\n");
    for (name, text) in [("plain", &base), ("versions", &versions)] {
        std::fs::write(tmp.path().join("m.toml"), text).unwrap();
        let o = render(tmp.path(), "m.toml", name, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert!(tmp.path().join("versions/s/deliver/v.wav").is_file());
    for file in ["master.wav", "stems/hot.wav", "stems/air.wav"] {
        let read = |out: &str| std::fs::read(tmp.path().join(out).join("s").join(file)).unwrap();
        assert!(read("plain") == read("versions"), "{file} changed");
    }
}
