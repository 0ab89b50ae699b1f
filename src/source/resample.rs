//! Streaming sample-rate conversion by FFT.
//!
//! A source of S frames at rate r becomes exactly round(S·R/r) frames at
//! rate R: the resampler's delay is dropped from the front and its tail is
//! flushed with silence, so the output lines up sample for sample with the
//! input's timeline.
//!
//! The filter and the method are rubato 5's `Fft` resampler's (a windowed
//! sinc filter applied by FFT, the spectrum cut or extended to the other
//! rate, transformed back and overlap-added), and a test holds the output
//! to rubato's. It is done here rather than by rubato because of what the
//! recorded-stems profile of issue 15 showed rubato spending around its
//! FFTs: it de-interleaves every channel, runs a real FFT per channel (a
//! half-size complex FFT plus a scalar pass each way) and interleaves
//! again. Here two channels share one complex FFT as its real and
//! imaginary parts, which for stereo is the frames exactly as they lie in
//! a block. And where rubato pads each block of input to twice its length
//! (the filter is as long as the block), here a block is three filter
//! lengths of input and one of padding: a quarter less FFT work per frame.
//! Together about a third of rubato's CPU, with less rounding noise.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::Source;
use crate::error::StageError;
use crate::types::{Block, Frames};

/// Input frames the sub-chunk size is chosen from (rubato's `chunk_size`
/// argument as this module used it).
const CHUNK: usize = 1024;

/// Sub-chunks of new input per FFT block (the block has one more, of
/// padding, for the filter's tail).
const HOP: u64 = 3;

/// rubato's sub-chunk: `input` frames giving `output` frames, the length
/// of the filter. Scaled by [`HOP`] it is the hop between FFT blocks.
///
/// A block's output is `HOP` + 1 output sub-chunks: the first is added to
/// the last of the block before (the filter's tail), the last is kept for
/// the block after. So output hop j is exactly reproduced by resetting the
/// resampler and feeding it from input hop j − 1: the pre-roll that makes
/// a seek cost two hops instead of the whole file before it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SubChunk {
    input: u64,
    output: u64,
}

impl SubChunk {
    /// The sizes `rubato::Fft::new(from, to, CHUNK, _, FixedSync::Input)`
    /// picks (rubato 5: sub-chunks of about 256 input frames, each a whole
    /// number of the rates' smallest common block), so the filter is the
    /// one this module had when rubato ran it. A test holds them to
    /// rubato's own delay and ratio.
    fn of(from: u32, to: u32) -> SubChunk {
        let (from, to) = (from as u64, to as u64);
        let gcd = gcd(from, to);
        let wanted = (CHUNK / 256).max(1);
        let wanted = (CHUNK / wanted) as u64;
        let blocks = wanted.div_ceil(from / gcd).max(1);
        SubChunk {
            input: blocks * from / gcd,
            output: blocks * to / gcd,
        }
    }

    /// The hop between FFT blocks.
    fn hop(self) -> SubChunk {
        SubChunk {
            input: HOP * self.input,
            output: HOP * self.output,
        }
    }

