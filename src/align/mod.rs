//! Alignment (SPEC §4): brings a source of S frames to exactly T frames,
//! streaming, by padding, looping, extending its tail or truncating.
//!
//! Extension is one mechanism for both `loop` and `crossfade`: the output
//! is the source up to its last C frames, then a *seam* (the source's last
//! C frames crossfaded into the start of a loop region), then the loop
//! region's body, then the seam again, and so on. `loop` uses the whole
//! source as its region, `crossfade` only a tail of it. The seam is the same
//! at every repeat, so it is computed once, before streaming starts, from
//! two short reads of the source: memory is bounded by the crossfade length,
//! not by S or T.
//!
//! `strategy` decides what to do (SPEC §4's table), `seam` holds the
//! matching and crossfade arithmetic, and this module streams the result:
//! the rules and the maths can each be read and tested without the phases
//! of a streaming read in the way.

mod seam;
mod strategy;

pub use strategy::Strategy;

use crate::error::StageError;
use crate::plan::AlignMode;
use crate::source::Source;
use crate::types::{Block, Frames};

/// Alignment settings of one stem.
#[derive(Clone, Copy, Debug)]
pub struct AlignSettings {
    pub mode: AlignMode,
    pub rhythmic: bool,
    pub target: Frames,
    pub sample_rate: u32,
    pub crossfade_ms: f64,
    pub fade_ms: f64,
    /// The bar grid a rhythmic `loop` locks to (SPEC §9); `None` keeps the
    /// matched seams of SPEC §4.
    pub grid: Option<Grid>,
}

/// The bar grid of a song, as a rhythmic loop needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Seconds per bar.
    pub bar_seconds: f64,
    /// Loop length in bars; `None`: the source length rounded to the nearest
    /// whole number of bars (at least one).
    pub loop_bars: Option<u32>,
}

/// What alignment decided, for the report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AlignInfo {
    /// The strategy actually applied (serialised as its spec name).
    pub strategy: Strategy,
    pub source_frames: u64,
    /// Seam crossfade length in frames (extension only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seam_frames: Option<u64>,
    /// Normalised correlation of the matched seam (extension only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seam_correlation: Option<f64>,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Source frames `pos..end`, read sequentially.
    Source {
        end: u64,
    },
    /// Seam frame `j` of the precomputed seam.
    Seam {
        j: usize,
    },
    /// Source frames `pos..body_end` served from the cached region.
    Cached {
        pos: u64,
    },
    Zeros,
}

/// A source brought to exactly `target` frames.
pub struct Aligner {
    source: Box<dyn Source>,
    channels: usize,
    target: u64,
    out_pos: u64,
    phase: Phase,
    /// Read-ahead from the source: frames `scratch_pos..scratch.frames()`
    /// are not yet consumed.
    scratch: Block,
    scratch_pos: usize,
    /// Source position of the next sequential read.
    src_pos: u64,
    /// The loop region `region_start..S`, kept in memory when it is at most
    /// `cache_limit` frames; otherwise repeats re-read the source.
    region: Option<Vec<f32>>,
    region_start: u64,
    cache_limit: usize,
    /// Extension: the crossfaded seam (interleaved) and where the body of
    /// each repeat starts in the source.
    seam: Vec<f32>,
    body_start: u64,
    body_end: u64,
    /// Truncation fade: the last `fade` frames of the output.
    fade: u64,
    info: AlignInfo,
}

impl Aligner {
    /// Plans alignment for `source` and positions it at frame 0.
    /// `block_size` sizes the internal read-ahead.
    pub fn new(
        source: Box<dyn Source>,
        channels: u16,
        block_size: usize,
        s: AlignSettings,
    ) -> Result<Aligner, StageError> {
        let limit = (strategy::MAX_TAIL_S * s.sample_rate as f64).round() as usize;
        Aligner::with_cache_limit(source, channels, block_size, s, limit)
    }

