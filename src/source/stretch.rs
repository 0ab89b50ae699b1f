//! Tempo and key of a source (SPEC §9): a 126-BPM loop fitted to a 120-BPM
//! song, a vocal a whole tone up, before alignment.
//!
//! The stretcher is Signalsmith Stretch (MIT, through the `ssstretch`
//! bindings). It was chosen over Rubber Band (GPL, so not shippable in an
//! MIT/Apache crate, and 8× slower here), the `signalsmith-stretch` crate
//! (needs libclang to build, and seeds its phase randomiser from the OS, so
//! renders would differ run to run) and the pure-Rust `timestretch` (its
//! first click landed 100 ms off); the figures are in the commit that added
//! the crate.
//!
//! Exactness is ours, not the library's: the engine is fed fixed chunks of
//! [`CHUNK`] input frames, each asked for the output frames that keep the
//! running ratio exact, so a source of S frames becomes exactly T frames
//! whatever block size reads it. Its latency is compensated the way the
//! library's own whole-buffer `exact()` does, but streaming: the first
//! `input_latency` frames are given as pre-roll and the first
//! `output_latency` output frames are dropped (folded back onto the next
//! ones), so the source's first onset stays at frame 0; past the source's
//! end the engine is fed silence at the same ratio until the last frame is
//! out. (The library's `flush` would give those last frames too, but only
//! for a source longer than twice the latency: a 10 ms hit would come out
//! silent.)
//! Pitch shifts go through `Varispeed` first (see there for why); the
//! stretcher then only stretches time.

use super::Source;
use crate::error::StageError;
use crate::types::{Block, Frames};

/// Input frames per engine call: fixed, so output bytes never depend on
/// the caller's block size.
const CHUNK: usize = 1024;

/// Seed of the engine's phase randomiser (used past 2× stretch): fixed, so
/// the same manifest renders the same bytes.
const SEED: i64 = 0x5EED;

/// Most channels the engine is driven with.
const MAX_CHANNELS: usize = 8;

/// Signalsmith Stretch with its buffers as planar channels.
struct Engine {
    st: ssstretch::Stretch,
    channels: usize,
}

// SAFETY: the engine is a plain C++ object with no thread affinity and no
// shared state; it is owned by one `Engine` and only used through `&mut`.
unsafe impl Send for Engine {}

impl Engine {
    /// A fresh engine with the library's default preset at `rate`.
    fn new(channels: usize, rate: u32) -> Engine {
        let mut st = ssstretch::Stretch::with_seed(SEED);
        st.preset_default(channels as i32, rate as f32);
        Engine { st, channels }
    }

    /// (input latency, output latency) in frames.
    fn latencies(&self) -> (usize, usize) {
        let clamp = |v: i32| v.max(0) as usize;
        (
            clamp(self.st.input_latency()),
            clamp(self.st.output_latency()),
        )
    }

    /// Gives `frames` frames of pre-roll; `rate` is input per output frame.
    fn preroll(&mut self, input: &[Vec<f32>], frames: usize, rate: f64) {
        let ptrs = self.inputs(input, frames);
        // SAFETY: `ptrs` holds `channels` pointers to buffers of at least
        // `frames` samples (checked in `inputs`).
        unsafe { self.st.seek(&ptrs[..self.channels], frames as i32, rate) }
    }

    /// Stretches `ni` input frames into exactly `no` output frames.
    fn process(&mut self, input: &[Vec<f32>], ni: usize, output: &mut [Vec<f32>], no: usize) {
        let ins = self.inputs(input, ni);
        let mut outs = self.outputs(output, no);
        // SAFETY: `ins` and `outs` hold `channels` pointers to buffers of at
        // least `ni` and `no` samples (checked in `inputs`/`outputs`).
        unsafe {
            let ch = self.channels;
            self.st
                .process(&ins[..ch], ni as i32, &mut outs[..ch], no as i32)
        }
    }

