//! A stem's place in the arrangement (SPEC §9): which sections or bars it
//! plays in, how it restarts and fades, and its loop length in bars. The
//! regions are resolved to song frames here, from the song's timing, so an
//! unknown section or an empty region is a manifest error (exit 2) rather
//! than a failed render, and the renderer only ever sees frame ranges.

use std::ops::Range;

use super::{At, Validator};
use crate::manifest::error::ManifestError;
use crate::manifest::raw::RawStem;
use crate::plan::{AlignMode, Placement, Restart, SourceSpec};
use crate::timing::Timing;
use crate::types::Frames;

/// Default fade at each end of a placed stem's regions, in ms: long enough
/// that a region cut mid-note does not click.
const PLACED_FADE_MS: f64 = 5.0;

/// The song a stem is placed in: its timing and (when known) its duration.
pub(super) type SongTime<'t> = (&'t Timing, Option<f64>);

impl Validator<'_> {
    /// `loop_bars`, if given: at least 1.
    pub(super) fn loop_bars(
        &self,
        at: At<'_>,
        loop_bars: Option<u32>,
    ) -> Result<Option<u32>, ManifestError> {
        match loop_bars {
            Some(0) => Err(self.err(at, Some("loop_bars"), "must be at least 1, got 0")),
            n => Ok(n),
        }
    }

    /// The stem's placement: `None` for a stem that plays the whole song
    /// with no fades.
    pub(super) fn placement(
        &self,
        at: At<'_>,
        raw: &RawStem,
        (source, align): (&SourceSpec, AlignMode),
        song: SongTime<'_>,
    ) -> Result<Option<Placement>, ManifestError> {
        let regions = self.regions(at, raw, song)?;
        let placed = regions.is_some();
        if !placed && raw.restart.is_some() {
            let what = "needs `sections` or `start_bar`/`end_bar` to place the stem";
            return Err(self.err(at, Some("restart"), what));
        }
        let default_fade = if placed { PLACED_FADE_MS } else { 0.0 };
        let fade = |key: &str, v: Option<f64>| {
            let v = v.unwrap_or(default_fade);
            let what = "must be between 0 and 60000 ms";
            self.number(at, key, v, (0.0..=60_000.0).contains(&v), what)
        };
        let fade_in_ms = fade("fade_in_ms", raw.fade_in_ms)?;
        let fade_out_ms = fade("fade_out_ms", raw.fade_out_ms)?;
        if !placed && fade_in_ms == 0.0 && fade_out_ms == 0.0 {
            return Ok(None);
        }
        let placement = Placement {
            // Unplaced but faded: one region, the whole song.
            regions: regions.unwrap_or_else(|| std::iter::once(0..u64::MAX).collect()),
            restart: raw.restart.unwrap_or(if placed {
                Restart::Region
            } else {
                Restart::Song
            }),
            fade_in_ms,
            fade_out_ms,
        };
        self.fits_without_alignment(at, &placement, (source, align), song)?;
        Ok(Some(placement))
    }

    /// The regions `sections` or `start_bar`/`end_bar` choose, in song
    /// frames; `None` when neither is given.
    fn regions(
        &self,
        at: At<'_>,
        raw: &RawStem,
        (timing, duration): SongTime<'_>,
    ) -> Result<Option<Vec<Range<u64>>>, ManifestError> {
        let bars = raw.start_bar.is_some() || raw.end_bar.is_some();
        match &raw.sections {
            Some(_) if bars => {
                let what = "give `sections` or `start_bar`/`end_bar`, not both";
                Err(self.err(at, Some("start_bar"), what))
            }
            Some(names) => self.section_regions(at, names, timing).map(Some),
            None if bars => {
                let target = duration.map(|d| Frames::from_seconds(d, timing.sample_rate).0);
                let region = self.bar_region(at, raw.start_bar, raw.end_bar, timing, target)?;
                Ok(Some(vec![region]))
            }
            None => Ok(None),
        }
    }

    /// The frames of the named sections, sorted, adjacent ones merged.
    fn section_regions(
        &self,
        at: At<'_>,
        names: &[String],
        timing: &Timing,
    ) -> Result<Vec<Range<u64>>, ManifestError> {
        if names.is_empty() {
            return Err(self.err(at, Some("sections"), "must name at least one section"));
        }
        let mut chosen = Vec::new();
        for name in names {
            let Some(s) = timing.sections.iter().find(|s| &s.name == name) else {
                let known: Vec<&str> = timing.sections.iter().map(|s| s.name.as_str()).collect();
                let what = format!(
                    "unknown section {name:?} (the song's sections: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
                return Err(self.err(at, Some("sections"), what));
            };
            chosen.push(s.start_frame..s.end_frame);
        }
        Ok(merge(chosen))
    }

    /// The frames of bars `start_bar..end_bar` (end exclusive; the song's
    /// end when absent), which must start inside the song when its length
    /// is known.
    fn bar_region(
        &self,
        at: At<'_>,
        start_bar: Option<u32>,
        end_bar: Option<u32>,
        timing: &Timing,
        target: Option<u64>,
    ) -> Result<Range<u64>, ManifestError> {
        let start = start_bar.unwrap_or(0);
        if let Some(end) = end_bar.filter(|&e| e <= start) {
            let what = format!("must be after start_bar ({start}), got {end}");
            return Err(self.err(at, Some("end_bar"), what));
        }
        let start_frame = timing.bar_frame(start as u64);
        if let Some(t) = target.filter(|&t| start_frame >= t) {
            let rate = timing.sample_rate;
            let what = format!(
                "bar {start} starts at {:.3} s, past the song's end at {:.3} s",
                Frames(start_frame).seconds(rate),
                Frames(t).seconds(rate)
            );
            let key = if start_bar.is_some() {
                "start_bar"
            } else {
                "end_bar"
            };
            return Err(self.err(at, Some(key), what));
        }
        let end_frame = end_bar.map_or(u64::MAX, |e| timing.bar_frame(e as u64));
        Ok(start_frame..end_frame)
    }

    /// `align = "none"` restarted per region: a generator of fixed
    /// `length` must fit every region to one frame (SPEC §4's tolerance).
    /// A file's length is known only when it is opened (the render checks
    /// it then); a generator without `length` is made to the region's.
    fn fits_without_alignment(
        &self,
        at: At<'_>,
        p: &Placement,
        (source, align): (&SourceSpec, AlignMode),
        (timing, duration): SongTime<'_>,
    ) -> Result<(), ManifestError> {
        if align != AlignMode::None || p.restart != Restart::Region {
            return Ok(());
        }
        let Some(length) = source.length() else {
            return Ok(());
        };
        let rate = timing.sample_rate;
        let s = Frames::from_seconds(length, rate).0;
        let target = duration.map_or(u64::MAX, |d| Frames::from_seconds(d, rate).0);
        for r in p.regions_in(target).iter().filter(|r| r.end != u64::MAX) {
            if s.abs_diff(r.end - r.start) > 1 {
                let what = format!(
                    "\"none\" cannot fit the source ({s} frames) to the region at {:.3} s ({} frames); \
                     choose a strategy or set the source's length",
                    Frames(r.start).seconds(rate),
                    r.end - r.start
                );
                return Err(self.err(at, Some("align"), what));
            }
        }
        Ok(())
    }
}

/// Sorts ranges and merges those that touch or overlap.
fn merge(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn adjacent_and_repeated_sections_merge() {
        assert_eq!(merge(vec![10..20, 0..5, 5..8, 10..20]), vec![0..8, 10..20]);
    }
}