    /// As [`Aligner::new`], keeping loop regions of at most `cache_limit`
    /// frames in memory.
    fn with_cache_limit(
        source: Box<dyn Source>,
        channels: u16,
        block_size: usize,
        s: AlignSettings,
        cache_limit: usize,
    ) -> Result<Aligner, StageError> {
        let len = source.len().0;
        let target = s.target.0;
        let strategy = strategy::choose(&s, len)?;
        let mut a = Aligner {
            source,
            channels: channels as usize,
            target,
            out_pos: 0,
            phase: Phase::Source {
                end: len.min(target),
            },
            scratch: Block::new(channels, block_size.max(1)),
            scratch_pos: 0,
            src_pos: 0,
            region: None,
            region_start: 0,
            cache_limit,
            seam: Vec::new(),
            body_start: 0,
            body_end: 0,
            fade: 0,
            info: AlignInfo {
                strategy,
                source_frames: len,
                seam_frames: None,
                seam_correlation: None,
            },
        };
        a.scratch.set_frames(0);
        if strategy == Strategy::Truncate {
            a.fade = Frames::from_seconds(s.fade_ms / 1000.0, s.sample_rate)
                .0
                .min(target);
        } else if strategy.extends() {
            let region = strategy::loop_region(strategy, len, target, s.sample_rate);
            let (c, span) = seam::lengths(region, s.crossfade_ms, s.sample_rate);
            a.plan_seam(len - region, c, span)?;
            a.phase = Phase::Source {
                end: len - c as u64,
            };
        }
        a.source.seek(Frames(0))?;
        Ok(a)
    }

    /// What alignment decided.
    pub fn info(&self) -> &AlignInfo {
        &self.info
    }

    /// Finds the best start for each repeat and precomputes the seam:
    /// the source's last `c` frames faded into the loop region's start,
    /// shifted by the lag (0..=span) of maximum normalised correlation.
    fn plan_seam(&mut self, region_start: u64, c: usize, span: usize) -> Result<(), StageError> {
        let len = self.source.len().0;
        let (outgoing, incoming) = self.read_seam_windows(region_start, c, span)?;
        let m = seam::match_seam(&outgoing, &incoming, self.channels, c, span);
        self.region_start = region_start;
        self.seam = m.samples;
        self.body_start = region_start + (m.lag + c) as u64;
        self.body_end = len - c as u64;
        self.info.seam_frames = Some(c as u64);
        self.info.seam_correlation = Some((m.correlation * 1e6).round() / 1e6);
        Ok(())
    }

    /// Reads the seam's two windows: the source's last `c` frames and the
    /// loop region's first `span + c`. A short region (every crossfade
    /// tail) is read once and kept: its repeats then cost no decoding, and
    /// memory stays bounded.
    fn read_seam_windows(
        &mut self,
        region_start: u64,
        c: usize,
        span: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), StageError> {
        let source = &mut *self.source;
        let len = source.len().0;
        let ch = self.channels;
        let region_len = (len - region_start) as usize;
        if region_len <= self.cache_limit {
            let region = read_range(source, &mut self.scratch, region_start, region_len, ch)?;
            let outgoing = region[(region_len - c) * ch..].to_vec();
            let incoming = region[..(span + c) * ch].to_vec();
            self.region = Some(region);
            return Ok((outgoing, incoming));
        }
        Ok((
            read_range(source, &mut self.scratch, len - c as u64, c, ch)?,
            read_range(source, &mut self.scratch, region_start, span + c, ch)?,
        ))
    }

    /// Copies `frames` frames of the source's sequential stream into `dst`.
    fn pull(&mut self, dst: &mut [f32]) -> Result<(), StageError> {
        let ch = self.channels;
        let mut done = 0;
        while done < dst.len() {
            if self.scratch_pos == self.scratch.frames() {
                self.scratch_pos = 0;
                if self.source.read(&mut self.scratch)? == 0 {
                    return Err(StageError::Invalid(format!(
                        "the source ended before its announced {} frames",
                        self.source.len()
                    )));
                }
            }
            let avail = (self.scratch.frames() - self.scratch_pos) * ch;
            let take = avail.min(dst.len() - done);
            let from = self.scratch_pos * ch;
            dst[done..done + take].copy_from_slice(&self.scratch.samples()[from..from + take]);
            done += take;
            self.scratch_pos += take / ch;
        }
        Ok(())
    }

    fn seek_source(&mut self, pos: u64) -> Result<(), StageError> {
        self.scratch.set_frames(0);
        self.scratch_pos = 0;
        self.source.seek(Frames(pos))
    }