    fn inputs(&self, bufs: &[Vec<f32>], frames: usize) -> [*const f32; MAX_CHANNELS] {
        let mut p = [std::ptr::null(); MAX_CHANNELS];
        for (p, b) in p.iter_mut().zip(&bufs[..self.channels]) {
            assert!(b.len() >= frames, "engine input buffer too short");
            *p = b.as_ptr();
        }
        p
    }

    fn outputs(&self, bufs: &mut [Vec<f32>], frames: usize) -> [*mut f32; MAX_CHANNELS] {
        let mut p = [std::ptr::null_mut(); MAX_CHANNELS];
        for (p, b) in p.iter_mut().zip(&mut bufs[..self.channels]) {
            assert!(b.len() >= frames, "engine output buffer too short");
            *p = b.as_mut_ptr();
        }
        p
    }
}

/// A source stretched in time to exactly `len` frames, pitch kept.
pub struct Stretched {
    inner: Box<dyn Source>,
    engine: Engine,
    rate: u32,
    channels: usize,
    /// Frames of `inner` (S) and of the result (T).
    in_len: u64,
    len: Frames,
    /// Engine latencies: pre-roll input frames, dropped output frames.
    lat_in: usize,
    lat_out: usize,
    /// Next chunk to process; raw output frames made so far.
    chunk: u64,
    made: u64,
    read_buf: Block,
    preroll: Block,
    planar_in: Vec<Vec<f32>>,
    planar_out: Vec<Vec<f32>>,
    /// The first `lat_out` raw output frames, folded back onto the next.
    head: Vec<f32>,
    /// Deliverable frames (interleaved) and the read position in them.
    output: Vec<f32>,
    out_pos: usize,
    out_len: usize,
    /// Next frame `read` delivers.
    pos: u64,
}

impl Stretched {
    /// `inner` stretched to exactly `len` frames at sample rate `rate`.
    pub fn new(
        inner: Box<dyn Source>,
        len: Frames,
        rate: u32,
        channels: u16,
    ) -> Result<Stretched, StageError> {
        let ch = channels as usize;
        if ch == 0 || ch > MAX_CHANNELS {
            let what = format!("cannot stretch {ch} channels (at most {MAX_CHANNELS})");
            return Err(StageError::Invalid(what));
        }
        let engine = Engine::new(ch, rate);
        let (lat_in, lat_out) = engine.latencies();
        let in_len = inner.len().0;
        let per_chunk = (CHUNK as u64 * len.0).div_ceil(in_len.max(1)) as usize + 1;
        let mut s = Stretched {
            inner,
            engine,
            rate,
            channels: ch,
            in_len,
            len,
            lat_in,
            lat_out,
            chunk: 0,
            made: 0,
            read_buf: Block::new(channels, CHUNK),
            preroll: Block::new(channels, lat_in.max(1)),
            planar_in: vec![vec![0.0; CHUNK.max(lat_in)]; ch],
            planar_out: vec![vec![0.0; per_chunk]; ch],
            head: vec![0.0; lat_out * ch],
            output: vec![0.0; per_chunk * ch],
            out_pos: 0,
            out_len: 0,
            pos: 0,
        };
        s.start()?;
        Ok(s)
    }

    /// Raw output frames due once `input` input frames are in: the running
    /// ratio T / S, rounded, so exactly T are due at the source's end.
    fn due(&self, input: u64) -> u64 {
        let (a, t, s) = (
            input as u128,
            self.len.0 as u128,
            self.in_len.max(1) as u128,
        );
        ((2 * a * t + s) / (2 * s)) as u64
    }

