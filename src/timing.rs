//! Song timing: where each section starts and ends, in beats, bars, seconds
//! and frames (SPEC §1.1, §9).
//!
//! Every position is computed from its beat index (beat k starts at frame
//! `round(k · 60/bpm · sample_rate)`), never by adding up section lengths
//! in seconds or frames: rounding then never accumulates, and a bar line
//! computed anywhere else (placement, the loop grid) lands on the very
//! frame the timing table shows.

use serde::Serialize;

use crate::types::Frames;

/// A time signature (SPEC §9): `beats` per bar, each a 1/`unit` note;
/// `bpm` counts those notes. Serialised as its manifest spelling, `"6/8"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meter {
    pub beats: u32,
    pub unit: u32,
}

impl Default for Meter {
    fn default() -> Meter {
        Meter { beats: 4, unit: 4 }
    }
}

impl Serialize for Meter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for Meter {
    type Err = String;

    /// Parses `"N/D"`: numerator 1 to 32, denominator 1, 2, 4, 8 or 16.
    fn from_str(text: &str) -> Result<Meter, String> {
        let bad = || format!("{text:?} is not a meter like \"4/4\" or \"6/8\"");
        let (n, d) = text.split_once('/').ok_or_else(bad)?;
        let beats: u32 = n.trim().parse().map_err(|_| bad())?;
        let unit: u32 = d.trim().parse().map_err(|_| bad())?;
        if !(1..=32).contains(&beats) {
            return Err(format!(
                "{text:?}: the numerator (beats per bar) must be 1 to 32"
            ));
        }
        if ![1, 2, 4, 8, 16].contains(&unit) {
            return Err(format!(
                "{text:?}: the denominator must be 1, 2, 4, 8 or 16"
            ));
        }
        Ok(Meter { beats, unit })
    }
}

impl Meter {
    /// Seconds of one bar at `bpm`.
    pub fn bar_seconds(self, bpm: f64) -> f64 {
        self.beats as f64 * 60.0 / bpm
    }
}

impl std::fmt::Display for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.beats, self.unit)
    }
}

/// A named run of beats, as the manifest gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub name: String,
    pub beats: u32,
}

/// The frame at which beat `k` starts: `round(k · 60/bpm · sample_rate)`.
pub fn beat_frame(k: u64, bpm: f64, sample_rate: u32) -> u64 {
    Frames::from_seconds(k as f64 * (60.0 / bpm), sample_rate).0
}

/// Where one section falls in the song.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SectionTiming {
    pub name: String,
    pub beats: u32,
    /// Length in bars: `beats / numerator`, fractional when the section is
    /// not a whole number of bars.
    pub bars: f64,
    /// Start in seconds.
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    pub start_frame: u64,
    pub end_frame: u64,
    /// 0-based beat at which the section starts.
    pub start_beat: u64,
    /// 0-based bar at which the section starts (`start_beat / numerator`,
    /// fractional after a section that is not whole bars).
    pub start_bar: f64,
}

/// The timing of a whole song.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timing {
    pub bpm: f64,
    pub meter: Meter,
    pub sample_rate: u32,
    pub sections: Vec<SectionTiming>,
}

/// Sections end after the song does.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("sections end at {end:.3} s ({beats} beats), after the song's duration of {duration:.3} s")]
pub struct PastDuration {
    pub end: f64,
    pub beats: u64,
    pub duration: f64,
}

impl Timing {
    /// Lays the sections end to end from beat 0, in 4/4.
    pub fn new(bpm: f64, sample_rate: u32, sections: &[Section]) -> Timing {
        Timing::with_meter(bpm, Meter::default(), sample_rate, sections)
    }

    /// Lays the sections end to end from beat 0, with bars of `meter`.
    pub fn with_meter(bpm: f64, meter: Meter, sample_rate: u32, sections: &[Section]) -> Timing {
        let beat_seconds = 60.0 / bpm;
        let per_bar = meter.beats as f64;
        let mut beat = 0u64;
        let sections = sections
            .iter()
            .map(|s| {
                let end_beat = beat + s.beats as u64;
                let t = SectionTiming {
                    name: s.name.clone(),
                    beats: s.beats,
                    bars: s.beats as f64 / per_bar,
                    start: beat as f64 * beat_seconds,
                    end: end_beat as f64 * beat_seconds,
                    start_frame: beat_frame(beat, bpm, sample_rate),
                    end_frame: beat_frame(end_beat, bpm, sample_rate),
                    start_beat: beat,
                    start_bar: beat as f64 / per_bar,
                };
                beat = end_beat;
                t
            })
            .collect();
        Timing {
            bpm,
            meter,
            sample_rate,
            sections,
        }
    }