    /// Fills `block` with the next aligned frames; returns how many
    /// (0 once all `target` frames were produced).
    pub fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let ch = self.channels;
        let want = (self.target - self.out_pos).min(block.capacity() as u64) as usize;
        block.set_frames(want);
        let start = self.out_pos;
        let mut filled = 0;
        while filled < want {
            let dst = &mut block.samples_mut()[filled * ch..want * ch];
            filled += match self.phase {
                Phase::Source { end } => self.fill_source(dst, end)?,
                Phase::Seam { j } => self.fill_seam(dst, j)?,
                Phase::Cached { pos } => self.fill_cached(dst, pos),
                Phase::Zeros => {
                    dst.fill(0.0);
                    dst.len() / ch
                }
            };
        }
        self.out_pos += want as u64;
        self.apply_fade(block, start);
        Ok(want)
    }

    /// Source phase: sequential frames up to `end`, then the seam (when
    /// extending) or silence. Returns the frames written to `dst`.
    fn fill_source(&mut self, dst: &mut [f32], end: u64) -> Result<usize, StageError> {
        let ch = self.channels;
        let n = (end - self.src_pos).min((dst.len() / ch) as u64) as usize;
        self.pull(&mut dst[..n * ch])?;
        self.src_pos += n as u64;
        if self.src_pos == end {
            self.phase = if self.info.strategy.extends() {
                Phase::Seam { j: 0 }
            } else {
                Phase::Zeros
            };
        }
        Ok(n)
    }

    /// Seam phase from seam frame `j`, then the next repeat's body (cached
    /// or re-read). Returns the frames written to `dst`.
    fn fill_seam(&mut self, dst: &mut [f32], j: usize) -> Result<usize, StageError> {
        let ch = self.channels;
        let c = self.seam.len() / ch;
        let n = (c - j).min(dst.len() / ch);
        dst[..n * ch].copy_from_slice(&self.seam[j * ch..(j + n) * ch]);
        if j + n < c {
            self.phase = Phase::Seam { j: j + n };
            return Ok(n);
        }
        // The body is never empty: it is at least half the region.
        self.phase = if self.region.is_some() {
            Phase::Cached {
                pos: self.body_start,
            }
        } else {
            self.seek_source(self.body_start)?;
            self.src_pos = self.body_start;
            Phase::Source { end: self.body_end }
        };
        Ok(n)
    }

    /// Cached phase: the body from source frame `pos`, out of the kept
    /// region, then the seam again. Returns the frames written to `dst`.
    fn fill_cached(&mut self, dst: &mut [f32], pos: u64) -> usize {
        let ch = self.channels;
        // Invariant: the Cached phase is entered only when a region was cached.
        let region = self.region.as_ref().expect("cached phase has a region");
        let n = ((self.body_end - pos) as usize).min(dst.len() / ch);
        let from = (pos - self.region_start) as usize * ch;
        dst[..n * ch].copy_from_slice(&region[from..from + n * ch]);
        self.phase = if pos + n as u64 == self.body_end {
            Phase::Seam { j: 0 }
        } else {
            Phase::Cached {
                pos: pos + n as u64,
            }
        };
        n
    }

    /// Raised-cosine fade over the last `fade` frames, ending at zero.
    fn apply_fade(&self, block: &mut Block, start: u64) {
        let fade_start = self.target - self.fade;
        if self.fade == 0 || start + block.frames() as u64 <= fade_start {
            return;
        }
        for (i, frame) in block.frames_mut().enumerate() {
            let pos = start + i as u64;
            if pos >= fade_start {
                let k = (pos - fade_start + 1) as f64 / self.fade as f64;
                let g = (0.5 * (1.0 + (std::f64::consts::PI * k).cos())) as f32;
                frame.iter_mut().for_each(|v| *v *= g);
            }
        }
    }
}

