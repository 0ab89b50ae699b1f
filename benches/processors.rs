//! Throughput of each processor on its own, in frames per second, and of a
//! short whole-song render. For comparing versions on one machine.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stemflow::align::{AlignSettings, Aligner};
use stemflow::effects::{BiquadCascade, Echo, EffectChain, Processor};
use stemflow::io::wav::WavOut;
use stemflow::mix::{MasterBus, Mixer, StemGain};
use stemflow::plan::{AlignMode, Clip, Dither, FilterKind, Wave};
use stemflow::source::{Drums, Generated, Noise, Signal, Source, Tone};
use stemflow::types::{Block, Frames, SampleFormat, StreamSpec};
use stemflow::verify::envelope::Envelope;
use stemflow::verify::{LoudnessMeter, StreamStats, TruePeakInterpolator};

const BLOCK: usize = 4096;
const RATE: u32 = 48000;

fn generators(c: &mut Criterion) {
    let mut g = c.benchmark_group("generator");
    g.throughput(Throughput::Elements(BLOCK as u64));
    let mut out = vec![0.0f32; BLOCK];
    let mut run = |name: &str, s: &mut dyn Signal| {
        let mut pos = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                s.render(pos, &mut out);
                pos += BLOCK as u64;
                black_box(&out);
            })
        });
    };
    run("tone_sine", &mut Tone::new(Wave::Sine, 110.0, 0.5, RATE));
    run(
        "tone_square",
        &mut Tone::new(Wave::Square, 110.0, 0.5, RATE),
    );
    run(
        "drums_hats",
        &mut Drums::new(120.0, RATE, &[0], 0.8, true, 1),
    );
    run("noise", &mut Noise { amp: 0.5, key: 1 });
    g.finish();
}

fn filters(c: &mut Criterion) {
    let mut g = c.benchmark_group("effect");
    g.throughput(Throughput::Elements(BLOCK as u64));
    let mut block = Block::new(1, BLOCK);
    for order in [2u8, 4, 6, 8] {
        let mut f = BiquadCascade::new(
            FilterKind::Lowpass {
                cutoff: 8000.0,
                order,
            },
            RATE,
            1,
        )
        .unwrap();
        g.bench_function(format!("lowpass_order{order}"), |b| {
            b.iter(|| f.process(black_box(&mut block)))
        });
    }
    // Stereo, as recorded stems are: both channels of an order-4 low-pass.
    let mut stereo = tone_block(2);
    let mut f = BiquadCascade::new(
        FilterKind::Lowpass {
            cutoff: 8000.0,
            order: 4,
        },
        RATE,
        2,
    )
    .unwrap();
    g.bench_function("lowpass_order4_stereo", |b| {
        b.iter(|| f.process(black_box(&mut stereo)))
    });
    let mut e = Echo::new(120.0, 0.4, 3, RATE, 1);
    g.bench_function("echo_3taps", |b| {
        b.iter(|| e.process(black_box(&mut block)))
    });
    let mut chain = EffectChain::new(&[], RATE, 1).unwrap();
    g.bench_function("empty_chain", |b| {
        b.iter(|| chain.process(black_box(&mut block)))
    });
    g.finish();
}

fn alignment(c: &mut Criterion) {
    let mut g = c.benchmark_group("align");
    // Ten seconds of output per pass: a one-second source repeated (ten
    // seams) or padded, a ten-second one copied, a twelve-second one cut.
    g.throughput(Throughput::Elements(10 * RATE as u64));
    for (mode, source_s) in [
        (AlignMode::Loop, 1),
        (AlignMode::Crossfade, 1),
        (AlignMode::Auto, 1),
        (AlignMode::ZeroPad, 1),
        (AlignMode::None, 10),
        (AlignMode::Truncate, 12),
    ] {
        g.bench_function(mode.name(), |b| {
            b.iter(|| {
                let src: Box<dyn Source> = Box::new(Generated::new(
                    Tone::new(Wave::Sine, 110.0, 0.5, RATE),
                    Frames(source_s * RATE as u64),
                ));
                let settings = AlignSettings {
                    mode,
                    rhythmic: true,
                    target: Frames(10 * RATE as u64),
                    sample_rate: RATE,
                    crossfade_ms: 50.0,
                    fade_ms: 10.0,
                    grid: None,
                };
                let mut a = Aligner::new(src, 1, BLOCK, settings).unwrap();
                let mut block = Block::new(1, BLOCK);
                while a.read(&mut block).unwrap() > 0 {
                    black_box(&block);
                }
            })
        });
    }
    g.finish();
}

/// A block of a 440 Hz tone at 0.5.
fn tone_block(channels: u16) -> Block {
    let mut block = Block::new(channels, BLOCK);
    for (i, f) in block.frames_mut().enumerate() {
        f.fill((0.5 * (i as f64 * 440.0 / RATE as f64 * std::f64::consts::TAU).sin()) as f32);
    }
    block
}

