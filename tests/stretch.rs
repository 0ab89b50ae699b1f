//! Tempo and key of a source (SPEC §9): `source_bpm` stretches a stem's
//! source by source_bpm / bpm with its pitch kept, `transpose` shifts its
//! pitch with its length kept. The truth is drawn here: sines and click
//! tracks written as files, measured in the written stems with an
//! independent FFT (rustfft) against the formulas — frequency × 2^(st/12),
//! the beat grid round(k · 60/bpm · rate), the length round(S · ratio).

use std::path::Path;

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use crate::util::{Song, read_wav, render, stderr, stemflow, write_float_wav};

const RATE: u32 = 48_000;

fn sine(freq: f64, frames: usize) -> Vec<f32> {
    let w = std::f64::consts::TAU * freq / RATE as f64;
    (0..frames)
        .map(|i| (0.5 * (w * i as f64).sin()) as f32)
        .collect()
}

/// The power spectrum of `x` under a 4-term Blackman-Harris window
/// (side lobes below −92 dB), zero-padded 4×: (Hz per bin, powers).
fn spectrum(x: &[f32]) -> (f64, Vec<f64>) {
    let n = x.len();
    let m = (4 * n).next_power_of_two();
    let mut buf = vec![Complex::new(0.0f64, 0.0); m];
    for (i, (b, v)) in buf.iter_mut().zip(x).enumerate() {
        let p = std::f64::consts::TAU * i as f64 / (n - 1) as f64;
        let w = 0.35875 - 0.48829 * p.cos() + 0.14128 * (2.0 * p).cos() - 0.01168 * (3.0 * p).cos();
        b.re = *v as f64 * w;
    }
    FftPlanner::new().plan_fft_forward(m).process(&mut buf);
    let power = buf[..m / 2].iter().map(|c| c.norm_sqr()).collect();
    (RATE as f64 / m as f64, power)
}

/// The spectral peak in Hz, refined by a parabola through the log powers
/// of the three bins around it.
fn peak_hz(x: &[f32]) -> f64 {
    let (df, p) = spectrum(x);
    let k = (1..p.len() - 1)
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap();
    let (l, c, r) = (p[k - 1].ln(), p[k].ln(), p[k + 1].ln());
    (k as f64 + 0.5 * (l - r) / (l - 2.0 * c + r)) * df
}

