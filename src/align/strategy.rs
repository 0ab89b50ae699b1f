//! Which strategy a stem gets (SPEC §4's table): the `auto` rules, the
//! `none` tolerance of one frame, and how much of the source an extension
//! repeats. Kept apart from the streaming so the rules can be read, and
//! tested, as the table they implement.
//!
//! The decision is an enum, not a string, so every use is checked by the
//! compiler; it still prints and serialises as the spec's strategy names,
//! which report.json, overview.svg and the `align` command show.

use super::AlignSettings;
use crate::error::StageError;
use crate::plan::AlignMode;

/// Below this gap, `auto` pads with silence rather than extending.
const AUTO_PAD_S: f64 = 0.5;
/// Longest tail `crossfade` repeats, in seconds.
pub(super) const MAX_TAIL_S: f64 = 2.0;

/// The strategy alignment actually applied to a stem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// The source already had the target length.
    Copy,
    /// `align = "none"` with at most one frame to pad or cut (or an empty
    /// source): padded or cut without a fade.
    None,
    /// The source, then silence.
    ZeroPad,
    /// The source's head, faded out at the end.
    Truncate,
    /// The whole source repeated with matched seams.
    Loop,
    /// A tail of the source repeated with matched seams.
    Crossfade,
}

impl Strategy {
    /// The spec's name, as the report, the overview and the CLI print it.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Copy => "copy",
            Strategy::None => "none",
            Strategy::ZeroPad => "zero-pad",
            Strategy::Truncate => "truncate",
            Strategy::Loop => "loop",
            Strategy::Crossfade => "crossfade",
        }
    }

    /// Whether the source repeats after its first pass.
    pub fn extends(self) -> bool {
        matches!(self, Strategy::Loop | Strategy::Crossfade)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Serialised as its name, so the report's `"strategy"` field reads as it
/// always has (one spelling table for the report and the display).
impl serde::Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Chooses the strategy for a source of `len` frames; an error when
/// `align = "none"` meets a mismatch of more than one frame.
pub(super) fn choose(s: &AlignSettings, len: u64) -> Result<Strategy, StageError> {
    let target = s.target.0;
    let gap_s = (target as f64 - len as f64) / s.sample_rate as f64;
    let loops = match s.mode {
        AlignMode::Loop => true,
        AlignMode::Auto => s.rhythmic,
        _ => false,
    };
    let extend = if loops {
        Strategy::Loop
    } else {
        Strategy::Crossfade
    };
    Ok(match s.mode {
        _ if len == target => Strategy::Copy,
        AlignMode::None => return none(len, target, gap_s),
        _ if len > target => Strategy::Truncate,
        _ if len == 0 => Strategy::ZeroPad,
        AlignMode::Auto if gap_s < AUTO_PAD_S => Strategy::ZeroPad,
        AlignMode::Auto | AlignMode::Loop | AlignMode::Crossfade => extend,
        AlignMode::ZeroPad | AlignMode::Truncate => Strategy::ZeroPad,
    })
}

/// `align = "none"`: one frame either way is rounding, and an empty source
/// is padded; anything more is the manifest's mistake.
fn none(len: u64, target: u64, gap_s: f64) -> Result<Strategy, StageError> {
    if len > target + 1 {
        return Err(StageError::Invalid(format!(
            "align = \"none\" but the source has {len} frames and the target {target} \
             ({:.3} s long)",
            -gap_s
        )));
    }
    if len != 0 && len < target && target - len > 1 {
        return Err(StageError::Invalid(format!(
            "align = \"none\" but the source has {len} frames and the target {target} \
             ({:.3} s short)",
            gap_s
        )));
    }
    Ok(Strategy::None)
}

/// Frames at the end of the source that an extension repeats: the whole
/// source for `loop`; for `crossfade` its tail of min(30% of the gap, 2 s,
/// S/2), at least one frame.
pub(super) fn loop_region(strategy: Strategy, len: u64, target: u64, rate: u32) -> u64 {
    if strategy == Strategy::Loop {
        return len;
    }
    let tail = (0.3 * (target - len) as f64)
        .min(MAX_TAIL_S * rate as f64)
        .min(len as f64 / 2.0);
    (tail.round() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Frames;

    const RATE: u32 = 48000;

    fn settings(mode: AlignMode, rhythmic: bool, target: u64) -> AlignSettings {
        AlignSettings {
            mode,
            rhythmic,
            target: Frames(target),
            sample_rate: RATE,
            crossfade_ms: 50.0,
            grid: None,
            fade_ms: 10.0,
        }
    }

    fn pick(mode: AlignMode, rhythmic: bool, len: u64, target: u64) -> Strategy {
        choose(&settings(mode, rhythmic, target), len).unwrap()
    }

    #[test]
    fn prints_and_serialises_the_spec_names() {
        let all = [
            (Strategy::Copy, "copy"),
            (Strategy::None, "none"),
            (Strategy::ZeroPad, "zero-pad"),
            (Strategy::Truncate, "truncate"),
            (Strategy::Loop, "loop"),
            (Strategy::Crossfade, "crossfade"),
        ];
        for (s, name) in all {
            assert_eq!(s.to_string(), name);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn auto_follows_the_table() {
        use Strategy::*;
        assert_eq!(pick(AlignMode::Auto, false, 48_000, 48_000), Copy);
        assert_eq!(pick(AlignMode::Auto, false, 48_000, 40_000), Truncate);
        assert_eq!(pick(AlignMode::Auto, true, 0, 40_000), ZeroPad);
        assert_eq!(pick(AlignMode::Auto, true, 48_000, 71_999), ZeroPad);
        assert_eq!(pick(AlignMode::Auto, true, 48_000, 72_000), Loop);
        assert_eq!(pick(AlignMode::Auto, false, 48_000, 72_000), Crossfade);
    }

    #[test]
    fn explicit_modes_pad_or_cut_by_direction() {
        use Strategy::*;
        assert_eq!(pick(AlignMode::Truncate, false, 1000, 2000), ZeroPad);
        assert_eq!(pick(AlignMode::ZeroPad, false, 2000, 1000), Truncate);
        assert_eq!(pick(AlignMode::Loop, false, 1000, 1001), Loop);
        assert_eq!(pick(AlignMode::Crossfade, true, 1000, 1001), Crossfade);
        assert_eq!(pick(AlignMode::Loop, false, 0, 1001), ZeroPad);
    }

    #[test]
    fn none_allows_one_frame_or_an_empty_source() {
        assert_eq!(pick(AlignMode::None, false, 1000, 1000), Strategy::Copy);
        assert_eq!(pick(AlignMode::None, false, 1000, 1001), Strategy::None);
        assert_eq!(pick(AlignMode::None, false, 1000, 999), Strategy::None);
        assert_eq!(pick(AlignMode::None, false, 0, 5000), Strategy::None);
        let long = choose(&settings(AlignMode::None, false, 998), 1000).unwrap_err();
        assert!(long.to_string().contains("s long"), "{long}");
        let short = choose(&settings(AlignMode::None, false, 1002), 1000).unwrap_err();
        assert!(short.to_string().contains("s short"), "{short}");
    }

    #[test]
    fn crossfade_repeats_a_bounded_tail() {
        // 30% of the gap.
        assert_eq!(
            loop_region(Strategy::Crossfade, 96_000, 106_000, RATE),
            3000
        );
        // 2 s at most.
        assert_eq!(
            loop_region(Strategy::Crossfade, 960_000, 9_600_000, RATE),
            96_000
        );
        // Half the source at most, never nothing.
        assert_eq!(loop_region(Strategy::Crossfade, 100, 100_000, RATE), 50);
        assert_eq!(loop_region(Strategy::Crossfade, 1, 100_000, RATE), 1);
        assert_eq!(loop_region(Strategy::Loop, 12_345, 100_000, RATE), 12_345);
    }
}
