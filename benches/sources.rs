//! What recorded stems cost before any effect (issue 15): decoding FLAC
//! and WAV, resampling 44.1 → 48 kHz, the seeks a loop's seam makes, and
//! the true-peak meter on music-like audio. Frames per second; for
//! comparing versions on one machine.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stemflow::io::flac::FlacOut;
use stemflow::io::wav::WavOut;
use stemflow::plan::Dither;
use stemflow::source::{FileSource, Generated, Resampled, Signal, Source, open_file};
use stemflow::types::{Block, Frames, SampleFormat, StreamSpec};
use stemflow::verify::LoudnessMeter;

const BLOCK: usize = 4096;
const SECONDS: usize = 10;
const RATE: u32 = 44100;

/// A tone with vibrato and a slow swell over noise, different per
/// channel: decodes and compresses like music rather than like silence.
struct Music;

impl Signal for Music {
    fn render(&mut self, start: u64, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            let n = start + i as u64;
            let t = n as f64 / RATE as f64;
            let swell = 0.5 + 0.4 * (std::f64::consts::TAU * 0.5 * t).sin();
            let tone = (std::f64::consts::TAU * (220.0 * t + 0.3 * (5.0 * t).sin())).sin();
            let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let noise = (x >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            *o = (swell * (0.5 * tone + 0.1 * noise)) as f32;
        }
    }
}

/// Ten seconds of stereo music-like audio in one block.
fn music() -> Block {
    let frames = SECONDS * RATE as usize;
    let mut src = Generated::new(Music, Frames(frames as u64));
    let mut b = Block::new(2, frames);
    src.read(&mut b).unwrap();
    // Decorrelate the channels a little: right is the signal delayed.
    let copy = b.samples().to_vec();
    for (i, f) in b.samples_mut().chunks_exact_mut(2).enumerate().skip(7) {
        f[1] = copy[(i - 7) * 2];
    }
    b
}

fn write_fixtures(dir: &Path) {
    let audio = music();
    let spec = StreamSpec {
        sample_rate: RATE,
        channels: 2,
        format: SampleFormat::Pcm24,
    };
    let mut f = FlacOut::create(&dir.join("m.flac"), spec, Dither::None, 0).unwrap();
    f.write(&audio).unwrap();
    f.finish().unwrap();
    let mut w = WavOut::create(&dir.join("m.wav"), spec, Dither::None, 0).unwrap();
    w.write(&audio).unwrap();
    w.finish().unwrap();
}

fn drain(src: &mut dyn Source) {
    let mut b = Block::new(2, BLOCK);
    while src.read(&mut b).unwrap() > 0 {
        black_box(&b);
    }
}

fn decoding(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_fixtures(dir.path());
    let mut g = c.benchmark_group("decode");
    g.sample_size(20);
    g.throughput(Throughput::Elements((SECONDS * RATE as usize) as u64));
    for name in ["m.flac", "m.wav"] {
        let path = dir.path().join(name);
        g.bench_function(format!("{name}_24bit_stereo"), |b| {
            b.iter(|| drain(&mut FileSource::open(&path, 2).unwrap()))
        });
    }
    g.finish();

    // A loop's seam: the last 50 ms of the resampled file, then back to
    // the start (as the aligner reads it before playing the loop).
    let mut g = c.benchmark_group("seek");
    for name in ["m.flac", "m.wav"] {
        let path = dir.path().join(name);
        let mut src = open_file(&path, 48000, 2).unwrap();
        let len = src.len().0;
        let mut b = Block::new(2, 2400);
        g.bench_function(format!("{name}_seam_then_start"), |bench| {
            bench.iter(|| {
                src.seek(Frames(len - 2400)).unwrap();
                src.read(&mut b).unwrap();
                src.seek(Frames(0)).unwrap();
                src.read(&mut b).unwrap();
                black_box(&b);
            })
        });
        // The file alone, no resampler: eight scattered seeks, 1024
        // frames read at each (a WAV's seek is arithmetic, a FLAC's goes
        // by its seek index and decodes forward within a frame).
        let mut file = FileSource::open(&path, 2).unwrap();
        let len = file.len().0;
        let mut b = Block::new(2, 1024);
        g.bench_function(format!("{name}_direct_8_scattered"), |bench| {
            bench.iter(|| {
                for k in [7u64, 2, 5, 0, 6, 1, 4, 3] {
                    file.seek(Frames(k * (len - 1024) / 7)).unwrap();
                    file.read(&mut b).unwrap();
                    black_box(&b);
                }
            })
        });
    }
    g.finish();
}

/// Precomputed audio as a source, so the resampler is all that is timed.
struct Replay {
    audio: std::sync::Arc<Block>,
    pos: usize,
}

impl Source for Replay {
    fn len(&self) -> Frames {
        Frames(self.audio.frames() as u64)
    }
    fn seek(&mut self, pos: Frames) -> Result<(), stemflow::error::StageError> {
        self.pos = pos.0 as usize;
        Ok(())
    }
    fn read(&mut self, block: &mut Block) -> Result<usize, stemflow::error::StageError> {
        let n = (self.audio.frames() - self.pos).min(block.capacity());
        block.set_frames(n);
        block
            .samples_mut()
            .copy_from_slice(&self.audio.samples()[self.pos * 2..(self.pos + n) * 2]);
        self.pos += n;
        Ok(n)
    }
}

fn resampling(c: &mut Criterion) {
    let audio = std::sync::Arc::new(music());
    let mut g = c.benchmark_group("resample");
    g.sample_size(20);
    g.throughput(Throughput::Elements((SECONDS * RATE as usize) as u64));
    g.bench_function("44k1_to_48k_stereo", |b| {
        b.iter(|| {
            let src = Replay {
                audio: audio.clone(),
                pos: 0,
            };
            drain(&mut Resampled::new(Box::new(src), RATE, 48000, 2).unwrap())
        })
    });
    g.finish();
}

fn true_peak(c: &mut Criterion) {
    let audio = music();
    let mut g = c.benchmark_group("true_peak");
    g.throughput(Throughput::Elements(BLOCK as u64));
    let mut meter = LoudnessMeter::new(2, RATE);
    let blocks: Vec<Block> = audio
        .samples()
        .chunks_exact(BLOCK * 2)
        .map(|s| {
            let mut b = Block::new(2, BLOCK);
            b.samples_mut().copy_from_slice(s);
            b
        })
        .collect();
    let mut i = 0;
    g.bench_function("meter_music_stereo", |b| {
        b.iter(|| {
            meter.update(black_box(&blocks[i % blocks.len()]));
            i += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, decoding, resampling, true_peak);
criterion_main!(benches);