    /// Output frames from an input frame to its place in the output: half
    /// an output sub-chunk, as the filter is centred in its sub-chunk
    /// (rubato's `output_delay`).
    fn delay(self) -> u64 {
        self.output / 2
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

const ZERO: Complex<f32> = Complex::new(0.0, 0.0);

/// The spectrum over `bins` bins of rubato's filter for sub-chunk `sub`
/// (a sinc of `sub.input` taps at rubato's cutoff, squared
/// Blackman-Harris window, unit DC gain; computed in f64), scaled by
/// 1/`bins` so that the unnormalised inverse FFT gives unit gain.
fn filter_spectrum(sub: SubChunk, bins: usize) -> Vec<Complex<f32>> {
    use rubato::{WindowFunction::BlackmanHarris2, calculate_cutoff};
    let (m_in, m_out) = (sub.input as usize, sub.output as usize);
    let cutoff = if m_in > m_out {
        calculate_cutoff::<f32>(m_out, BlackmanHarris2) * m_out as f32 / m_in as f32
    } else {
        calculate_cutoff::<f32>(m_in, BlackmanHarris2)
    } as f64;
    let taps: Vec<f64> = (0..m_in)
        .map(|x| {
            let t = std::f64::consts::TAU * x as f64 / m_in as f64;
            let w = 0.35875 - 0.48829 * t.cos() + 0.14128 * (2.0 * t).cos()
                - 0.01168 * (3.0 * t).cos();
            let a = std::f64::consts::PI * (x as f64 - (m_in / 2) as f64) * cutoff;
            w * w * if a == 0.0 { 1.0 } else { a.sin() / a }
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    let mut spectrum = vec![Complex::new(0.0f64, 0.0); bins];
    for (s, t) in spectrum.iter_mut().zip(&taps) {
        s.re = t / sum / bins as f64;
    }
    FftPlanner::new().plan_fft_forward(bins).process(&mut spectrum);
    spectrum
        .iter()
        .map(|c| Complex::new(c.re as f32, c.im as f32))
        .collect()
}

/// Resamples interleaved hops, channels two by two: channel 2p is the
/// real part and 2p + 1 the imaginary part of lane p's complex signal (an
/// odd last channel has silence beside it). Filtering and resizing the
/// spectrum are linear and keep a real signal's symmetry, so the two parts
/// come back apart.
struct Kernel {
    channels: usize,
    /// Input and output frames per block.
    hop_in: usize,
    hop_out: usize,
    filter: Vec<Complex<f32>>,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    time: Vec<Complex<f32>>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Per lane, the tail of the last block (one output sub-chunk).
    overlaps: Vec<Vec<Complex<f32>>>,
}

impl Kernel {
    fn new(sub: SubChunk, channels: usize) -> Kernel {
        let (hop, tail) = (sub.hop(), sub.output as usize);
        let n_in = (hop.input + sub.input) as usize;
        let n_out = (hop.output + sub.output) as usize;
        let mut planner = FftPlanner::new();
        let forward = planner.plan_fft_forward(n_in);
        let inverse = planner.plan_fft_inverse(n_out);
        let scratch = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        Kernel {
            channels,
            hop_in: hop.input as usize,
            hop_out: hop.output as usize,
            filter: filter_spectrum(sub, n_in),
            forward,
            inverse,
            time: vec![ZERO; n_in],
            spectrum: vec![ZERO; n_out],
            scratch: vec![ZERO; scratch],
            overlaps: vec![vec![ZERO; tail]; channels.div_ceil(2)],
        }
    }

    /// Forgets the past: the next hop is resampled as the first.
    fn reset(&mut self) {
        self.overlaps.iter_mut().for_each(|o| o.fill(ZERO));
    }

    /// Resamples a hop of interleaved input frames into a hop of output.
    fn process(&mut self, input: &[f32], output: &mut [f32]) {
        for lane in 0..self.overlaps.len() {
            self.gather(input, 2 * lane);
            self.forward
                .process_with_scratch(&mut self.time, &mut self.scratch);
            self.filter_and_resize();
            self.inverse
                .process_with_scratch(&mut self.spectrum, &mut self.scratch);
            self.scatter(lane, output);
        }
    }

    /// `time` = channels `c` and `c` + 1 of `input` as complex samples,
    /// zero-padded. Stereo, the common case, is a plain copy of the frames.
    fn gather(&mut self, input: &[f32], c: usize) {
        let ch = self.channels;
        let (time, pad) = self.time.split_at_mut(self.hop_in);
        pad.fill(ZERO);
        if ch == 2 {
            let (frames, _) = input.as_chunks::<2>();
            for (t, f) in time.iter_mut().zip(frames) {
                *t = Complex::new(f[0], f[1]);
            }
        } else if ch == 1 {
            for (t, &x) in time.iter_mut().zip(input) {
                *t = Complex::new(x, 0.0);
            }
        } else {
            let pair = c + 1 < ch;
            for (t, f) in time.iter_mut().zip(input.chunks_exact(ch)) {
                *t = Complex::new(f[c], if pair { f[c + 1] } else { 0.0 });
            }
        }
    }

    /// Adds the last block's tail to the inverse FFT, writes its first hop
    /// into channels 2·`lane` and 2·`lane` + 1 of `output` and keeps the
    /// rest as the next tail.
    fn scatter(&mut self, lane: usize, output: &mut [f32]) {
        let (ch, c) = (self.channels, 2 * lane);
        let overlap = &mut self.overlaps[lane];
        for (y, o) in self.spectrum.iter_mut().zip(overlap.iter()) {
            *y += o;
        }
        let (now, next) = self.spectrum.split_at(self.hop_out);
        if ch == 2 {
            let (frames, _) = output.as_chunks_mut::<2>();
            for (f, v) in frames.iter_mut().zip(now) {
                *f = [v.re, v.im];
            }
        } else if ch == 1 {
            for (f, v) in output.iter_mut().zip(now) {
                *f = v.re;
            }
        } else {
            for (f, v) in output.chunks_exact_mut(ch).zip(now) {
                f[c] = v.re;
                if c + 1 < ch {
                    f[c + 1] = v.im;
                }
            }
        }
        overlap.copy_from_slice(next);
    }

    /// `spectrum` = the filtered `time` spectrum with its positive and
    /// negative frequencies moved to the output size: the band both rates
    /// share, the rest zero. Upsampling, the input's Nyquist bin is split
    /// between the two sides it stands for.
    fn filter_and_resize(&mut self) {
        let (n_in, n_out) = (self.time.len(), self.spectrum.len());
        let k = n_in.min(n_out) / 2;
        let (time, filter, out) = (&self.time, &self.filter, &mut self.spectrum);
        // Forwards over slices, so that the compiler vectorises.
        let filtered = |to: &mut [Complex<f32>], from: std::ops::Range<usize>| {
            let pairs = time[from.clone()].iter().zip(&filter[from]);
            for (o, (t, f)) in to.iter_mut().zip(pairs) {
                *o = t * f;
            }
        };
        filtered(&mut out[..k], 0..k);
        filtered(&mut out[n_out + 1 - k..], n_in + 1 - k..n_in);
        if n_in < n_out {
            let half = time[k] * filter[k] * 0.5;
            out[k] = half;
            out[n_out - k] = half;
            out[k + 1..n_out - k].fill(ZERO);
        } else {
            out[k..=n_out - k].fill(ZERO);
        }
    }
}

/// A source converted to another sample rate.
pub struct Resampled {
    inner: Box<dyn Source>,
    kernel: Kernel,
    sub: SubChunk,
    channels: usize,
    len: Frames,
    /// Output frames still to drop (the resampler's delay).
    to_drop: usize,
    /// One hop of input: what is read from the inner source at a time, so
    /// that a seek reads ahead of its target by at most a hop.
    input: Block,
    output: Vec<f32>,
    out_pos: usize,
    out_len: usize,
    /// Next output frame `read` delivers.
    pos: u64,
    inner_done: bool,
}

impl Resampled {
    /// Converts `inner` from rate `from` to rate `to`.
    pub fn new(
        inner: Box<dyn Source>,
        from: u32,
        to: u32,
        channels: u16,
    ) -> Result<Resampled, StageError> {
        if from == 0 || to == 0 || channels == 0 {
            return Err(StageError::Invalid(format!(
                "cannot resample {from} Hz to {to} Hz ({channels} channels)"
            )));
        }
        let ch = channels as usize;
        let sub = SubChunk::of(from, to);
        let hop = sub.hop();
        let len = Frames((inner.len().0 as f64 * to as f64 / from as f64).round() as u64);
        Ok(Resampled {
            inner,
            kernel: Kernel::new(sub, ch),
            sub,
            channels: ch,
            len,
            to_drop: sub.delay() as usize,
            input: Block::new(channels, hop.input as usize),
            output: vec![0.0; hop.output as usize * ch],
            out_pos: 0,
            out_len: 0,
            pos: 0,
            inner_done: false,
        })
    }

    /// Resamples the next hop of input (silence past the end).
    fn refill(&mut self) -> Result<(), StageError> {
        let chunk = self.input.capacity();
        let got = if self.inner_done {
            0
        } else {
            self.inner.read(&mut self.input)?
        };
        if got < chunk {
            self.inner_done = true;
            self.input.set_frames(chunk);
            self.input.samples_mut()[got * self.channels..].fill(0.0);
        }
        self.kernel.process(self.input.samples(), &mut self.output);
        let produced = self.output.len() / self.channels;
        let dropped = self.to_drop.min(produced);
        self.to_drop -= dropped;
        self.out_pos = dropped;
        self.out_len = produced;
        Ok(())
    }
}

impl Source for Resampled {
    fn len(&self) -> Frames {
        self.len
    }

    /// A short step forward is resampled through; anything else restarts
    /// the resampler one hop before the one holding `pos` (see
    /// [`SubChunk`]) and drops the output before it: the same samples as
    /// reading from the start, at the cost of two hops.
    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        let pos = pos.0.min(self.len.0);
        let hop = self.sub.hop();
        if pos < self.pos || pos - self.pos > 2 * hop.output {
            // Raw output frame (delay included) and the hop before the
            // one that holds it.
            let raw = pos + self.sub.delay();
            let k = (raw / hop.output).saturating_sub(1);
            self.inner.seek(Frames(k * hop.input))?;
            self.kernel.reset();
            self.to_drop = (raw - k * hop.output) as usize;
            self.out_pos = 0;
            self.out_len = 0;
            self.inner_done = false;
            self.pos = pos;
            return Ok(());
        }
        while self.pos < pos {
            if self.out_pos == self.out_len {
                self.refill()?;
                continue;
            }
            let n = (self.out_len - self.out_pos).min((pos - self.pos) as usize);
            self.out_pos += n;
            self.pos += n as u64;
        }
        Ok(())
    }

    fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let ch = self.channels;
        let want = (self.len.0 - self.pos).min(block.capacity() as u64) as usize;
        block.set_frames(want);
        let mut filled = 0;
        while filled < want {
            if self.out_pos == self.out_len {
                self.refill()?;
                continue;
            }
            let n = (self.out_len - self.out_pos).min(want - filled);
            block.samples_mut()[filled * ch..(filled + n) * ch]
                .copy_from_slice(&self.output[self.out_pos * ch..(self.out_pos + n) * ch]);
            self.out_pos += n;
            filled += n;
            self.pos += n as u64;
        }
        Ok(want)
    }

    fn cost(&self) -> f32 {
        self.inner.cost() + super::cost::RESAMPLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Generated, Signal};

    /// Deterministic full-band noise, so every sub-chunk differs.
    struct Hash;
    impl Signal for Hash {
        fn render(&mut self, start: u64, out: &mut [f32]) {
            for (i, o) in out.iter_mut().enumerate() {
                let x = (start + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                *o = ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
            }
        }
    }

    /// Interleaved samples of `channels` channels, replayed.
    struct Replay {
        samples: Vec<f32>,
        channels: usize,
        pos: usize,
    }
    impl Source for Replay {
        fn len(&self) -> Frames {
            Frames((self.samples.len() / self.channels) as u64)
        }
        fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
            self.pos = pos.0 as usize;
            Ok(())
        }
        fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
            let ch = self.channels;
            let n = (self.samples.len() / ch - self.pos).min(block.capacity());
            block.set_frames(n);
            let at = self.pos * ch;
            block
                .samples_mut()
                .copy_from_slice(&self.samples[at..at + n * ch]);
            self.pos += n;
            Ok(n)
        }
    }

    fn resampled(from: u32, to: u32, frames: u64) -> Resampled {
        let src = Box::new(Generated::new(Hash, Frames(frames)));
        Resampled::new(src, from, to, 2).unwrap()
    }

    #[test]
    fn sub_chunk_sizes_are_rubatos() {
        use rubato::{Fft, FixedSync, Resampler};
        for (from, to) in [
            (44100, 48000),
            (22050, 48000),
            (96000, 48000),
            (8000, 44100),
        ] {
            let (f, t) = (from as usize, to as usize);
            let r = Fft::<f64>::new(f, t, CHUNK, 2, FixedSync::Input).unwrap();
            let sub = SubChunk::of(from, to);
            assert_eq!(sub.delay() as usize, r.output_delay());
            let ratio = r.resample_ratio();
            assert_eq!(sub.output as f64 / sub.input as f64, ratio, "{from}->{to}");
        }
    }

    /// rubato's `Fft` in f64 with the same sub-chunks, as a reference:
    /// the same algorithm and filter, computed independently.
    fn rubato_f64(from: u32, to: u32, input: &[f32], channels: usize) -> Vec<f32> {
        use rubato::audioadapter_buffers::direct::InterleavedSlice;
        use rubato::{Fft, FixedSync, Resampler, WindowFunction};
        let sub = SubChunk::of(from, to);
        let (m_in, m_out) = (sub.input as usize, sub.output as usize);
        let mut r = Fft::<f64>::new_custom(
            from as usize,
            to as usize,
            m_in,
            1,
            channels,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
        .unwrap();
        let mut out = Vec::new();
        let mut o = vec![0.0f64; m_out * channels];
        for chunk in input.chunks_exact(m_in * channels) {
            let x: Vec<f64> = chunk.iter().map(|&v| v as f64).collect();
            let i = InterleavedSlice::new(&x[..], channels, m_in).unwrap();
            let mut y = InterleavedSlice::new_mut(&mut o[..], channels, m_out).unwrap();
            r.process_into_buffer(&i, &mut y, None).unwrap();
            out.extend(o.iter().map(|&v| v as f32));
        }
        out.drain(..r.output_delay() * channels);
        out
    }

    #[test]
    fn the_output_is_rubatos_to_float_precision() {
        // Mono, stereo (one complex lane) and three channels (a pair and
        // a lone channel), up and down.
        for (from, to, ch) in [
            (44100, 48000, 2),
            (44100, 48000, 1),
            (48000, 44100, 3),
            (96000, 48000, 2),
        ] {
            let frames = 20_000;
            let mut src = Generated::new(Hash, Frames(frames * ch as u64));
            let mut x = Block::new(1, frames as usize * ch);
            src.read(&mut x).unwrap();
            let replay = Replay {
                samples: x.samples().to_vec(),
                channels: ch,
                pos: 0,
            };
            let mut r = Resampled::new(Box::new(replay), from, to, ch as u16).unwrap();
            let len = r.len().0 as usize;
            let mut ours = Block::new(ch as u16, len);
            assert_eq!(r.read(&mut ours).unwrap(), len);
            let mut padded = x.samples().to_vec();
            padded.resize(padded.len() + 4 * CHUNK * ch, 0.0);
            let reference = rubato_f64(from, to, &padded, ch);
            let worst = ours
                .samples()
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // Noise of peak 0.5. Measured 2.4e-7 at most; rubato's own f32
            // resampler is 5e-7 from its f64 one.
            assert!(worst < 1e-6, "{from}->{to} x{ch}: off by {worst:e}");
        }
    }

    #[test]
    fn a_seek_gives_the_samples_read_from_the_start() {
        let frames = 30_000;
        let mut whole = resampled(44100, 48000, frames);
        let len = whole.len().0 as usize;
        let mut all = Block::new(2, len);
        assert_eq!(whole.read(&mut all).unwrap(), len);
        let mut r = resampled(44100, 48000, frames);
        // Backwards, far forwards, near forwards, into the flushed tail.
        for pos in [
            len - 700,
            5,
            20_000,
            20_100,
            0,
            319,
            320,
            959,
            960,
            961,
            len - 1,
            9_999,
        ] {
            r.seek(Frames(pos as u64)).unwrap();
            let n = 600.min(len - pos);
            let mut b = Block::new(2, n);
            assert_eq!(r.read(&mut b).unwrap(), n);
            assert!(
                b.samples() == &all.samples()[pos * 2..(pos + n) * 2],
                "at {pos}"
            );
        }
    }
}
