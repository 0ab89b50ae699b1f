//! True peak that can be trusted (SPEC §10): the meter's reported true
//! peak and the limiter's ceiling, both held to an independent measurement
//! computed here — the signal reconstructed 16× oversampled by a long
//! Kaiser-windowed sinc (±64 input samples, β = 10, cutoff fs/2), in f64 —
//! on the material that defeats short interpolators: full-band white and
//! pink noise, a 0.45·fs tone sampled 45° off its crests, and clipped
//! square waves, at 44.1 and 48 kHz.
//!
//! The reference is deliberately not the `ebur128` crate: that crate (like
//! libebur128) interpolates with a 49-tap 4× filter that loses up to
//! 0.44 dB at 0.4·fs, so full-band material reads low on it by the very
//! error this meter was rebuilt to remove.
//!
//! `cargo test --release truepeak -- --nocapture` prints the errors.

use std::f64::consts::PI;

use stemflow::mix::{CompensatedBus, MasterBus};
use stemflow::plan::Clip;
use stemflow::types::{Block, Frames, SampleFormat, StreamSpec};
use stemflow::verify::LoudnessMeter;

use crate::util::{Rng, Song, read_wav, stderr, stemflow, write_float_wav};

/// Oversampling of the reference.
const REF_FACTOR: usize = 16;
/// Input samples each side of a reference point.
const REF_HALF: usize = 64;
/// The reference's Kaiser β (sidelobes near −74 dB).
const REF_BETA: f64 = 10.0;
/// How far the meter may be from the reference, dB (SPEC §10).
const TOLERANCE_DB: f64 = 0.15;

/// I₀, the modified Bessel function of order 0, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-17 {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        k += 1.0;
    }
    sum
}

/// The reference true peak of one channel, linear: every point at
/// n + p/16 between the samples (silence beyond both ends) reconstructed
/// by the windowed sinc, largest |value|.
fn reference_peak(x: &[f64]) -> f64 {
    let taps = 2 * REF_HALF;
    // kernel[p][k]: weight of x[n − REF_HALF + 1 + k] at n + p/16.
    let kernel: Vec<Vec<f64>> = (0..REF_FACTOR)
        .map(|p| {
            (0..taps)
                .map(|k| {
                    let d = k as f64 - (REF_HALF as f64 - 1.0) - p as f64 / REF_FACTOR as f64;
                    let sinc = if d == 0.0 {
                        1.0
                    } else {
                        (PI * d).sin() / (PI * d)
                    };
                    let r = d / REF_HALF as f64;
                    let w =
                        bessel_i0(REF_BETA * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(REF_BETA);
                    sinc * w
                })
                .collect()
        })
        .collect();
    let mut padded = vec![0.0; taps];
    padded.extend_from_slice(x);
    padded.extend(std::iter::repeat_n(0.0, taps));
    let mut peak = 0.0f64;
    for n in REF_HALF..padded.len() - REF_HALF {
        let window = &padded[n + 1 - REF_HALF..n + 1 + REF_HALF];
        for k in &kernel {
            let y: f64 = k.iter().zip(window).map(|(a, b)| a * b).sum();
            peak = peak.max(y.abs());
        }
    }
    peak
}

/// The reference true peak of interleaved audio, dBTP.
pub(crate) fn reference_db(samples: &[f32], channels: usize) -> f64 {
    let peak = (0..channels)
        .map(|c| {
            let x: Vec<f64> = samples[c..]
                .iter()
                .step_by(channels)
                .map(|&v| v as f64)
                .collect();
            reference_peak(&x)
        })
        .fold(0.0, f64::max);
    20.0 * peak.log10()
}

/// The test signals, `frames` long at `rate`, mono, sample peak `peak`,
/// with 256-sample raised-cosine fades so the edges add no peaks of
/// their own.
fn signals(rate: u32, frames: usize, peak: f64) -> Vec<(&'static str, Vec<f64>)> {
    let mut rng = Rng(rate as u64);
    let white: Vec<f64> = (0..frames).map(|_| 2.0 * rng.unit() - 1.0).collect();
    // Paul Kellet's pink filter over fresh white noise.
    let mut b = [0.0f64; 7];
    let pink: Vec<f64> = (0..frames)
        .map(|_| {
            let w = 2.0 * rng.unit() - 1.0;
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.1538520;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            let v = b[..6].iter().sum::<f64>() + b[6] + w * 0.5362;
            b[6] = w * 0.115926;
            v
        })
        .collect();
    let tone: Vec<f64> = (0..frames)
        .map(|n| (2.0 * PI * 0.45 * n as f64 + PI / 4.0).sin())
        .collect();
    // A naive square (every harmonic aliased: steps between samples) and
    // a sine driven eight times into a hard clip.
    let period = rate as f64 / 1001.0;
    let square: Vec<f64> = (0..frames)
        .map(|n| {
            if (n as f64 / period).fract() < 0.5 {
                1.0
            } else {
                -1.0
            }
        })
        .collect();
    let clipped: Vec<f64> = (0..frames)
        .map(|n| (8.0 * (2.0 * PI * 441.7 * n as f64 / rate as f64).sin()).clamp(-1.0, 1.0))
        .collect();
    let fade = 256usize;
    [
        ("white noise", white),
        ("pink noise", pink),
        ("0.45 fs tone, 45°", tone),
        ("square 1001 Hz", square),
        ("clipped sine", clipped),
    ]
    .into_iter()
    .map(|(name, x)| {
        let top = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let x = x
            .iter()
            .enumerate()
            .map(|(n, v)| {
                let edge = n.min(frames - 1 - n);
                let g = if edge < fade {
                    0.5 - 0.5 * (PI * edge as f64 / fade as f64).cos()
                } else {
                    1.0
                };
                v * g * peak / top
            })
            .collect();
        (name, x)
    })
    .collect()
}

/// Interleaves mono signals: channel c is `x` delayed by c·37 frames and
/// scaled by 1 − c/4, so the channels differ.
fn interleave(x: &[f64], channels: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len() * channels);
    for n in 0..x.len() {
        for c in 0..channels {
            let v = if n >= 37 * c { x[n - 37 * c] } else { 0.0 };
            out.push((v * (1.0 - c as f64 / 4.0)) as f32);
        }
    }
    out
}

