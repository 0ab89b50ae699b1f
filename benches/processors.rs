//! Throughput of each processor on its own, in frames per second, and of a
//! short whole-song render. For comparing versions on one machine.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stemflow::align::{AlignSettings, Aligner};
use stemflow::effects::{BiquadCascade, Echo, EffectChain, Processor};
use stemflow::plan::{AlignMode, FilterKind, Wave};
use stemflow::source::{Drums, Generated, Noise, Signal, Source, Tone};
use stemflow::types::{Block, Frames};

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
    // A one-second source looped to ten seconds: ten seams per pass.
    g.throughput(Throughput::Elements(10 * RATE as u64));
    for mode in [AlignMode::Loop, AlignMode::Crossfade, AlignMode::ZeroPad] {
        g.bench_function(mode.name(), |b| {
            b.iter(|| {
                let src: Box<dyn Source> = Box::new(Generated::new(
                    Tone::new(Wave::Sine, 110.0, 0.5, RATE),
                    Frames(RATE as u64),
                ));
                let settings = AlignSettings {
                    mode,
                    rhythmic: true,
                    target: Frames(10 * RATE as u64),
                    sample_rate: RATE,
                    crossfade_ms: 50.0,
                    fade_ms: 10.0,
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

fn demo_render(c: &mut Criterion) {
    let plan =
        stemflow::manifest::parse(stemflow::DEMO_MANIFEST, "demo", std::path::Path::new("."))
            .unwrap();
    // The demo shortened to 10 s so a sample takes well under a second.
    let mut song = plan.songs[0].clone();
    song.duration = 10.0;
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

criterion_group!(benches, generators, filters, alignment, demo_render);
criterion_main!(benches);