    /// Positions a fresh engine at the source's frame 0: the first
    /// `lat_in` frames go in as pre-roll, centring the analysis there.
    fn start(&mut self) -> Result<(), StageError> {
        let got = match self.lat_in {
            0 => 0,
            _ => read_full(self.inner.as_mut(), &mut self.preroll)?,
        };
        let ch = self.channels;
        for (c, plane) in self.planar_in.iter_mut().enumerate() {
            plane[..self.lat_in].fill(0.0);
            for (i, v) in plane[..got].iter_mut().enumerate() {
                *v = self.preroll.samples()[i * ch + c];
            }
        }
        let rate = self.in_len.max(1) as f64 / self.len.0.max(1) as f64;
        self.engine.preroll(&self.planar_in, self.lat_in, rate);
        Ok(())
    }

    /// Restarts from frame 0 with a fresh engine (same seed, same bytes).
    fn restart(&mut self) -> Result<(), StageError> {
        self.inner.seek(Frames(0))?;
        self.engine = Engine::new(self.channels, self.rate);
        (self.chunk, self.made) = (0, 0);
        (self.out_pos, self.out_len, self.pos) = (0, 0, 0);
        self.start()
    }

    /// Makes the next deliverable frames: one chunk through the engine
    /// (silence past the source's end, at the same ratio), until the
    /// output latency and all T frames are out; then (never read) silence.
    fn refill(&mut self) -> Result<(), StageError> {
        (self.out_pos, self.out_len) = (0, 0);
        if self.made >= self.len.0 + self.lat_out as u64 {
            self.output.fill(0.0);
            self.out_len = self.output.len() / self.channels;
            return Ok(());
        }
        let first = self.chunk * CHUNK as u64;
        let ni = match self.in_len.checked_sub(first) {
            Some(left) if left > 0 => left.min(CHUNK as u64) as usize,
            _ => CHUNK,
        };
        let got = read_full(self.inner.as_mut(), &mut self.read_buf)?;
        deinterleave(&self.read_buf, got, &mut self.planar_in, ni);
        let no = (self.due(first + ni as u64) - self.due(first)) as usize;
        self.engine
            .process(&self.planar_in, ni, &mut self.planar_out, no);
        self.chunk += 1;
        self.emit(no);
        Ok(())
    }

    /// Takes `no` raw output frames: the first `lat_out` of the stream are
    /// kept back and subtracted, mirrored, from the next `lat_out` (the
    /// library's fold, which cancels the pre-roll's edge); the rest are
    /// delivered.
    fn emit(&mut self, no: usize) {
        let (ch, l) = (self.channels, self.lat_out as u64);
        for i in 0..no {
            let j = self.made + i as u64;
            if j < l {
                for c in 0..ch {
                    self.head[j as usize * ch + c] = self.planar_out[c][i];
                }
                continue;
            }
            let o = self.out_len * ch;
            for c in 0..ch {
                let mut v = self.planar_out[c][i];
                if j < 2 * l {
                    v -= self.head[(2 * l - 1 - j) as usize * ch + c];
                }
                self.output[o + c] = v;
            }
            self.out_len += 1;
        }
        self.made += no as u64;
    }

    /// Delivers the next `want` frames into `dst`, or skips them when
    /// `dst` is `None`.
    fn advance(&mut self, mut dst: Option<&mut [f32]>, want: usize) -> Result<(), StageError> {
        let ch = self.channels;
        let mut done = 0;
        while done < want {
            if self.out_pos == self.out_len {
                self.refill()?;
                continue;
            }
            let n = (self.out_len - self.out_pos).min(want - done);
            if let Some(dst) = dst.as_deref_mut() {
                dst[done * ch..(done + n) * ch]
                    .copy_from_slice(&self.output[self.out_pos * ch..(self.out_pos + n) * ch]);
            }
            self.out_pos += n;
            done += n;
            self.pos += n as u64;
        }
        Ok(())
    }
}

impl Source for Stretched {
    fn len(&self) -> Frames {
        self.len
    }