    /// The frame at which 0-based bar `b` starts (beat `b · numerator`).
    pub fn bar_frame(&self, b: u64) -> u64 {
        beat_frame(b * self.meter.beats as u64, self.bpm, self.sample_rate)
    }

    /// Total beats of all sections.
    pub fn total_beats(&self) -> u64 {
        self.sections
            .last()
            .map_or(0, |s| s.start_beat + s.beats as u64)
    }

    /// End of the last section in frames.
    pub fn end_frame(&self) -> Frames {
        Frames(self.sections.last().map_or(0, |s| s.end_frame))
    }

    /// Checks the sections against a duration; on success returns the
    /// warning for an unassigned tail, if any.
    pub fn check_duration(&self, duration: f64) -> Result<Option<String>, PastDuration> {
        let target = Frames::from_seconds(duration, self.sample_rate);
        let end = self.end_frame();
        if end > target {
            return Err(PastDuration {
                end: end.seconds(self.sample_rate),
                beats: self.total_beats(),
                duration,
            });
        }
        if end < target && !self.sections.is_empty() {
            let tail = Frames(target.0 - end.0);
            return Ok(Some(format!(
                "sections end at {:.3} s: the last {:.3} s ({} frames) belong to no section",
                end.seconds(self.sample_rate),
                tail.seconds(self.sample_rate),
                tail
            )));
        }
        Ok(None)
    }

    /// Start beats of each section, for generators that follow the form.
    pub fn section_start_beats(&self) -> Vec<u64> {
        self.sections.iter().map(|s| s.start_beat).collect()
    }

    /// A fixed-width table for terminals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<12} {:>6} {:>7} {:>10} {:>10} {:>12} {:>12} {:>10} {:>9}\n",
            "section",
            "beats",
            "bars",
            "start s",
            "end s",
            "start frame",
            "end frame",
            "start beat",
            "start bar"
        );
        for s in &self.sections {
            out.push_str(&format!(
                "{:<12} {:>6} {:>7} {:>10.3} {:>10.3} {:>12} {:>12} {:>10} {:>9}\n",
                s.name,
                s.beats,
                bars(s.bars),
                s.start,
                s.end,
                s.start_frame,
                s.end_frame,
                s.start_beat,
                bars(s.start_bar)
            ));
        }
        out
    }
}

/// A bar count for the table: whole numbers plain, others to 3 decimals.
fn bars(b: f64) -> String {
    if b.fract() == 0.0 {
        format!("{b}")
    } else {
        format!("{b:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(spec: &[(&str, u32)]) -> Vec<Section> {
        spec.iter()
            .map(|(n, b)| Section {
                name: n.to_string(),
                beats: *b,
            })
            .collect()
    }

    #[test]
    fn sections_are_laid_end_to_end() {
        let t = Timing::new(120.0, 48000, &sections(&[("intro", 16), ("verse", 32)]));
        assert_eq!(t.sections[1].start, 8.0);
        assert_eq!(t.sections[1].end, 24.0);
        assert_eq!(t.sections[1].start_frame, 384_000);
        assert_eq!(t.sections[1].end_frame, 1_152_000);
        assert_eq!(t.sections[1].start_beat, 16);
        assert_eq!(t.total_beats(), 48);
    }

    #[test]
    fn frames_round_at_odd_tempos() {
        // 1 beat at 7 bpm = 60/7 s = 8.571428... s -> 411428.57 frames at 48k.
        let t = Timing::new(7.0, 48000, &sections(&[("a", 1)]));
        assert_eq!(t.sections[0].end_frame, 411_429);
    }

    #[test]
    fn meters_parse_and_give_bars() {
        let m: Meter = "6/8".parse().unwrap();
        assert_eq!(m, Meter { beats: 6, unit: 8 });
        for bad in ["5/3", "0/4", "33/4", "4", "a/4", "4/0"] {
            assert!(bad.parse::<Meter>().is_err(), "{bad}");
        }
        let t = Timing::with_meter(
            90.0,
            "3/4".parse().unwrap(),
            48000,
            &sections(&[("a", 6), ("b", 4)]),
        );
        assert_eq!(t.sections[0].bars, 2.0);
        assert_eq!(t.sections[1].start_bar, 2.0);
        assert!((t.sections[1].bars - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.bar_frame(2), 192_000, "6 beats of 2/3 s");
    }

    #[test]
    fn past_duration_is_an_error_and_short_is_a_warning() {
        let t = Timing::new(120.0, 48000, &sections(&[("a", 8)]));
        assert!(t.check_duration(3.9).is_err());
        assert_eq!(t.check_duration(4.0), Ok(None));
        assert!(t.check_duration(5.0).unwrap().unwrap().contains("1.000 s"));
    }
}
