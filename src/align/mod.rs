//! Alignment (SPEC §4, §9): brings a source of S frames to exactly T
//! frames, streaming, by padding, looping, extending its tail or
//! truncating.
//!
//! Extension is one mechanism for both `loop` and `crossfade`: the output
//! is the source up to its last C frames, then a *seam* (the source's last
//! C frames crossfaded into the start of a loop region), then the loop
//! region's body, then the seam again, and so on. `loop` uses the whole
//! source as its region, `crossfade` only a tail of it. The seam is the same
//! at every repeat, so it is computed once, before streaming starts, from
//! two short reads of the source: memory is bounded by the crossfade length,
//! not by S or T. A source that ends in a release is extended the same way
//! up to its release, with the last two seams placed so the release plays
//! once, at the very end (`release`). A rhythmic loop does not use seams
//! at all: it repeats on the bar grid (`grid`).
//!
//! `strategy` decides what to do (SPEC §4's table), `seam` holds the
//! matching and crossfade arithmetic, `reader` the source reads, and this
//! module streams the result: the rules and the maths can each be read and
//! tested without the phases of a streaming read in the way.

mod grid;
mod reader;
mod release;
mod seam;
mod strategy;

pub use grid::Grid;
pub use strategy::Strategy;

use crate::error::StageError;
use crate::plan::AlignMode;
use crate::source::Source;
use crate::types::{Block, Frames};
use grid::GridLoop;
use reader::SourceReader;
use release::FinalSeam;

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

