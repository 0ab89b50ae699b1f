//! Throughput of the tempo-and-key stage (SPEC §9) on its own: a saw tone
//! stretched from 126 to 120 BPM, transposed +2 semitones, and both, read
//! in 4096-frame blocks. Throughput is in source frames, so frames per
//! second / 48000 is the × realtime figure per mono stem.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stemflow::plan::Wave;
use stemflow::source::{Generated, Tone, fit};
use stemflow::types::{Block, Frames};

const RATE: u32 = 48_000;
const SECONDS: u64 = 10;

fn stretch(c: &mut Criterion) {
    let mut g = c.benchmark_group("stretch");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SECONDS * RATE as u64));
    let cases = [
        ("tempo_126_to_120", Some(126.0 / 120.0), 0.0),
        ("transpose_up_2", None, 2.0),
        ("tempo_and_transpose", Some(126.0 / 120.0), 2.0),
    ];
    for (name, ratio, semitones) in cases {
        g.bench_function(name, |b| {
            let mut block = Block::new(1, 4096);
            b.iter(|| {
                let tone = Tone::new(Wave::Saw, 110.0, 0.5, RATE);
                let src = Box::new(Generated::new(tone, Frames(SECONDS * RATE as u64)));
                let mut s = fit(src, ratio, semitones, RATE, 1).unwrap();
                while s.read(&mut block).unwrap() > 0 {
                    black_box(block.samples());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, stretch);
criterion_main!(benches);
