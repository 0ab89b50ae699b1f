//! Streaming sample-rate conversion with rubato's FFT resampler.
//!
//! A source of S frames at rate r becomes exactly round(S·R/r) frames at
//! rate R: the resampler's delay is dropped from the front and its tail is
//! flushed with silence, so the output lines up sample for sample with the
//! input's timeline.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::Source;
use crate::error::StageError;
use crate::types::{Block, Frames};

/// Input frames per resampler call. With a fixed input chunk of 1024 the
/// FFT resampler's delay is a whole number of output frames (rubato 5).
const CHUNK: usize = 1024;

/// Rubato's FFT resampler works in sub-chunks of `input` frames, each
/// giving `output` frames: a sub-chunk's output is its own FFT block plus
/// the overlap its predecessor left, which depends on that predecessor
/// alone. So output sub-chunk j is exactly reproduced by resetting the
/// resampler and feeding it from input sub-chunk j − 1: the pre-roll that
/// makes a seek cost two sub-chunks instead of the whole file before it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SubChunk {
    input: u64,
    output: u64,
}

impl SubChunk {
    /// The sizes `Fft::new(from, to, CHUNK, _, FixedSync::Input)` picks
    /// (rubato 5: sub-chunks of about 256 input frames, each a whole
    /// number of the rates' smallest common block). A test holds them to
    /// the resampler's own delay and ratio.
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
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A source converted to another sample rate.
pub struct Resampled {
    inner: Box<dyn Source>,
    resampler: Fft<f32>,
    sub: SubChunk,
    channels: usize,
    len: Frames,
    /// Output frames still to drop (the resampler's delay).
    to_drop: usize,
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
        let ch = channels as usize;
        let resampler = Fft::<f32>::new(from as usize, to as usize, CHUNK, ch, FixedSync::Input)
            .map_err(|e| {
                StageError::Invalid(format!("cannot resample {from} Hz to {to} Hz: {e}"))
            })?;
        let len = Frames((inner.len().0 as f64 * to as f64 / from as f64).round() as u64);
        let out_max = resampler.output_frames_max();
        let to_drop = resampler.output_delay();
        Ok(Resampled {
            inner,
            resampler,
            sub: SubChunk::of(from, to),
            channels: ch,
            len,
            to_drop,
            input: Block::new(channels, CHUNK),
            output: vec![0.0; out_max * ch],
            out_pos: 0,
            out_len: 0,
            pos: 0,
            inner_done: false,
        })
    }

    /// Runs the resampler on the next input chunk (silence past the end).
    fn refill(&mut self) -> Result<(), StageError> {
        let got = if self.inner_done {
            0
        } else {
            self.inner.read(&mut self.input)?
        };
        if got < CHUNK {
            self.inner_done = true;
            self.input.set_frames(CHUNK);
            self.input.samples_mut()[got * self.channels..].fill(0.0);
        }
        let ch = self.channels;
        let out_frames = self.output.len() / ch;
        let input = InterleavedSlice::new(self.input.samples(), ch, CHUNK)
            .map_err(|e| StageError::Invalid(format!("resampler input: {e}")))?;
        let mut output = InterleavedSlice::new_mut(&mut self.output[..], ch, out_frames)
            .map_err(|e| StageError::Invalid(format!("resampler output: {e}")))?;
        let (_, produced) = self
            .resampler
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| StageError::Invalid(format!("resampling failed: {e}")))?;
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
    /// the resampler one sub-chunk before the one holding `pos` (see
    /// [`SubChunk`]) and drops the output before it: the same samples as
    /// reading from the start, at the cost of two sub-chunks.
    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        let pos = pos.0.min(self.len.0);
        if pos < self.pos || pos - self.pos > 4 * self.sub.output {
            // Raw output frame (delay included) and the sub-chunk before
            // the one that holds it.
            let raw = pos + self.resampler.output_delay() as u64;
            let k = (raw / self.sub.output).saturating_sub(1);
            self.inner.seek(Frames(k * self.sub.input))?;
            self.resampler.reset();
            self.to_drop = (raw - k * self.sub.output) as usize;
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

    fn resampled(from: u32, to: u32, frames: u64) -> Resampled {
        let src = Box::new(Generated::new(Hash, Frames(frames)));
        Resampled::new(src, from, to, 2).unwrap()
    }

    #[test]
    fn sub_chunk_sizes_are_rubatos() {
        for (from, to) in [
            (44100, 48000),
            (22050, 48000),
            (96000, 48000),
            (8000, 44100),
        ] {
            let r = resampled(from, to, 10);
            let sub = SubChunk::of(from, to);
            assert_eq!(sub.output as usize / 2, r.resampler.output_delay());
            let ratio = r.resampler.resample_ratio();
            assert_eq!(sub.output as f64 / sub.input as f64, ratio, "{from}->{to}");
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
            321,
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