/// What alignment decided, for the report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AlignInfo {
    /// The strategy actually applied (serialised as its spec name).
    pub strategy: Strategy,
    pub source_frames: u64,
    /// Seam crossfade length in frames (extension with seams only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seam_frames: Option<u64>,
    /// Normalised correlation of the matched seam (the worst one when a
    /// release made the last two differ; extension with seams only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seam_correlation: Option<f64>,
    /// Frames from one repeat's start to the next (looped stems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loop_frames: Option<u64>,
    /// Whether the loop is locked to the bar grid (looped stems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<bool>,
    /// Frames of the release played once at the end (`crossfade` only; 0
    /// when the source has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_frames: Option<u64>,
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
    reader: SourceReader,
    channels: usize,
    target: u64,
    out_pos: u64,
    phase: Phase,
    /// The loop region `region_start..region_end`, kept in memory when it
    /// is at most `cache_limit` frames; otherwise repeats re-read the
    /// source.
    region: Option<Vec<f32>>,
    region_start: u64,
    cache_limit: usize,
    /// Extension: the crossfaded seam (interleaved) and where the body of
    /// each repeat starts and ends in the source.
    seam: Vec<f32>,
    body_start: u64,
    body_end: u64,
    /// Sustain and release: regular seams left before `last`, the final
    /// seams (in reverse order of use) and where the release ends (S).
    regular_left: Option<u64>,
    last: Vec<FinalSeam>,
    /// A grid-locked loop plays instead of the phases above.
    grid: Option<GridLoop>,
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
            reader: SourceReader::new(source, channels, block_size),
            channels: channels as usize,
            target,
            out_pos: 0,
            phase: Phase::Source {
                end: len.min(target),
            },
            region: None,
            region_start: 0,
            cache_limit,
            seam: Vec::new(),
            body_start: 0,
            body_end: 0,
            regular_left: None,
            last: Vec::new(),
            grid: None,
            fade: 0,
            info: AlignInfo {
                strategy,
                source_frames: len,
                seam_frames: None,
                seam_correlation: None,
                loop_frames: None,
                grid: None,
                release_frames: None,
            },
        };
        match (strategy, s.grid) {
            (Strategy::Truncate, _) => {
                a.fade = Frames::from_seconds(s.fade_ms / 1000.0, s.sample_rate)
                    .0
                    .min(target);
            }
            (Strategy::Loop, Some(grid)) => {
                let g = GridLoop::new(channels, len, s.sample_rate, grid, s.crossfade_ms);
                a.info.loop_frames = Some(g.loop_frames());
                a.info.grid = Some(true);
                a.grid = Some(g);
            }
            (Strategy::Loop, None) => a.plan_extension(&s, len, 0)?,
            (Strategy::Crossfade, _) => {
                let release = release::detect(&mut a.reader, s.sample_rate, a.channels)?;
                a.plan_extension(&s, len, release)?;
            }
            _ => {}
        }
        a.reader.seek(0)?;
        Ok(a)
    }

    /// What alignment decided.
    pub fn info(&self) -> &AlignInfo {
        &self.info
    }

    /// The source's estimated CPU time per frame
    /// ([`Source::cost`]); alignment itself
    /// (copies, a crossfade per seam) adds next to nothing.
    pub fn cost(&self) -> f32 {
        self.reader.cost()
    }

    /// Plans a seamed extension of the source's first `len - release`
    /// frames (its body), ending in the release when there is one.
    fn plan_extension(
        &mut self,
        s: &AlignSettings,
        len: u64,
        release: u64,
    ) -> Result<(), StageError> {
        let strategy = self.info.strategy;
        let body = len - release;
        let target = self.target - release;
        let region = strategy::loop_region(strategy, body, target, s.sample_rate);
        let (c, span) = seam::lengths(region, s.crossfade_ms, s.sample_rate);
        let lag = self.plan_seam(body - region, body, c, span)?;
        if release > 0 && !self.plan_release(c, span, lag)? {
            // Too short a gap for the final seams: extend the whole source.
            self.region = None;
            return self.plan_extension(s, len, 0);
        }
        if strategy == Strategy::Crossfade {
            self.info.release_frames = Some(release);
        } else {
            self.info.loop_frames = Some(body - c as u64 - (body - region) - lag as u64);
            self.info.grid = Some(false);
        }
        self.phase = Phase::Source {
            end: body - c as u64,
        };
        Ok(())
    }

    /// Finds the best start for each repeat and precomputes the seam: the
    /// last `c` frames before `end` faded into the loop region's start,
    /// shifted by the lag (0..=span) of maximum normalised correlation.
    /// Returns that lag.
    fn plan_seam(
        &mut self,
        region_start: u64,
        end: u64,
        c: usize,
        span: usize,
    ) -> Result<usize, StageError> {
        let (outgoing, incoming) = self.read_seam_windows(region_start, end, c, span)?;
        let m = seam::match_seam(&outgoing, &incoming, self.channels, c, span);
        self.region_start = region_start;
        self.seam = m.samples;
        self.body_start = region_start + (m.lag + c) as u64;
        self.body_end = end - c as u64;
        self.info.seam_frames = Some(c as u64);
        self.info.seam_correlation = Some((m.correlation * 1e6).round() / 1e6);
        Ok(m.lag)
    }

    /// Plans the last two seams so the release plays once at the end;
    /// `false` (no release handling) when the region is not cached or the
    /// gap is too short for them.
    fn plan_release(&mut self, c: usize, span: usize, lag: usize) -> Result<bool, StageError> {
        let Some(region) = self.region.as_deref() else {
            return Ok(false);
        };
        let ext = self.target - self.reader.len();
        let Some(plan) = release::plan_sustain(region, self.channels, c, span, lag, ext) else {
            return Ok(false);
        };
        let worst = plan.last.iter().map(|s| s.correlation);
        let used = if plan.regular > 0 {
            self.info.seam_correlation
        } else {
            None
        };
        let worst = worst.chain(used).fold(f64::INFINITY, f64::min);
        self.info.seam_correlation = Some((worst * 1e6).round() / 1e6);
        self.regular_left = Some(plan.regular);
        self.last = plan.last.into_iter().rev().collect();
        Ok(true)
    }

    /// Reads the seam's two windows: the last `c` frames before `end` and
    /// the loop region's first `span + c`. A short region (every crossfade
    /// tail) is read once and kept: its repeats then cost no decoding, and
    /// memory stays bounded.
    fn read_seam_windows(
        &mut self,
        region_start: u64,
        end: u64,
        c: usize,
        span: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), StageError> {
        let ch = self.channels;
        let region_len = (end - region_start) as usize;
        if region_len <= self.cache_limit {
            let region = self.reader.read_range(region_start, region_len)?;
            let outgoing = region[(region_len - c) * ch..].to_vec();
            let incoming = region[..(span + c) * ch].to_vec();
            self.region = Some(region);
            return Ok((outgoing, incoming));
        }
        Ok((
            self.reader.read_range(end - c as u64, c)?,
            self.reader.read_range(region_start, span + c)?,
        ))
    }

    /// Fills `block` with the next aligned frames; returns how many
    /// (0 once all `target` frames were produced).
    pub fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let ch = self.channels;
        let want = (self.target - self.out_pos).min(block.capacity() as u64) as usize;
        block.set_frames(want);
        let start = self.out_pos;
        if let Some(g) = self.grid.as_mut() {
            g.fill(&mut self.reader, block.samples_mut())?;
            self.out_pos += want as u64;
            return Ok(want);
        }
        let mut filled = 0;
        if let Phase::Source { end } = self.phase
            && want > 0
            && end - self.reader.pos >= want as u64
        {
            // The whole block from the source: no copy (see `pull_block`).
            self.reader.pull_block(block)?;
            self.end_of_source(end);
            filled = want;
        }
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
        let n = (end - self.reader.pos).min((dst.len() / ch) as u64) as usize;
        self.reader.pull(&mut dst[..n * ch])?;
        self.end_of_source(end);
        Ok(n)
    }

    /// After a read up to `end`: on to the seam (when extending) or
    /// silence once the reader got there.
    fn end_of_source(&mut self, end: u64) {
        if self.reader.pos == end {
            self.phase = if self.info.strategy.extends() {
                self.next_seam();
                Phase::Seam { j: 0 }
            } else {
                Phase::Zeros
            };
        }
    }

    /// Picks the seam that starts now: the regular one, or, once the
    /// regular ones of a sustain loop are used up, the next final one
    /// (whose repeat plays on to the end of the source).
    fn next_seam(&mut self) {
        match self.regular_left {
            Some(0) => {
                if let Some(s) = self.last.pop() {
                    self.seam = s.samples;
                    self.body_start = self.region_start + (s.incoming + self.seam_len()) as u64;
                    if self.last.is_empty() {
                        self.body_end = self.reader.len();
                    }
                }
            }
            Some(n) => self.regular_left = Some(n - 1),
            None => {}
        }
    }

    fn seam_len(&self) -> usize {
        self.seam.len() / self.channels
    }

    /// Seam phase from seam frame `j`, then the next repeat's body (cached
    /// or re-read). Returns the frames written to `dst`.
    fn fill_seam(&mut self, dst: &mut [f32], j: usize) -> Result<usize, StageError> {
        let ch = self.channels;
        let c = self.seam_len();
        let n = (c - j).min(dst.len() / ch);
        dst[..n * ch].copy_from_slice(&self.seam[j * ch..(j + n) * ch]);
        if j + n < c {
            self.phase = Phase::Seam { j: j + n };
            return Ok(n);
        }
        // The body is never empty: it is at least half the region. A
        // repeat that plays on past the cached region is re-read.
        let cached_end =
            self.region_start + self.region.as_ref().map_or(0, |r| r.len() / ch) as u64;
        self.phase = if self.region.is_some() && self.body_end <= cached_end {
            Phase::Cached {
                pos: self.body_start,
            }
        } else {
            self.reader.seek(self.body_start)?;
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
            self.next_seam();
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

    fn settings(mode: AlignMode, target: u64) -> AlignSettings {
        AlignSettings {
            mode,
            rhythmic: false,
            target: Frames(target),
            sample_rate: RATE,
            crossfade_ms: 50.0,
            grid: None,
            fade_ms: 10.0,
        }
    }

    fn align(
        src: Box<dyn Source>,
        mode: AlignMode,
        target: u64,
        block: usize,
    ) -> (Vec<f32>, AlignInfo) {
        align_with(src, settings(mode, target), block)
    }

    fn align_with(
        src: Box<dyn Source>,
        settings: AlignSettings,
        block: usize,
    ) -> (Vec<f32>, AlignInfo) {
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
        // Grid-locked loops (longer and shorter than their bars) and a
        // sustain loop ending in a release.
        for bar_seconds in [0.3, 0.35] {
            let grid = grid_settings(bar_seconds, None, 100_000);
            let (reference, info) = align_with(mk(), grid, 4096);
            assert_eq!(info.grid, Some(true));
            for block in [1, 64, 1000] {
                assert_eq!(align_with(mk(), grid, block).0, reference, "{bar_seconds}");
            }
        }
        let (reference, info) = align(released(), AlignMode::Crossfade, 150_000, 4096);
        assert!(info.release_frames.unwrap() > 0);
        for block in [1, 64, 1000] {
            assert_eq!(
                align(released(), AlignMode::Crossfade, 150_000, block).0,
                reference
            );
        }
    }

    fn grid_settings(bar_seconds: f64, loop_bars: Option<u32>, target: u64) -> AlignSettings {
        AlignSettings {
            grid: Some(Grid {
                bar_seconds,
                loop_bars,
            }),
            rhythmic: true,
            ..settings(AlignMode::Loop, target)
        }
    }

    /// Distinct values, so any misplaced frame shows.
    fn ramp(frames: u64) -> Box<dyn Source> {
        let v: Vec<f32> = (0..frames).map(|i| 1.0 + i as f32).collect();
        Box::new(Generated::new(Table(v), Frames(frames)))
    }

    #[test]
    fn grid_loop_starts_every_repeat_on_its_frame() {
        // 0.3 s bars at 48 kHz: 14 400 frames; a 28 000-frame source is
        // two bars (28 800) minus 800 frames: silence fills each repeat.
        let target = 200_000;
        let (out, info) = align_with(ramp(28_000), grid_settings(0.3, None, target), 333);
        assert_eq!((info.loop_frames, info.grid), (Some(28_800), Some(true)));
        for (i, v) in out.iter().enumerate() {
            let d = i % 28_800;
            let want = if d < 28_000 { 1.0 + d as f32 } else { 0.0 };
            assert_eq!(*v, want, "frame {i}");
        }
    }

    #[test]
    fn grid_loop_fades_the_overhang_into_the_next_repeat() {
        // Bars of 0.31 s: 14 880 frames, a one-bar loop (loop_bars = 1) of
        // a 16 000-frame source: 1 120 frames past the loop, faded over
        // 50 ms (2 400 frames) but cut at the source's end.
        let settings = AlignSettings {
            crossfade_ms: 10.0, // 480 frames: the fade ends at zero.
            ..grid_settings(0.31, Some(1), 100_000)
        };
        let (out, info) = align_with(ramp(16_000), settings, 1000);
        assert_eq!(info.loop_frames, Some(14_880));
        for k in 0..6u64 {
            let start = (k as f64 * 0.31 * 48_000.0).round() as usize;
            for d in 0..14_880.min(out.len() - start) {
                let mut want = 1.0 + d as f64;
                if k > 0 && d < 480 {
                    let g = 0.5 * (1.0 + (std::f64::consts::PI * d as f64 / 480.0).cos());
                    want += (1.0 + (14_880 + d) as f64) as f32 as f64 * g;
                }
                let got = out[start + d] as f64;
                assert!(
                    (got - want).abs() <= want * 1e-6,
                    "repeat {k} frame {d}: {got} vs {want}"
                );
            }
        }
    }

    /// 2 s of a 220 Hz tone: 1.5 s sustained, then a 0.5 s exponential
    /// release.
    fn released() -> Box<dyn Source> {
        let v: Vec<f32> = (0..96_000)
            .map(|i| {
                let t = i as f64 / RATE as f64;
                let env = if t < 1.5 {
                    1.0
                } else {
                    (-(t - 1.5) / 0.1).exp()
                };
                (0.5 * env * (std::f64::consts::TAU * 220.0 * t).sin()) as f32
            })
            .collect();
        Box::new(Generated::new(Table(v), Frames(96_000)))
    }

    #[test]
    fn crossfade_sustains_the_body_and_plays_the_release_once_at_the_end() {
        let src = source_samples(released());
        let target = 300_000;
        let (out, info) = align(released(), AlignMode::Crossfade, target, 1000);
        let rel = info.release_frames.unwrap() as usize;
        // The true release is 24 000 frames; detection starts it at most
        // a few 50 ms windows early.
        assert!((24_000..=24_000 + 3 * 2400).contains(&rel), "{rel}");
        assert_eq!(&out[target as usize - rel..], &src[96_000 - rel..]);
        // No click, no dip, from the first seam to the release.
        assert_no_click_no_dip(&src[..60_000], &out[..target as usize - 24_000]);
    }

    #[test]
    fn crossfade_of_a_source_without_release_reports_zero() {
        let (_, info) = align(tone(880.0, 96_000), AlignMode::Crossfade, 200_000, 4096);
        assert_eq!(info.release_frames, Some(0));
        assert_eq!((info.loop_frames, info.grid), (None, None));
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
