//! Grid-locked loops for rhythmic stems (SPEC §9). A drum loop must land
//! on the bar grid however many times it repeats, so repeat k starts at
//! exactly `round(k · L · rate)` for a loop of L seconds (a whole number
//! of bars), never at "the previous repeat's end minus a seam": rounding
//! never accumulates, and onsets never drift. Within a repeat the source
//! is copied untouched; frames past L (a reverb tail, a long export) are
//! faded out into the next repeat's start, and a short source leaves the
//! rest of its bars silent.
//!
//! Streaming: the source is re-read from frame 0 for every repeat, and the
//! only buffer is the faded tail, at most `crossfade_ms` long.

use super::reader::SourceReader;
use crate::error::StageError;
use crate::timing::Meter;
use crate::types::Frames;

/// The bar grid of a song, as a rhythmic loop needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Seconds per bar.
    pub bar_seconds: f64,
    /// Loop length in bars; `None`: the source length rounded to the nearest
    /// whole number of bars (at least one).
    pub loop_bars: Option<u32>,
}

impl Grid {
    /// Loop length in seconds for a source of `len` frames at `rate`.
    pub fn loop_seconds(&self, len: u64, rate: u32) -> f64 {
        let bars = match self.loop_bars {
            Some(b) => b as f64,
            None => (len as f64 / rate as f64 / self.bar_seconds)
                .round()
                .max(1.0),
        };
        bars * self.bar_seconds
    }
}

/// Parses a meter such as "4/4" or "6/8" (numerator 1–32, denominator 1,
/// 2, 4, 8 or 16), for the `align` command's `--meter`.
pub fn parse_meter(text: &str) -> Result<Meter, String> {
    let bad = || {
        format!(
            "meter must look like 4/4 (numerator 1-32, denominator 1, 2, 4, 8 or 16), got \"{text}\""
        )
    };
    let (n, d) = text.trim().split_once('/').ok_or_else(bad)?;
    let beats: u32 = n.trim().parse().map_err(|_| bad())?;
    let unit: u32 = d.trim().parse().map_err(|_| bad())?;
    if !(1..=32).contains(&beats) || ![1, 2, 4, 8, 16].contains(&unit) {
        return Err(bad());
    }
    Ok(Meter { beats, unit })
}

/// A source looped on the bar grid: the streaming state.
pub(super) struct GridLoop {
    channels: usize,
    rate: u32,
    len: u64,
    loop_seconds: f64,
    /// Fade-out length for the frames past the loop length.
    fade: u64,
    /// Current repeat, its first output frame and its length.
    repeat: u64,
    start: u64,
    length: u64,
    /// Frames of the current repeat already produced.
    done: u64,
    /// The previous repeat's faded tail, added into this repeat's start.
    tail: Vec<f32>,
}

impl GridLoop {
    /// Plans the loop of a source of `len` frames; the reader must be at
    /// frame 0.
    pub fn new(channels: u16, len: u64, rate: u32, grid: Grid, crossfade_ms: f64) -> GridLoop {
        let mut g = GridLoop {
            channels: channels as usize,
            rate,
            len,
            loop_seconds: grid.loop_seconds(len, rate),
            fade: Frames::from_seconds(crossfade_ms / 1000.0, rate).0,
            repeat: 0,
            start: 0,
            length: 0,
            done: 0,
            tail: Vec::new(),
        };
        g.length = g.repeat_start(1);
        g
    }

    /// Output frame at which repeat `k` plays source frame 0.
    fn repeat_start(&self, k: u64) -> u64 {
        Frames::from_seconds(k as f64 * self.loop_seconds, self.rate).0
    }

    /// The loop length in frames (the first repeat's), for the report.
    pub fn loop_frames(&self) -> u64 {
        self.repeat_start(1)
    }

    /// Fills `dst` (whole interleaved frames) with the next output frames.
    pub fn fill(&mut self, reader: &mut SourceReader, dst: &mut [f32]) -> Result<(), StageError> {
        let ch = self.channels;
        let mut filled = 0;
        while filled < dst.len() {
            if self.done == self.length {
                self.next_repeat(reader)?;
            }
            let want = ((dst.len() - filled) / ch) as u64;
            let n = self.fill_repeat(reader, &mut dst[filled..], want)?;
            filled += n * ch;
        }
        Ok(())
    }

    /// Up to `want` frames of the current repeat: the source (or silence
    /// past its end) plus the incoming tail. Returns the frames written.
    fn fill_repeat(
        &mut self,
        reader: &mut SourceReader,
        dst: &mut [f32],
        want: u64,
    ) -> Result<usize, StageError> {
        let ch = self.channels;
        let played = self.len.min(self.length);
        let n = if self.done < played {
            let n = (played - self.done).min(want) as usize;
            reader.pull(&mut dst[..n * ch])?;
            n
        } else {
            let n = (self.length - self.done).min(want) as usize;
            dst[..n * ch].fill(0.0);
            n
        };
        let tail_frames = (self.tail.len() / ch) as u64;
        if self.done < tail_frames {
            let from = self.done as usize * ch;
            let to = (self.done as usize + n).min(tail_frames as usize) * ch;
            for (d, t) in dst.iter_mut().zip(&self.tail[from..to]) {
                *d += *t;
            }
        }
        self.done += n as u64;
        Ok(n)
    }

    /// Ends the current repeat: keeps the source's frames past the loop
    /// length, faded, for the next one, and rewinds the source.
    fn next_repeat(&mut self, reader: &mut SourceReader) -> Result<(), StageError> {
        let ch = self.channels;
        let over = self.len.saturating_sub(self.length);
        let f = over.min(self.fade) as usize;
        self.tail.clear();
        self.tail.resize(f * ch, 0.0);
        reader.pull(&mut self.tail)?;
        for (j, frame) in self.tail.chunks_exact_mut(ch).enumerate() {
            let g = 0.5 * (1.0 + (std::f64::consts::PI * j as f64 / f as f64).cos());
            frame.iter_mut().for_each(|v| *v = (*v as f64 * g) as f32);
        }
        reader.seek(0)?;
        self.repeat += 1;
        self.start += self.length;
        self.length = self.repeat_start(self.repeat + 1) - self.start;
        self.done = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_meter("4/4"), Ok(Meter { beats: 4, unit: 4 }));
        assert_eq!(parse_meter(" 6/8 "), Ok(Meter { beats: 6, unit: 8 }));
        assert_eq!(
            parse_meter("32/16"),
            Ok(Meter {
                beats: 32,
                unit: 16
            })
        );
        for bad in ["5/3", "0/4", "33/4", "4", "a/4", "4/", ""] {
            let e = parse_meter(bad).unwrap_err();
            assert!(e.contains(&format!("\"{bad}\"")), "{e}");
        }
    }

    #[test]
    fn loop_length_is_a_whole_number_of_bars() {
        let grid = |loop_bars| Grid {
            bar_seconds: 2.0,
            loop_bars,
        };
        // 3.98 s and 4.03 s round to 2 bars; 0.5 s is still one bar.
        assert_eq!(grid(None).loop_seconds(191_040, 48_000), 4.0);
        assert_eq!(grid(None).loop_seconds(193_440, 48_000), 4.0);
        assert_eq!(grid(None).loop_seconds(24_000, 48_000), 2.0);
        assert_eq!(grid(Some(3)).loop_seconds(24_000, 48_000), 6.0);
    }
}
