//! Varispeed: a source played faster or slower, like a tape, at any ratio
//! (rubato's asynchronous sinc resampler).
//!
//! Transposition uses it: a phase vocoder keeps a steady tone's pitch
//! exactly when it stretches time, but when it shifts pitch itself it
//! rounds each partial to its analysis bin (Signalsmith Stretch puts a
//! 440 Hz tone shifted +2 semitones at 494.48 Hz, not 493.88). Playing the
//! source `p` times faster multiplies every frequency by exactly `p`; the
//! stretcher then restores the duration, which it does without touching
//! pitch. A source of S frames becomes exactly round(S / p) frames, its
//! resampler delay dropped from the front so frame 0 stays frame 0.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Async, FixedAsync, Resampler, SincInterpolationParameters, WindowFunction};

use super::Source;
use crate::error::StageError;
use crate::types::{Block, Frames};

/// Input frames per resampler call: fixed, so the output never depends on
/// the caller's block size.
const CHUNK: usize = 1024;

/// A source played `speed` times faster (pitch and tempo both follow).
pub struct Varispeed {
    inner: Box<dyn Source>,
    speed: f64,
    resampler: Async<f32>,
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

impl Varispeed {
    /// `inner` played `speed` times faster (0.25 to 4: two octaves).
    pub fn new(inner: Box<dyn Source>, speed: f64, channels: u16) -> Result<Varispeed, StageError> {
        let resampler = make_resampler(speed, channels)?;
        let ch = channels as usize;
        let len = Frames((inner.len().0 as f64 / speed).round() as u64);
        let to_drop = resampler.output_delay();
        let output = vec![0.0; resampler.output_frames_max() * ch];
        Ok(Varispeed {
            inner,
            speed,
            resampler,
            channels: ch,
            len,
            to_drop,
            input: Block::new(channels, CHUNK),
            output,
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
        let failed = |e: &dyn std::fmt::Display| StageError::Invalid(format!("transpose: {e}"));
        let input =
            InterleavedSlice::new(self.input.samples(), ch, CHUNK).map_err(|e| failed(&e))?;
        let mut output = InterleavedSlice::new_mut(&mut self.output[..], ch, out_frames)
            .map_err(|e| failed(&e))?;
        let (_, produced) = self
            .resampler
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| failed(&e))?;
        let dropped = self.to_drop.min(produced);
        self.to_drop -= dropped;
        self.out_pos = dropped;
        self.out_len = produced;
        Ok(())
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

/// The sinc resampler for `speed`: output rate / input rate = 1 / speed.
fn make_resampler(speed: f64, channels: u16) -> Result<Async<f32>, StageError> {
    let params = SincInterpolationParameters::new(256, WindowFunction::BlackmanHarris2);
    Async::<f32>::new_sinc(
        1.0 / speed,
        1.0,
        &params,
        CHUNK,
        channels as usize,
        FixedAsync::Input,
    )
    .map_err(|e| StageError::Invalid(format!("cannot transpose by a factor of {speed}: {e}")))
}

impl Source for Varispeed {
    fn len(&self) -> Frames {
        self.len
    }

    /// Restarts from the beginning and skips: exact, since the resampler's
    /// output depends on everything before it.
    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        let pos = pos.0.min(self.len.0);
        if pos < self.pos {
            self.inner.seek(Frames(0))?;
            self.resampler = make_resampler(self.speed, self.channels as u16)?;
            self.to_drop = self.resampler.output_delay();
            (self.out_pos, self.out_len, self.pos) = (0, 0, 0);
            self.inner_done = false;
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
        self.inner.cost() + super::cost::VARISPEED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Wave;
    use crate::source::{Generated, Tone};

    #[test]
    fn length_is_exact_and_seek_replays_the_same_frames() {
        let tone = Generated::new(Tone::new(Wave::Sine, 440.0, 0.5, 48_000), Frames(10_000));
        let mut v = Varispeed::new(Box::new(tone), 2f64.powf(2.0 / 12.0), 1).unwrap();
        assert_eq!(v.len().0, (10_000.0 / 2f64.powf(2.0 / 12.0)).round() as u64);
        let mut b = Block::new(1, 777);
        let mut all = Vec::new();
        while v.read(&mut b).unwrap() > 0 {
            all.extend_from_slice(b.samples());
        }
        assert_eq!(all.len() as u64, v.len().0);
        v.seek(Frames(3000)).unwrap();
        v.read(&mut b).unwrap();
        assert_eq!(b.samples(), &all[3000..3777]);
    }
}