/// The meter's reported true peak of interleaved audio fed in `block`s.
fn metered_db(samples: &[f32], channels: u16, rate: u32, block: usize) -> f64 {
    let mut meter = LoudnessMeter::new(channels, rate);
    for chunk in samples.chunks(block * channels as usize) {
        let mut b = Block::new(channels, chunk.len() / channels as usize);
        b.samples_mut().copy_from_slice(chunk);
        meter.update(&b);
    }
    meter.loudness().true_peak_db.expect("not silent")
}

#[test]
fn the_meter_reads_within_0_15_db_of_16x_oversampling() {
    let mut failures = Vec::new();
    for rate in [44100u32, 48000] {
        for (name, x) in signals(rate, rate as usize / 2, 0.5) {
            for channels in [1u16, 2] {
                let samples = interleave(&x, channels as usize);
                let truth = reference_db(&samples, channels as usize);
                let ours = metered_db(&samples, channels, rate, 1000);
                let sample_peak =
                    20.0 * (samples.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64).log10();
                let line = format!(
                    "{rate} Hz {channels} ch {name:>18}: sample {sample_peak:+.2}, \
                     16x {truth:+.3}, meter {ours:+.2} dBTP, error {:+.3} dB",
                    ours - truth
                );
                eprintln!("{line}");
                if (ours - truth).abs() > TOLERANCE_DB {
                    failures.push(line);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Runs `samples` (interleaved) through the master bus limiting at
/// `ceiling_db` with its latency compensated, in blocks of `block`.
fn limited(samples: &[f32], channels: u16, rate: u32, ceiling_db: f64, block: usize) -> Vec<f32> {
    let spec = StreamSpec {
        sample_rate: rate,
        channels,
        format: SampleFormat::Float,
    };
    let ch = channels as usize;
    let bus = MasterBus::new(1.0, Some(ceiling_db), Clip::None, spec);
    let mut bus = CompensatedBus::new(bus, Frames((samples.len() / ch) as u64));
    let (mut b, mut fed, mut out) = (Block::new(channels, block), 0, Vec::new());
    while !bus.done() {
        let n = bus.input_frames(block);
        b.set_frames(n);
        b.samples_mut()[..n * ch].copy_from_slice(&samples[fed..fed + n * ch]);
        fed += n * ch;
        bus.process(&mut b);
        out.extend_from_slice(b.samples());
    }
    out
}

/// Σ out[i]·input[i + lag] over the first channel.
fn correlation(out: &[f32], input: &[f32], channels: usize, lag: isize) -> f64 {
    (0..out.len() / channels)
        .filter_map(|i| {
            let j = i as isize + lag;
            (j >= 0 && (j as usize) < input.len() / channels)
                .then(|| out[i * channels] as f64 * input[j as usize * channels] as f64)
        })
        .sum()
}

#[test]
fn the_limiter_holds_minus_1_dbtp_by_16x_oversampling_in_time() {
    let mut failures = Vec::new();
    for rate in [44100u32, 48000] {
        // Sample peaks at +3 dBFS: every signal needs 4 dB or more off.
        for (name, x) in signals(rate, rate as usize / 2, 1.41) {
            let channels = 2u16;
            let input = interleave(&x, 2);
            let out = limited(&input, channels, rate, -1.0, 4096);
            assert_eq!(out.len(), input.len(), "{rate} Hz {name}: exactly T frames");
            let truth = reference_db(&out, 2);
            // No time shift: the output lines up with the input best at
            // lag 0 of all lags within ±8 frames (the 0.45·fs tone repeats
            // every 20, so a wider search would find its twin lags).
            let best = (-8isize..=8)
                .max_by(|&a, &b| {
                    let (ca, cb) = (
                        correlation(&out, &input, 2, a),
                        correlation(&out, &input, 2, b),
                    );
                    ca.total_cmp(&cb)
                })
                .unwrap();
            let line =
                format!("{rate} Hz {name:>18}: limited to {truth:+.3} dBTP (16x), lag {best}");
            eprintln!("{line}");
            if truth > -1.0 || best != 0 {
                failures.push(line);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_limiter_and_meter_give_the_same_bytes_for_any_block_size() {
    let rate = 44100;
    let (_, x) = signals(rate, 20_000, 1.41).swap_remove(0);
    let input = interleave(&x, 2);
    let whole = limited(&input, 2, rate, -1.0, 4096);
    let tp = metered_db(&input, 2, rate, 4096);
    for block in [1, 64, 1000] {
        assert!(
            limited(&input, 2, rate, -1.0, block) == whole,
            "limiter, block {block}"
        );
        assert_eq!(
            metered_db(&input, 2, rate, block),
            tp,
            "meter, block {block}"
        );
    }
}

#[test]
fn a_rendered_full_band_master_holds_its_ceiling_and_reports_it() {
    // End to end: white noise from a file, normalised hot and limited at
    // −1 dBTP; the written master and the report's figure both measured
    // against the reference.
    let tmp = tempfile::tempdir().unwrap();
    let rate = 44100;
    let (_, x) = signals(rate, rate as usize, 0.5).swap_remove(0);
    let input = interleave(&x, 2);
    write_float_wav(&tmp.path().join("noise.wav"), rate, 2, &input);
    let song = Song::new("n")
        .with(&format!(
            "duration = 1.0\nsample_rate = {rate}\nchannels = 2\nformat = \"float\"\narchive = \"\""
        ))
        .table("master")
        .with("normalize_lufs = -6.0\nlimit_true_peak_db = -1.0")
        .file_stem("noise", "noise.wav");
    std::fs::write(tmp.path().join("m.toml"), song.to_string()).unwrap();
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, master) = read_wav(&tmp.path().join("out/n/master.wav"));
    assert_eq!(master.len(), input.len());
    let truth = reference_db(&master, 2);
    assert!(
        truth <= -1.0,
        "master at {truth:.3} dBTP by 16x oversampling"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/n/report.json")).unwrap())
            .unwrap();
    let reported = report["master"]["true_peak_db"]
        .as_f64()
        .unwrap_or_else(|| panic!("no master true peak in {report}"));
    assert!(
        (reported - truth).abs() <= TOLERANCE_DB,
        "report {reported} vs 16x {truth:.3}"
    );
}