/// THD+N in dB: the power more than 20 Hz from the peak (above 10 Hz)
/// against the power within it.
fn thd_n_db(x: &[f32]) -> f64 {
    let f0 = peak_hz(x);
    let (df, p) = spectrum(x);
    let (mut tone, mut rest) = (0.0, 0.0);
    for (k, v) in p.iter().enumerate() {
        let f = k as f64 * df;
        if (f - f0).abs() <= 20.0 {
            tone += v;
        } else if f > 10.0 {
            rest += v;
        }
    }
    10.0 * (rest / tone).log10()
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// `x` without its first and last half second (the edges of a stretch).
fn middle(x: &[f32]) -> &[f32] {
    let edge = RATE as usize / 2;
    &x[edge..x.len() - edge]
}

/// Renders one 120-BPM mono song of `seconds` whose stems read the given
/// files with the given extra keys; returns each stem as written.
fn render_stems(dir: &Path, seconds: f64, stems: &[(&str, &str)], extra: &[&str]) -> Vec<Vec<f32>> {
    let song = stems.iter().fold(
        Song::new("s").with(&format!("duration = {seconds}\nsample_rate = {RATE}")),
        |song, (name, keys)| song.file_stem(name, &format!("{name}.wav")).with(keys),
    );
    // Stem files are the truth here; the summed master may clip.
    let song = song.table("verify").with("max_clip_ratio = 1.0");
    std::fs::write(dir.join("m.toml"), song.to_string()).unwrap();
    let o = render(dir, "m.toml", "out", extra);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stems
        .iter()
        .map(|(name, _)| read_wav(&dir.join(format!("out/s/stems/{name}.wav"))).1)
        .collect()
}

/// The length of the audio before an all-zero tail: a zero-padded stem's
/// source length (its last frames, the end of a stretched sine, are not
/// zero).
fn sounding_len(x: &[f32]) -> usize {
    x.iter().rposition(|v| *v != 0.0).map_or(0, |i| i + 1)
}

#[test]
fn a_sine_stretched_126_to_120_keeps_its_pitch_level_and_exact_length() {
    let tmp = tempfile::tempdir().unwrap();
    let s = 4 * RATE as usize + 17;
    let src = sine(440.0, s);
    write_float_wav(&tmp.path().join("a.wav"), RATE, 1, &src);
    let keys = "source_bpm = 126.0\nalign = \"zero-pad\"\nrole = \"melodic\"";
    let out = render_stems(tmp.path(), 5.0, &[("a", keys)], &[]).remove(0);
    let want = (s as f64 * 126.0 / 120.0).round() as usize;
    assert_eq!(sounding_len(&out), want, "stretched length");
    // The report says what was done to the source, and its stretched length.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/s/report.json")).unwrap())
            .unwrap();
    let stem = &report["stems"][0];
    assert_eq!(stem["source_bpm"], 126.0, "{stem}");
    assert!(stem.get("transpose").is_none(), "{stem}");
    assert_eq!(stem["source_frames"], want as u64, "{stem}");
    assert!(
        rms(&out[want - 48..want]) > 0.05,
        "the stretch fades before its end"
    );
    let body = middle(&out[..want]);
    let f = peak_hz(body);
    assert!((f - 440.0).abs() <= 0.5, "pitch {f} Hz");
    let level = 20.0 * (rms(body) / rms(middle(&src))).log10();
    assert!(level.abs() <= 0.5, "level {level:+.3} dB");
    let thd = thd_n_db(body);
    println!("126 -> 120: {f:.3} Hz, level {level:+.3} dB, THD+N {thd:.1} dB");
    assert!(thd < -40.0, "THD+N {thd:.1} dB");
}

#[test]
fn transpose_shifts_pitch_by_semitones_and_keeps_the_length() {
    let tmp = tempfile::tempdir().unwrap();
    let s = 3 * RATE as usize + 5;
    write_float_wav(&tmp.path().join("up.wav"), RATE, 1, &sine(440.0, s));
    write_float_wav(&tmp.path().join("down.wav"), RATE, 1, &sine(440.0, s));
    let keys = |st: &str| format!("transpose = {st}\nalign = \"zero-pad\"\nrole = \"melodic\"");
    let (up_keys, down_keys) = (keys("2.0"), keys("-12.0"));
    let stems = [("up", up_keys.as_str()), ("down", down_keys.as_str())];
    let out = render_stems(tmp.path(), 4.0, &stems, &[]);
    for (x, want) in out.iter().zip([440.0 * 2f64.powf(2.0 / 12.0), 220.0]) {
        assert_eq!(sounding_len(x), s, "transposed length");
        let f = peak_hz(middle(&x[..s]));
        println!("transposed 440 Hz: {f:.3} Hz, want {want:.3}");
        assert!((f - want).abs() <= 0.5, "{f} Hz, want {want:.2}");
        let level = 20.0 * (rms(middle(&x[..s])) / (0.5 / 2f64.sqrt())).log10();
        assert!(level.abs() <= 0.5, "level {level:+.3} dB at {want:.2} Hz");
    }
    assert!((2f64.powf(2.0 / 12.0) * 440.0 - 493.88).abs() < 0.01);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/s/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["stems"][0]["transpose"], 2.0);
    assert_eq!(report["stems"][1]["transpose"], -12.0);
    assert!(report["stems"][0].get("source_bpm").is_none());
}

/// Clicks: a 2 ms Hann-windowed 3 kHz burst starting on each of `beats`
/// beats at `bpm`, its energy centred 48 frames after the beat.
fn clicks(bpm: f64, beats: usize, frames: usize) -> Vec<f32> {
    let mut x = vec![0.0f32; frames];
    for k in 0..beats {
        let at = (k as f64 * 60.0 / bpm * RATE as f64).round() as usize;
        for j in 0..96 {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * j as f64 / 96.0).cos();
            let v = 0.8 * w * (std::f64::consts::TAU * 3000.0 * j as f64 / RATE as f64).sin();
            if let Some(s) = x.get_mut(at + j) {
                *s = v as f32;
            }
        }
    }
    x
}

