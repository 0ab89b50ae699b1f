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

/// A source converted to another sample rate.
pub struct Resampled {
    inner: Box<dyn Source>,
    resampler: Fft<f32>,
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

    /// Restarts from the beginning and skips: exact, since the resampler's
    /// output depends on everything before it.
    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        let pos = pos.0.min(self.len.0);
        if pos < self.pos {
            self.inner.seek(Frames(0))?;
            self.resampler.reset();
            self.to_drop = self.resampler.output_delay();
            self.out_pos = 0;
            self.out_len = 0;
            self.pos = 0;
            self.inner_done = false;
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
