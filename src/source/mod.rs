//! Sources: anything that fills blocks with a stem's raw audio.
//!
//! A source knows its length and can seek, which is all alignment needs to
//! loop or extend it without holding it in memory.

mod drums;
pub mod file;
mod resample;
pub mod stretch;
mod tone;
mod varispeed;
mod wavdata;

pub use drums::Drums;
pub use file::FileSource;
pub use resample::Resampled;
pub use stretch::Stretched;
pub use tone::Tone;

use crate::error::StageError;
use crate::plan::{SongPlan, SourceSpec, StemPlan};
use crate::seed::{stem_key, uniform};
use crate::types::{Block, Frames};

/// A stream of frames with a known length that can be re-read from any
/// position.
#[allow(
    clippy::len_without_is_empty,
    reason = "a length in frames, not a container: nothing asks whether a source is empty"
)]
pub trait Source: Send {
    /// Total frames the source produces.
    fn len(&self) -> Frames;

    /// Moves the read position to `pos` (at most `len`).
    fn seek(&mut self, pos: Frames) -> Result<(), StageError>;

    /// Fills `block` from the read position, sets its frame count and
    /// returns it. The block is filled to capacity unless the source ends;
    /// 0 means the end.
    fn read(&mut self, block: &mut Block) -> Result<usize, StageError>;

    /// Estimated CPU time per frame delivered, in units of what every stem
    /// pays per frame for its meters and its file (see [`cost`]). Only
    /// shares a song's stems out over its threads; never changes a sample.
    fn cost(&self) -> f32 {
        cost::LIGHT
    }
}

/// What sources cost per frame, for sharing stems out over threads. The
/// unit is a stem's own work: metering and writing a frame (≈ 0.9 ms per
/// second of stereo 48 kHz audio on the 2-core x86-64 these were measured
/// on: `perf stat -e task-clock` of `render --jobs 1`, a 100-s song of
/// five stems of one kind minus the same song with one, per stem). Only
/// the ratios matter; a wrong figure costs speed, never a sample.
pub mod cost {
    /// A generator or test source: a few operations per sample.
    pub const LIGHT: f32 = 0.3;
    /// A sine computed per sample.
    pub const TONE: f32 = 0.6;
    /// Hashed noise.
    pub const NOISE: f32 = 0.35;
    /// Drum hits: mostly silence, which the meters skip through.
    pub const DRUMS: f32 = 0.0;
    /// A WAV/RF64 read by memory map: a conversion per sample.
    pub const MAPPED_PCM: f32 = 0.05;
    /// PCM through symphonia (AIFF, CAF, …).
    pub const DECODED_PCM: f32 = 0.3;
    /// FLAC or ALAC decoding (measured 1.75 for FLAC).
    pub const LOSSLESS: f32 = 1.7;
    /// MP3, Vorbis, AAC, Opus decoding (measured 2.7 Vorbis, 3.4 MP3).
    pub const LOSSY: f32 = 3.0;
    /// Resampling to the song's rate, on top of the source's own cost.
    pub const RESAMPLE: f32 = 0.3;
    /// Time-stretching (Signalsmith Stretch), on top of the source's.
    pub const STRETCH: f32 = 20.0;
    /// Varispeed (a transposition, before the stretch), on top.
    pub const VARISPEED: f32 = 8.0;
}

/// A mono signal computed from the absolute frame index, so any block
/// split and any seek give the same samples.
pub trait Signal: Send {
    /// Writes frames `start..start + out.len()` into `out`.
    fn render(&mut self, start: u64, out: &mut [f32]);

    /// Estimated CPU time per frame, as [`Source::cost`].
    fn cost(&self) -> f32 {
        cost::LIGHT
    }
}

/// Adapts a [`Signal`] into a [`Source`] of a given length, copying the
/// mono signal to every channel.
pub struct Generated<S: Signal> {
    signal: S,
    len: Frames,
    pos: u64,
}

impl<S: Signal> Generated<S> {
    pub fn new(signal: S, len: Frames) -> Self {
        Generated {
            signal,
            len,
            pos: 0,
        }
    }
}

impl<S: Signal> Source for Generated<S> {
    fn len(&self) -> Frames {
        self.len
    }

    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        self.pos = pos.0.min(self.len.0);
        Ok(())
    }

    fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let n = (self.len.0 - self.pos).min(block.capacity() as u64) as usize;
        block.set_frames(n);
        let channels = block.channels();
        let samples = block.samples_mut();
        self.signal.render(self.pos, &mut samples[..n]);
        if channels > 1 {
            // Spread in place from the back so nothing is overwritten early.
            for i in (0..n).rev() {
                let v = samples[i];
                samples[i * channels..(i + 1) * channels].fill(v);
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    fn cost(&self) -> f32 {
        self.signal.cost()
    }
}

/// Digital silence.
pub struct Silence;

impl Signal for Silence {
    fn render(&mut self, _start: u64, out: &mut [f32]) {
        out.fill(0.0);
    }

    fn cost(&self) -> f32 {
        0.0
    }
}

/// Uniform white noise in [-amp, amp], a pure function of (seed, frame).
pub struct Noise {
    pub amp: f64,
    pub key: u64,
}

impl Signal for Noise {
    fn render(&mut self, start: u64, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = (self.amp * uniform(self.key, start + i as u64)) as f32;
        }
    }

    fn cost(&self) -> f32 {
        cost::NOISE
    }
}