fn mixing(c: &mut Criterion) {
    let plan =
        stemflow::manifest::parse(stemflow::DEMO_MANIFEST, "demo", std::path::Path::new("."))
            .unwrap();
    let stems = &plan.songs[0].stems;
    let mut g = c.benchmark_group("mix");
    // Frames of master per second, from the demo's five stems.
    g.throughput(Throughput::Elements(BLOCK as u64));
    let stem = tone_block(1);
    let mut master = Block::new(1, BLOCK);
    let gains = stems.iter().map(|s| StemGain::new(s, 1)).collect();
    let mut mixer = Mixer::new(gains, Clip::Hard, BLOCK, 1);
    g.bench_function("mixer_5_stems", |b| {
        b.iter(|| {
            mixer.begin(BLOCK, 1);
            for i in 0..stems.len() {
                mixer.add(i, black_box(&stem));
            }
            mixer.finish(&mut master);
        })
    });
    let stem = tone_block(2);
    let mut master = Block::new(2, BLOCK);
    let gains = stems.iter().map(|s| StemGain::new(s, 2)).collect();
    let mut mixer = Mixer::new(gains, Clip::Hard, BLOCK, 2);
    g.bench_function("mixer_5_stems_stereo", |b| {
        b.iter(|| {
            mixer.begin(BLOCK, 2);
            for i in 0..stems.len() {
                mixer.add(i, black_box(&stem));
            }
            mixer.finish(&mut master);
        })
    });
    let spec = StreamSpec {
        sample_rate: RATE,
        channels: 2,
        format: SampleFormat::Float,
    };
    let mut bus = MasterBus::new(1.5, Some(-1.0), Clip::Hard, spec);
    let mut block = tone_block(2);
    g.bench_function("master_bus_limiter_stereo", |b| {
        b.iter(|| bus.process(black_box(&mut block)))
    });
    g.finish();
}

fn writers(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(BLOCK as u64));
    let dir = tempfile::tempdir().unwrap();
    let block = tone_block(1);
    let stereo = tone_block(2);
    for (name, format, dither) in [
        ("float", SampleFormat::Float, Dither::None),
        ("pcm24", SampleFormat::Pcm24, Dither::None),
        ("pcm16", SampleFormat::Pcm16, Dither::None),
        ("pcm16_tpdf_dither", SampleFormat::Pcm16, Dither::Tpdf),
        ("float_stereo", SampleFormat::Float, Dither::None),
    ] {
        let channels = if name.ends_with("stereo") { 2 } else { 1 };
        let block = if channels == 2 { &stereo } else { &block };
        let spec = StreamSpec {
            sample_rate: RATE,
            channels,
            format,
        };
        // A fresh file every 1024 blocks keeps the disk use bounded.
        let path = dir.path().join(format!("{name}.wav"));
        let mut writer = WavOut::create(&path, spec, dither, 1).unwrap();
        let mut blocks = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                writer.write(black_box(block)).unwrap();
                blocks += 1;
                if blocks % 1024 == 0 {
                    writer = WavOut::create(&path, spec, dither, 1).unwrap();
                }
            })
        });
    }
    g.finish();
}

/// Deinterleaving one channel of a block into f64, as the filters and the
/// loudness meter do.
fn deinterleave(c: &mut Criterion) {
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Elements(BLOCK as u64));
    let stereo = tone_block(2);
    let mut out: Vec<f64> = Vec::with_capacity(BLOCK);
    g.bench_function("channel_into_stereo_f64", |b| {
        b.iter(|| {
            for ch in 0..2 {
                out.clear();
                black_box(&stereo).channel_into(ch, &mut out, f64::from);
                black_box(&out);
            }
        })
    });
    g.finish();
}

fn measuring(c: &mut Criterion) {
    let mut g = c.benchmark_group("measure");
    g.throughput(Throughput::Elements(BLOCK as u64));
    let mono = tone_block(1);
    let stereo = tone_block(2);
    let mut stats = StreamStats::default();
    g.bench_function("stats", |b| b.iter(|| stats.update(black_box(&mono))));
    let mut envelope = Envelope::new(u64::MAX / 2);
    g.bench_function("envelope", |b| b.iter(|| envelope.update(black_box(&mono))));
    let mut meter = LoudnessMeter::new(1, RATE);
    g.bench_function("loudness_true_peak_mono", |b| {
        b.iter(|| meter.update(black_box(&mono)))
    });
    let mut meter = LoudnessMeter::new(2, RATE);
    g.bench_function("loudness_true_peak_stereo", |b| {
        b.iter(|| meter.update(black_box(&stereo)))
    });
    g.finish();
    true_peak(c);
}