/// For each of `beats` beats at `bpm`: where the click's energy (1 ms
/// windows) peaks within ±100 ms of the beat, against beat + 48 frames;
/// returns the worst error in ms. Each click must keep most of its energy.
fn worst_click_ms(y: &[f32], bpm: f64, beats: usize) -> f64 {
    let click_energy: f64 = clicks(bpm, 1, 96).iter().map(|v| (*v as f64).powi(2)).sum();
    let energy = |i: usize| {
        y[i - 24..i + 24]
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
    };
    let mut worst = 0.0f64;
    for k in 0..beats {
        let want = (k as f64 * 60.0 / bpm * RATE as f64).round() as usize + 48;
        let range = want.saturating_sub(4800).max(24)..(want + 4800).min(y.len() - 24);
        let (e, at) = range
            .map(|i| (energy(i), i))
            .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
        assert!(e > 0.3 * click_energy, "click {k} lost: energy {e}");
        let ms = (at as f64 - want as f64) / RATE as f64 * 1000.0;
        worst = if ms.abs() > worst.abs() { ms } else { worst };
    }
    worst
}

#[test]
fn clicks_stretched_from_126_and_90_bpm_land_on_the_120_bpm_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let beats = 64 * 4;
    for bpm in [126.0, 90.0] {
        let frames = (beats as f64 * 60.0 / bpm * RATE as f64).round() as usize;
        let name = format!("c{bpm}.wav");
        write_float_wav(&tmp.path().join(name), RATE, 1, &clicks(bpm, beats, frames));
    }
    let (fast, slow) = (
        "source_bpm = 126.0\nalign = \"none\"",
        "source_bpm = 90.0\nalign = \"none\"",
    );
    let out = render_stems(tmp.path(), 128.0, &[("c126", fast), ("c90", slow)], &[]);
    for (x, bpm) in out.iter().zip([126, 90]) {
        assert_eq!(x.len(), 128 * RATE as usize);
        let worst = worst_click_ms(x, 120.0, beats);
        println!("{bpm} -> 120 BPM: worst click {worst:+.3} ms");
        assert!(
            worst.abs() <= 2.0,
            "{bpm} -> 120 BPM: a click {worst:+.2} ms off the grid"
        );
    }
}

#[test]
fn a_stretched_two_bar_loop_stays_on_the_grid_for_32_bars() {
    let tmp = tempfile::tempdir().unwrap();
    // Two bars at 126 BPM: 8 kicks, 3.81 s; stretched, exactly 2 bars (4 s)
    // at 120, so the grid loop repeats every 4 s.
    let s = (8.0 * 60.0 / 126.0 * RATE as f64).round() as usize;
    write_float_wav(&tmp.path().join("loop.wav"), RATE, 1, &clicks(126.0, 8, s));
    let keys = "source_bpm = 126.0\nrole = \"rhythmic\"\nalign = \"loop\"";
    let out = render_stems(tmp.path(), 64.0, &[("loop", keys)], &[]).remove(0);
    assert_eq!(out.len(), 64 * RATE as usize);
    let worst = worst_click_ms(&out, 120.0, 32 * 4);
    println!("stretched loop over 32 bars: worst kick {worst:+.3} ms");
    assert!(worst.abs() <= 2.0, "a kick {worst:+.2} ms off the grid");
}

#[test]
fn tempo_and_key_errors_are_manifest_errors_naming_the_key_and_range() {
    let cases = [
        (
            "source_bpm = 0.0",
            "key `source_bpm`: must be above 0, got 0",
        ),
        ("source_bpm = -126.0", "key `source_bpm`: must be above 0"),
        (
            "source_bpm = 250.0",
            "must be within 0.5 to 2.0 (source_bpm 60 to 240 at 120 BPM), got 250",
        ),
        ("source_bpm = 59.0", "must be within 0.5 to 2.0"),
        (
            "transpose = 24.5",
            "key `transpose`: must be between -24 and 24 semitones, got 24.5",
        ),
        (
            "transpose = -30",
            "key `transpose`: must be between -24 and 24",
        ),
    ];
    for (line, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let song = Song::new("s")
            .with("duration = 1")
            .stem("x", "{ type = \"tone\", freq = 440.0 }")
            .with(line);
        std::fs::write(tmp.path().join("m.toml"), song.to_string()).unwrap();
        let o = stemflow(tmp.path(), &["check", "m.toml"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{line}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        // Line 10 of the manifest holds the key.
        let at = "stemflow: m.toml:10: song \"s\" stem \"x\": ";
        assert!(err.starts_with(at), "{line}: {err}");
        assert!(err.contains(want), "{line}: {err:?} lacks {want:?}");
    }
}