/// Builds the source a stem plan asks for.
pub fn open(song: &SongPlan, stem: &str, spec: &SourceSpec) -> Result<Box<dyn Source>, StageError> {
    let rate = song.spec.sample_rate;
    let key = stem_key(song.seed, stem);
    Ok(match spec {
        SourceSpec::Tone {
            freq,
            amp,
            wave,
            length,
        } => Box::new(Generated::new(
            Tone::new(*wave, *freq, *amp, rate),
            Frames::from_seconds(length.unwrap_or(song.seconds()), rate),
        )),
        SourceSpec::Drums { amp, hats, length } => Box::new(Generated::new(
            Drums::new(
                song.bpm,
                rate,
                &song.timing.section_start_beats(),
                *amp,
                *hats,
                key,
            ),
            Frames::from_seconds(length.unwrap_or(song.seconds()), rate),
        )),
        SourceSpec::Noise { amp, length } => Box::new(Generated::new(
            Noise { amp: *amp, key },
            Frames::from_seconds(length.unwrap_or(song.seconds()), rate),
        )),
        SourceSpec::Silence { length } => Box::new(Generated::new(
            Silence,
            Frames::from_seconds(length.unwrap_or(song.seconds()), rate),
        )),
        SourceSpec::File { path } => open_file(path, rate, song.spec.channels)?,
    })
}

/// `src` fitted to the song's tempo and the stem's key (SPEC §9): its
/// `source_bpm` and `transpose`.
pub fn fit_tempo(
    src: Box<dyn Source>,
    song: &SongPlan,
    stem: &StemPlan,
) -> Result<Box<dyn Source>, StageError> {
    let ratio = stem.source_bpm.map(|b| b / song.bpm);
    let spec = song.spec;
    fit(src, ratio, stem.transpose, spec.sample_rate, spec.channels)
}

/// `src` (S frames) fitted to the song: `tempo_ratio` = source_bpm / bpm
/// stretches it to exactly round(S · ratio) frames, pitch kept;
/// `semitones` shifts its pitch, duration kept. Unchanged when neither
/// applies.
pub fn fit(
    src: Box<dyn Source>,
    tempo_ratio: Option<f64>,
    semitones: f64,
    rate: u32,
    channels: u16,
) -> Result<Box<dyn Source>, StageError> {
    let ratio = tempo_ratio.unwrap_or(1.0);
    if ratio == 1.0 && semitones == 0.0 {
        return Ok(src);
    }
    let target = Frames((src.len().0 as f64 * ratio).round() as u64);
    let src: Box<dyn Source> = if semitones == 0.0 {
        src
    } else {
        let speed = 2f64.powf(semitones / 12.0);
        Box::new(varispeed::Varispeed::new(src, speed, channels)?)
    };
    Ok(Box::new(Stretched::new(src, target, rate, channels)?))
}

/// An audio file as a source at `rate` with `channels` channels,
/// resampled when its own rate differs.
pub fn open_file(
    path: &std::path::Path,
    rate: u32,
    channels: u16,
) -> Result<Box<dyn Source>, StageError> {
    let file = FileSource::open(path, channels)?;
    let from = file.info().sample_rate;
    Ok(if from == rate {
        Box::new(file)
    } else {
        Box::new(Resampled::new(Box::new(file), from, rate, channels)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(src: &mut dyn Source, block_size: usize, channels: u16) -> Vec<f32> {
        let mut b = Block::new(channels, block_size);
        let mut out = Vec::new();
        while src.read(&mut b).unwrap() > 0 {
            out.extend_from_slice(b.samples());
        }
        out
    }

    #[test]
    fn a_file_is_priced_by_how_it_is_read() {
        // What the scheduler balances threads by: decoding, not the file
        // size, and resampling on top.
        let price = |name: &str| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
            open_file(&path, 48_000, 2).unwrap().cost()
        };
        assert_eq!(price("sine1k-48k-stereo-float.wav"), cost::MAPPED_PCM);
        assert_eq!(price("sine1k-44k-mono.wav"), cost::MAPPED_PCM + cost::RESAMPLE);
        assert_eq!(price("sine1k-48k-stereo.flac"), cost::LOSSLESS);
        assert_eq!(price("sine1k-44k-mono.ogg"), cost::LOSSY + cost::RESAMPLE);
        assert_eq!(price("sine1k-22k-mono.aiff"), cost::DECODED_PCM + cost::RESAMPLE);
    }

    #[test]
    fn noise_is_uniform_bounded_and_independent_of_block_size() {
        let mut a = Generated::new(Noise { amp: 0.5, key: 7 }, Frames(10_000));
        let mut b = Generated::new(Noise { amp: 0.5, key: 7 }, Frames(10_000));
        let x = read_all(&mut a, 1, 1);
        assert_eq!(x, read_all(&mut b, 999, 1));
        assert!(x.iter().all(|v| v.abs() <= 0.5));
        let mean = x.iter().map(|v| *v as f64).sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        // Uniform on [-a, a] has variance a²/3.
        assert!((var - 0.25 / 3.0).abs() < 0.004, "var {var}");
    }

    #[test]
    fn stereo_copies_mono_and_seek_resumes_exactly() {
        let mut s = Generated::new(Noise { amp: 1.0, key: 1 }, Frames(100));
        let all = read_all(&mut s, 64, 2);
        assert_eq!(all.len(), 200);
        assert!(all.chunks(2).all(|f| f[0] == f[1]));
        s.seek(Frames(37)).unwrap();
        let tail = read_all(&mut s, 5, 2);
        assert_eq!(tail, all[74..]);
    }
}