/// The true-peak detector alone, every stretch computed (as the limiter
/// runs it; the meter may skip quiet stretches), on full-band noise.
fn true_peak(c: &mut Criterion) {
    let mut g = c.benchmark_group("true_peak");
    g.throughput(Throughput::Elements(BLOCK as u64));
    let history = TruePeakInterpolator::HISTORY;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let line: Vec<f32> = (0..history + BLOCK)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let mut detector = TruePeakInterpolator::new();
    let mut out = vec![0.0f32; BLOCK];
    for channels in [1, 2] {
        let name = if channels == 1 {
            "detector_mono"
        } else {
            "detector_stereo"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..channels {
                    detector.stretch_peaks(black_box(&line), history, line.len(), &mut out);
                }
                black_box(&out);
            })
        });
    }
    g.finish();
}

/// Ten seconds of stereo audio shaped like the recorded-stems workload's
/// stems (benches/recorded.sh): a tone (a fifth higher on the right) over
/// pink-ish noise, swelling and trembling, peak near −30 dBFS.
fn recorded_like() -> Vec<Block> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut pink = [0.0f64; 2];
    let frames = 10 * RATE as usize;
    let samples: Vec<f32> = (0..frames)
        .flat_map(|n| {
            let t = n as f64 / RATE as f64;
            let tau = std::f64::consts::TAU;
            // A slow swell (sox `amod`) and a 30 % tremolo, as recorded.sh.
            let swell =
                (0.5 + 0.5 * (tau * 0.5 * t).sin()) * (1.0 - 0.15 * (1.0 + (tau * 3.7 * t).sin()));
            [(0, 220.0), (1, 330.0)].map(|(c, f)| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let white = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                pink[c] = 0.98 * pink[c] + 0.1 * white;
                let tone = (tau * f * t).sin();
                (0.02 * swell * (tone + pink[c])) as f32
            })
        })
        .collect();
    samples
        .chunks_exact(BLOCK * 2)
        .map(|s| {
            let mut b = Block::new(2, BLOCK);
            b.samples_mut().copy_from_slice(s);
            b
        })
        .collect()
}

/// The meters on recorded-like stereo: with and without the true peak
/// (their difference is its cost), and the limiter's detector asking for
/// peaks over a ceiling the audio stays under.
fn true_peak_recorded(c: &mut Criterion) {
    let blocks = recorded_like();
    let mut g = c.benchmark_group("true_peak");
    g.throughput(Throughput::Elements(BLOCK as u64));
    for (name, mut meter) in [
        ("meter_recorded_stereo", LoudnessMeter::new(2, RATE)),
        (
            "loudness_only_recorded_stereo",
            LoudnessMeter::without_true_peak(2, RATE),
        ),
    ] {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                meter.update(black_box(&blocks[i % blocks.len()]));
                i += 1;
            })
        });
    }
    let history = TruePeakInterpolator::HISTORY;
    let lines: Vec<Vec<f32>> = blocks
        .iter()
        .map(|b| {
            let mut line = vec![0.0f32; history];
            line.extend(b.samples().iter().step_by(2));
            line
        })
        .collect();
    let mut detector = TruePeakInterpolator::new();
    let mut out = vec![0.0f32; BLOCK];
    let mut i = 0;
    g.bench_function("peaks_over_ceiling_recorded_mono", |b| {
        b.iter(|| {
            let line = &lines[i % lines.len()];
            detector.peaks_over(black_box(line), history, line.len(), 0.05, &mut out);
            i += 1;
            black_box(&out);
        })
    });
    g.finish();
}

fn demo_render(c: &mut Criterion) {
    let plan =
        stemflow::manifest::parse(stemflow::DEMO_MANIFEST, "demo", std::path::Path::new("."))
            .unwrap();
    // The demo shortened to 10 s so a sample takes well under a second.
    let mut song = plan.songs[0].clone();
    song.duration = Some(10.0);
    for s in &mut song.stems {
        if let stemflow::plan::SourceSpec::Tone { length, .. }
        | stemflow::plan::SourceSpec::Drums { length, .. } = &mut s.source
        {
            *length = length.map(|l| l / 137.0 * 10.0);
        }
    }
    song.timing = stemflow::timing::Timing::new(120.0, RATE, &[]);
    let dir = tempfile::tempdir().unwrap();
    let interrupt = std::sync::atomic::AtomicBool::new(false);
    let mut g = c.benchmark_group("render");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10 * RATE as u64));
    g.bench_function("demo_10s_no_archive", |b| {
        b.iter(|| {
            stemflow::pipeline::render_song(
                &song,
                dir.path(),
                stemflow::pipeline::RenderOptions {
                    block_size: BLOCK,
                    threads: 2,
                },
                &interrupt,
                &|_| {},
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    generators,
    filters,
    alignment,
    mixing,
    writers,
    deinterleave,
    measuring,
    true_peak_recorded,
    demo_render
);
criterion_main!(benches);