    /// Restarts from the beginning and skips: exact, since the engine's
    /// output depends on everything before it.
    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        let pos = pos.0.min(self.len.0);
        if pos < self.pos {
            self.restart()?;
        }
        self.advance(None, (pos - self.pos) as usize)
    }

    fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let want = (self.len.0 - self.pos).min(block.capacity() as u64) as usize;
        block.set_frames(want);
        self.advance(Some(block.samples_mut()), want)?;
        Ok(want)
    }

    fn cost(&self) -> f32 {
        self.inner.cost() + super::cost::STRETCH
    }
}

/// Fills `block` to capacity from `src` (silence past its end); returns the
/// frames the source gave.
fn read_full(src: &mut dyn Source, block: &mut Block) -> Result<usize, StageError> {
    let got = src.read(block)?;
    let cap = block.capacity();
    let ch = block.channels();
    block.set_frames(cap);
    block.samples_mut()[got * ch..].fill(0.0);
    Ok(got)
}

/// Copies the first `n` frames of `block` into the planes (`got` real
/// frames, silence after).
fn deinterleave(block: &Block, got: usize, planes: &mut [Vec<f32>], n: usize) {
    let ch = block.channels();
    let samples = block.samples();
    for (c, plane) in planes.iter_mut().enumerate() {
        for (i, v) in plane[..n].iter_mut().enumerate() {
            *v = if i < got { samples[i * ch + c] } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Wave;
    use crate::source::{Generated, Tone, fit};

    fn tone(frames: u64) -> Box<dyn Source> {
        Box::new(Generated::new(
            Tone::new(Wave::Saw, 220.0, 0.5, 48_000),
            Frames(frames),
        ))
    }

    fn read_all(src: &mut dyn Source, block: usize) -> Vec<f32> {
        let mut b = Block::new(2, block);
        let mut out = Vec::new();
        while src.read(&mut b).unwrap() > 0 {
            out.extend_from_slice(b.samples());
        }
        out
    }

    #[test]
    fn exact_length_any_block_size_and_seek_replays() {
        let fitted = || fit(tone(20_001), Some(126.0 / 120.0), 0.0, 48_000, 2).unwrap();
        let mut a = fitted();
        assert_eq!(a.len().0, (20_001.0f64 * 126.0 / 120.0).round() as u64);
        let all = read_all(a.as_mut(), 4096);
        assert_eq!(all.len() as u64, 2 * a.len().0);
        assert_eq!(all, read_all(fitted().as_mut(), 1));
        assert_eq!(all, read_all(fitted().as_mut(), 333));
        a.seek(Frames(5000)).unwrap();
        assert_eq!(read_all(a.as_mut(), 64), all[10_000..]);
    }

    #[test]
    fn transposed_source_keeps_its_length_and_an_identity_fit_is_untouched() {
        let mut t = fit(tone(9_000), None, -7.0, 48_000, 2).unwrap();
        assert_eq!(t.len().0, 9_000);
        assert_eq!(read_all(t.as_mut(), 100).len(), 18_000);
        let mut same = fit(tone(9_000), Some(1.0), 0.0, 48_000, 2).unwrap();
        assert_eq!(
            read_all(same.as_mut(), 100),
            read_all(tone(9_000).as_mut(), 100)
        );
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn a_source_shorter_than_the_latency_keeps_its_sound() {
        // 10 ms, far below the engine's ~60 ms latency.
        let src = read_all(tone(480).as_mut(), 64);
        let mut s = fit(tone(480), Some(1.25), 0.0, 48_000, 2).unwrap();
        let out = read_all(s.as_mut(), 64);
        assert_eq!(out.len(), 2 * 600);
        assert!(
            rms(&out) > 0.3 * rms(&src),
            "{} vs {}",
            rms(&out),
            rms(&src)
        );
    }

    #[test]
    fn tiny_and_empty_sources_still_give_exact_lengths() {
        for frames in [0, 1, 10, 3000] {
            let mut s = fit(tone(frames), Some(2.0), 5.0, 48_000, 2).unwrap();
            assert_eq!(read_all(s.as_mut(), 64).len() as u64, 2 * 2 * frames);
        }
    }
}
