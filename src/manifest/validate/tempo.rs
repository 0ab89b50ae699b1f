//! A stem's tempo and key (SPEC §9): `source_bpm` and `transpose`. The
//! stretch ratio `source_bpm / bpm` is bounded here, where the song's tempo
//! is known, so a stem that would be stretched past what the stretcher
//! does cleanly is a manifest error (exit 2), not a poor render.

use super::{At, Validator};
use crate::manifest::error::ManifestError;
use crate::manifest::raw::RawStem;

/// The stretch ratios `source_bpm / bpm` allowed: a phase vocoder stays
/// clean up to an octave of time either way.
pub const RATIO_RANGE: std::ops::RangeInclusive<f64> = 0.5..=2.0;

/// The largest pitch shift, in semitones either way (two octaves).
pub const MAX_TRANSPOSE: f64 = 24.0;

impl Validator<'_> {
    /// `source_bpm` (above 0, and `source_bpm / bpm` within
    /// [`RATIO_RANGE`]) and `transpose` (within ±[`MAX_TRANSPOSE`], 0 when
    /// absent).
    pub(super) fn tempo_and_key(
        &self,
        at: At<'_>,
        raw: &RawStem,
        bpm: f64,
    ) -> Result<(Option<f64>, f64), ManifestError> {
        let source_bpm = raw
            .source_bpm
            .map(|b| {
                self.number(at, "source_bpm", b, b > 0.0, "must be above 0")?;
                let (lo, hi) = (RATIO_RANGE.start(), RATIO_RANGE.end());
                let what = format!(
                    "the stretch ratio source_bpm / bpm must be within {lo:.1} to {hi:.1} \
                     (source_bpm {} to {} at {bpm} BPM)",
                    lo * bpm,
                    hi * bpm
                );
                self.number(at, "source_bpm", b, RATIO_RANGE.contains(&(b / bpm)), &what)
            })
            .transpose()?;
        let transpose = raw.transpose.unwrap_or(0.0);
        let ok = transpose.abs() <= MAX_TRANSPOSE;
        let what = format!("must be between -{MAX_TRANSPOSE} and {MAX_TRANSPOSE} semitones");
        self.number(at, "transpose", transpose, ok, &what)?;
        Ok((source_bpm, transpose))
    }
}
