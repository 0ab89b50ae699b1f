//! The few types every stage shares: a frame count, a stream spec and the
//! fixed-size block buffer that flows through the pipeline.

use std::fmt;

/// A count of frames (one sample per channel), or a position in frames.
///
/// Kept distinct from sample counts so that a stereo buffer length is never
/// mistaken for a duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frames(pub u64);

impl Frames {
    /// `round(seconds * rate)`, ties away from zero (SPEC §8).
    pub fn from_seconds(seconds: f64, rate: u32) -> Frames {
        Frames((seconds * rate as f64).round().max(0.0) as u64)
    }

    /// The duration in seconds at `rate`.
    pub fn seconds(self, rate: u32) -> f64 {
        self.0 as f64 / rate as f64
    }

    /// As a buffer index; frame counts inside one block always fit.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Frames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How samples are stored in an output file.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    /// 32-bit IEEE float.
    Float,
    /// 24-bit signed integer PCM.
    Pcm24,
    /// 16-bit signed integer PCM.
    Pcm16,
}

impl SampleFormat {
    /// Bits per sample on disk.
    pub fn bits(self) -> u16 {
        match self {
            SampleFormat::Float => 32,
            SampleFormat::Pcm24 => 24,
            SampleFormat::Pcm16 => 16,
        }
    }

    /// The manifest spelling.
    pub fn name(self) -> &'static str {
        match self {
            SampleFormat::Float => "float",
            SampleFormat::Pcm24 => "pcm24",
            SampleFormat::Pcm16 => "pcm16",
        }
    }
}

/// Rate, channel count and storage format of a stream or a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamSpec {
    pub sample_rate: u32,
    pub channels: u16,
    pub format: SampleFormat,
}

/// A fixed-capacity buffer of interleaved `f32` frames.
///
/// Blocks are allocated once per pipeline and recycled; `frames` says how
/// much of the capacity is in use (only the last block of a stream is short).
#[derive(Clone, Debug)]
pub struct Block {
    data: Vec<f32>,
    channels: usize,
    frames: usize,
}

impl Block {
    /// A zeroed block able to hold `capacity` frames of `channels` channels.
    pub fn new(channels: u16, capacity: usize) -> Block {
        Block {
            data: vec![0.0; channels as usize * capacity],
            channels: channels as usize,
            frames: capacity,
        }
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames this block can hold.
    pub fn capacity(&self) -> usize {
        self.data.len() / self.channels
    }

    /// Frames currently in use.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Sets how many frames are in use (at most the capacity).
    pub fn set_frames(&mut self, frames: usize) {
        assert!(frames <= self.capacity(), "block overfilled");
        self.frames = frames;
    }

    /// Appends channel `c` of the samples in use to `out`, converted.
    /// Mono and stereo take whole-frame loops the compiler vectorises (a
    /// strided iterator here cost as much as the filter it fed).
    pub fn channel_into<T>(&self, c: usize, out: &mut Vec<T>, convert: impl Fn(f32) -> T) {
        assert!(c < self.channels, "channel {c} of {}", self.channels);
        let samples = self.samples();
        match (self.channels, c) {
            (1, _) => out.extend(samples.iter().map(|&v| convert(v))),
            (2, 0) => out.extend(samples.as_chunks::<2>().0.iter().map(|f| convert(f[0]))),
            (2, _) => out.extend(samples.as_chunks::<2>().0.iter().map(|f| convert(f[1]))),
            (ch, _) => out.extend(samples.chunks_exact(ch).map(|f| convert(f[c]))),
        }
    }

    /// The interleaved samples in use.
    pub fn samples(&self) -> &[f32] {
        &self.data[..self.frames * self.channels]
    }

    /// The interleaved samples in use, mutable.
    pub fn samples_mut(&mut self) -> &mut [f32] {
        let n = self.frames * self.channels;
        &mut self.data[..n]
    }

    /// Iterates over the frames in use, each a slice of `channels` samples.
    pub fn frames_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        let c = self.channels;
        self.samples_mut().chunks_exact_mut(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_ties_away_from_zero() {
        assert_eq!(Frames::from_seconds(0.5 / 48000.0 * 3.0, 48000), Frames(2));
        assert_eq!(Frames::from_seconds(137.0, 48000), Frames(6_576_000));
        assert_eq!(Frames::from_seconds(1.0 / 3.0, 3), Frames(1));
    }

    #[test]
    fn channels_come_out_in_frame_order() {
        for ch in [1u16, 2, 3] {
            let mut b = Block::new(ch, 9);
            b.set_frames(7);
            for (i, v) in b.samples_mut().iter_mut().enumerate() {
                *v = i as f32;
            }
            for c in 0..ch as usize {
                let mut out = vec![-1.0f64];
                b.channel_into(c, &mut out, f64::from);
                let want: Vec<f64> = std::iter::once(-1.0)
                    .chain((0..7).map(|f| (f * ch as usize + c) as f64))
                    .collect();
                assert_eq!(out, want, "{ch} channels, channel {c}");
            }
        }
    }

    #[test]
    fn block_tracks_frames_in_use() {
        let mut b = Block::new(2, 8);
        assert_eq!(b.capacity(), 8);
        b.set_frames(3);
        assert_eq!(b.samples().len(), 6);
        assert_eq!(b.frames_mut().count(), 3);
    }
}