/// Reads `frames` frames starting at `pos` into a new interleaved vector.
fn read_range(
    source: &mut dyn Source,
    scratch: &mut Block,
    pos: u64,
    frames: usize,
    ch: usize,
) -> Result<Vec<f32>, StageError> {
    source.seek(Frames(pos))?;
    let mut out = Vec::with_capacity(frames * ch);
    while out.len() < frames * ch {
        let n = source.read(scratch)?;
        if n == 0 {
            return Err(StageError::Invalid(format!(
                "the source ended before frame {}",
                pos + frames as u64
            )));
        }
        let take = (frames * ch - out.len()).min(n * ch);
        out.extend_from_slice(&scratch.samples()[..take]);
    }
    scratch.set_frames(0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Wave;
    use crate::source::{Generated, Noise, Signal, Tone};

    const RATE: u32 = 48000;

    /// An arbitrary recorded-like signal, for sources that are not generators.
    struct Table(Vec<f32>);
    impl Signal for Table {
        fn render(&mut self, start: u64, out: &mut [f32]) {
            out.copy_from_slice(&self.0[start as usize..start as usize + out.len()]);
        }
    }

    fn tone(freq: f64, frames: u64) -> Box<dyn Source> {
        Box::new(Generated::new(
            Tone::new(Wave::Sine, freq, 0.5, RATE),
            Frames(frames),
        ))
    }

    fn source_samples(mut s: Box<dyn Source>) -> Vec<f32> {
        let mut b = Block::new(1, 4096);
        let mut v = Vec::new();
        while s.read(&mut b).unwrap() > 0 {
            v.extend_from_slice(b.samples());
        }
        v
    }

    fn align(
        src: Box<dyn Source>,
        mode: AlignMode,
        target: u64,
        block: usize,
    ) -> (Vec<f32>, AlignInfo) {
        let settings = AlignSettings {
            mode,
            rhythmic: false,
            target: Frames(target),
            sample_rate: RATE,
            crossfade_ms: 50.0,
            grid: None,
            fade_ms: 10.0,
        };
        let mut a = Aligner::new(src, 1, block, settings).unwrap();
        let mut b = Block::new(1, block);
        let mut out = Vec::new();
        while a.read(&mut b).unwrap() > 0 {
            out.extend_from_slice(b.samples());
        }
        (out, a.info().clone())
    }

    fn max_step(x: &[f32]) -> f32 {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    }

    fn windowed_rms(x: &[f32], window: usize) -> Vec<f64> {
        x.chunks(window)
            .filter(|c| c.len() == window)
            .map(|c| (c.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / window as f64).sqrt())
            .collect()
    }

    /// SPEC §4's "no click" and "no dip" measures on the extension.
    fn assert_no_click_no_dip(source: &[f32], out: &[f32]) {
        let s = source.len();
        let extension = &out[s.saturating_sub(2400)..];
        let limit = 1.5 * max_step(source);
        assert!(
            max_step(extension) <= limit,
            "click: step {} > {limit}",
            max_step(extension)
        );
        let window = (RATE / 50) as usize; // 20 ms
        // Sliding windows (hop 1 ms) so a dip between hop points is caught.
        let mut src_rms = windowed_rms(source, window);
        src_rms.sort_by(f64::total_cmp);
        let median = src_rms[src_rms.len() / 2];
        let hop = window / 20;
        for start in (s.saturating_sub(window)..out.len() - window).step_by(hop) {
            let r = windowed_rms(&out[start..start + window], window)[0];
            assert!(
                r >= 0.5 * median,
                "dip at frame {start}: rms {r} < half of {median}"
            );
        }
    }

    #[test]
    fn zero_pad_keeps_the_source_and_pads_exact_zeros() {
        let src = source_samples(tone(440.0, 10_000));
        let (out, info) = align(tone(440.0, 10_000), AlignMode::ZeroPad, 12_345, 1000);
        assert_eq!(info.strategy, Strategy::ZeroPad);
        assert_eq!(out.len(), 12_345);
        assert_eq!(&out[..10_000], &src[..]);
        assert!(out[10_000..].iter().all(|v| *v == 0.0));
    }

    #[test]
    fn truncate_keeps_the_head_exact_and_fades_to_zero() {
        let src = source_samples(tone(440.0, 50_000));
        let (out, info) = align(tone(440.0, 50_000), AlignMode::Truncate, 40_000, 777);
        assert_eq!(info.strategy, Strategy::Truncate);
        assert_eq!(out.len(), 40_000);
        let fade = 480; // 10 ms
        assert_eq!(&out[..40_000 - fade], &src[..40_000 - fade]);
        assert_eq!(out[39_999], 0.0);
        // The fade only ever attenuates.
        for i in 40_000 - fade..40_000 {
            assert!(out[i].abs() <= src[i].abs());
        }
    }

    #[test]
    fn loop_is_seamless_and_exact_before_its_first_seam() {
        // 110 Hz does not divide the length: the raw loop point is off-phase.
        let s = 100_003;
        let src = source_samples(tone(110.0, s));
        let (out, info) = align(tone(110.0, s), AlignMode::Loop, 350_000, 4096);
        assert_eq!(info.strategy, Strategy::Loop);
        assert_eq!(out.len(), 350_000);
        let c = 2400;
        assert_eq!(&out[..s as usize - c], &src[..s as usize - c]);
        assert_no_click_no_dip(&src, &out);
    }

    #[test]
    fn loop_seam_does_not_cancel_a_tone_in_anti_phase() {
        // 100 Hz at 48 kHz: a period of 480 frames. A source of k periods
        // plus half a period ends in anti-phase with its own start: a naive
        // crossfade there cancels to silence.
        let s = 480 * 200 + 240;
        let src = source_samples(tone(100.0, s));
        let (out, info) = align(tone(100.0, s), AlignMode::Loop, 3 * s, 1000);
        assert!(info.seam_correlation.unwrap() > 0.999, "{info:?}");
        assert_no_click_no_dip(&src, &out);
    }

    #[test]
    fn crossfade_extension_repeats_the_tail_without_clicks_or_dips() {
        let s = 96_000;
        let src = source_samples(tone(880.0, s));
        let (out, info) = align(
            tone(880.0, s),
            AlignMode::Crossfade,
            96_000 + 7 * 48_000,
            64,
        );
        assert_eq!(info.strategy, Strategy::Crossfade);
        assert_eq!(&out[..s as usize - 2400], &src[..s as usize - 2400]);
        assert_no_click_no_dip(&src, &out);
    }

    #[test]
    fn loop_of_noise_keeps_its_level_across_seams() {
        // Uncorrelated seams need an equal-power fade, not a linear one.
        let s = 48_000;
        let noise = || -> Box<dyn Source> {
            Box::new(Generated::new(Noise { amp: 0.5, key: 3 }, Frames(s)))
        };
        let src = source_samples(noise());
        let (out, _) = align(noise(), AlignMode::Loop, 200_000, 4096);
        let window = 960;
        let mut rms = windowed_rms(&src, window);
        rms.sort_by(f64::total_cmp);
        let median = rms[rms.len() / 2];
        for (i, r) in windowed_rms(&out, window).iter().enumerate() {
            assert!(*r > 0.8 * median, "window {i}: {r} vs median {median}");
        }
    }

    #[test]
    fn output_does_not_depend_on_block_size() {
        let table: Vec<f32> = (0..30_001)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mk = || -> Box<dyn Source> {
            Box::new(Generated::new(Table(table.clone()), Frames(30_001)))
        };
        for mode in [
            AlignMode::Loop,
            AlignMode::Crossfade,
            AlignMode::ZeroPad,
            AlignMode::Auto,
        ] {
            let (reference, _) = align(mk(), mode, 100_000, 4096);
            for block in [1, 64, 1000] {
                assert_eq!(
                    align(mk(), mode, 100_000, block).0,
                    reference,
                    "{mode:?} at {block}"
                );
            }
        }
        let (reference, _) = align(mk(), AlignMode::Truncate, 20_000, 4096);
        assert_eq!(align(mk(), AlignMode::Truncate, 20_000, 1).0, reference);
    }

    #[test]
    fn cached_and_re_read_loop_regions_give_the_same_output() {
        let settings = AlignSettings {
            mode: AlignMode::Loop,
            rhythmic: false,
            target: Frames(50_000),
            sample_rate: RATE,
            crossfade_ms: 50.0,
            grid: None,
            fade_ms: 10.0,
        };
        let render = |cache_limit: usize| {
            let mut a =
                Aligner::with_cache_limit(tone(97.0, 12_345), 1, 1000, settings, cache_limit)
                    .unwrap();
            assert_eq!(a.region.is_some(), cache_limit > 0);
            let mut b = Block::new(1, 1000);
            let mut out = Vec::new();
            while a.read(&mut b).unwrap() > 0 {
                out.extend_from_slice(b.samples());
            }
            out
        };
        assert_eq!(render(96_000), render(0));
    }

    #[test]
    fn auto_chooses_as_the_spec_says() {
        let settings = |rhythmic, target| AlignSettings {
            mode: AlignMode::Auto,
            rhythmic,
            target: Frames(target),
            sample_rate: RATE,
            crossfade_ms: 50.0,
            grid: None,
            fade_ms: 10.0,
        };
        let pick = |rhythmic, len, target| {
            Aligner::new(tone(100.0, len), 1, 64, settings(rhythmic, target))
                .unwrap()
                .info()
                .strategy
        };
        assert_eq!(pick(false, 48_000, 48_000), Strategy::Copy);
        assert_eq!(pick(false, 48_000, 40_000), Strategy::Truncate);
        assert_eq!(pick(true, 48_000, 48_000 + 23_999), Strategy::ZeroPad);
        assert_eq!(pick(true, 48_000, 48_000 + 24_000), Strategy::Loop);
        assert_eq!(pick(false, 48_000, 48_000 + 24_000), Strategy::Crossfade);
    }

    #[test]
    fn none_tolerates_one_frame_and_refuses_more() {
        let settings = |target| AlignSettings {
            mode: AlignMode::None,
            rhythmic: false,
            target: Frames(target),
            sample_rate: RATE,
            crossfade_ms: 50.0,
            grid: None,
            fade_ms: 10.0,
        };
        let padded = Aligner::new(tone(100.0, 1000), 1, 64, settings(1001)).unwrap();
        assert_eq!(padded.info().strategy, Strategy::None);
        assert!(Aligner::new(tone(100.0, 1000), 1, 64, settings(999)).is_ok());
        let e = Aligner::new(tone(100.0, 1000), 1, 64, settings(1002))
            .err()
            .unwrap();
        assert!(e.to_string().contains("1000 frames"), "{e}");
    }
}
