//! The stems of a song: the list (count, names), then each stem's source,
//! gain, pan, shaping times, effects and role. Bounds are checked here, where
//! the key is known, so the renderer can trust every number it is given.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::path::Path;

use toml::Spanned;

use super::placement::SongTime;
use super::{At, Validator};
use crate::manifest::error::ManifestError;
use crate::manifest::is_valid_name;
use crate::manifest::locate::{Table, table_region};
use crate::manifest::raw::{RawSource, RawStem, Role};
use crate::plan::{AlignMode, SourceSpec, StemPlan, Wave};
use crate::types::StreamSpec;

impl Validator<'_> {
    /// A song's stems: at least one, at most the limit, names unique and
    /// usable as file names.
    pub(super) fn stems(
        &self,
        at: At<'_>,
        raw: Vec<Spanned<RawStem>>,
        spec: StreamSpec,
        song: SongTime<'_>,
        base_dir: &Path,
    ) -> Result<Vec<StemPlan>, ManifestError> {
        if raw.is_empty() {
            return Err(self.err(at, Some("stems"), "the song has no stems"));
        }
        if raw.len() > self.max_stems {
            let what = format!(
                "{} stems; at most {} are allowed (raise [limits] max_stems to allow more)",
                raw.len(),
                self.max_stems
            );
            return Err(self.err(at, Some("stems"), what));
        }
        let mut names = HashSet::new();
        let mut stems = Vec::new();
        for spanned in raw {
            let span = table_region(self.text, spanned.span(), Table::Other);
            let stem = spanned.into_inner();
            let name = stem.name.clone();
            let stem_at = at.stem(&span, &name);
            if !is_valid_name(&stem.name) {
                let what = "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63} (it names a file)";
                return Err(self.err(stem_at, Some("name"), what));
            }
            if !names.insert(stem.name.clone()) {
                return Err(self.err(stem_at, Some("name"), "duplicate stem name in this song"));
            }
            stems.push(self.stem(stem_at, stem, spec, song, base_dir)?);
        }
        Ok(stems)
    }

    /// One stem, checked in key order: source, gain, pan, crossfade, fade,
    /// effects, loop_bars, tempo and key, placement.
    fn stem(
        &self,
        at: At<'_>,
        mut raw: RawStem,
        spec: StreamSpec,
        song: SongTime<'_>,
        base_dir: &Path,
    ) -> Result<StemPlan, ManifestError> {
        let nyquist = spec.sample_rate as f64 / 2.0;
        let raw_source = std::mem::replace(&mut raw.source, RawSource::Silence { length: None });
        let source = self.source(at, raw_source, nyquist, base_dir)?;
        let gain = self.gain(at, raw.gain, raw.gain_db)?;
        let (pan, crossfade_ms, fade_ms) =
            self.pan_and_fades(at, raw.pan, raw.crossfade_ms, raw.fade_ms)?;
        let effects = self.effects(at, std::mem::take(&mut raw.effects), nyquist)?;
        let loop_bars = self.loop_bars(at, raw.loop_bars)?;
        let (source_bpm, transpose) = self.tempo_and_key(at, &raw, song.0.bpm)?;
        let align = raw.align.unwrap_or(AlignMode::Auto);
        let placement = self.placement(at, &raw, (&source, align), song)?;
        Ok(StemPlan {
            rhythmic: rhythmic(raw.role, &raw.name, &source),
            name: raw.name,
            source,
            align,
            gain,
            pan,
            effects,
            crossfade_ms,
            fade_ms,
            loop_bars,
            placement,
            source_bpm,
            transpose,
        })
    }

    /// `pan` (default centre), `crossfade_ms` (50) and `fade_ms` (10), each
    /// in its range.
    fn pan_and_fades(
        &self,
        at: At<'_>,
        pan: Option<f64>,
        crossfade_ms: Option<f64>,
        fade_ms: Option<f64>,
    ) -> Result<(f64, f64, f64), ManifestError> {
        let in_range = |key: &str, v: f64, range: RangeInclusive<f64>, what: &str| {
            self.number(at, key, v, range.contains(&v), what)
        };
        let pan = in_range(
            "pan",
            pan.unwrap_or(0.0),
            -1.0..=1.0,
            "must be between -1 and 1",
        )?;
        let crossfade_ms = crossfade_ms.unwrap_or(50.0);
        let what = "must be between 0 and 10000 ms";
        in_range("crossfade_ms", crossfade_ms, 0.0..=10_000.0, what)?;
        let fade_ms = fade_ms.unwrap_or(10.0);
        in_range(
            "fade_ms",
            fade_ms,
            0.0..=60_000.0,
            "must be between 0 and 60000 ms",
        )?;
        Ok((pan, crossfade_ms, fade_ms))
    }

    /// The generator's parameters, or a file path resolved against `base_dir`.
    fn source(
        &self,
        at: At<'_>,
        raw: RawSource,
        nyquist: f64,
        base_dir: &Path,
    ) -> Result<SourceSpec, ManifestError> {
        Ok(match raw {
            RawSource::Tone {
                freq,
                amp,
                wave,
                length,
            } => SourceSpec::Tone {
                freq: self.below_nyquist(at, "source.freq", freq, nyquist)?,
                amp: self.amp(at, amp, 0.5)?,
                wave: wave.unwrap_or(Wave::Sine),
                length: self.length(at, length)?,
            },
            RawSource::Drums { amp, hats, length } => SourceSpec::Drums {
                amp: self.amp(at, amp, 0.8)?,
                hats: hats.unwrap_or(false),
                length: self.length(at, length)?,
            },
            RawSource::Noise { amp, length } => SourceSpec::Noise {
                amp: self.amp(at, amp, 0.1)?,
                length: self.length(at, length)?,
            },
            RawSource::Silence { length } => SourceSpec::Silence {
                length: self.length(at, length)?,
            },
            RawSource::File { path } if path.is_empty() => {
                return Err(self.err(at, Some("source.path"), "must not be empty"));
            }
            RawSource::File { path } => SourceSpec::File {
                path: base_dir.join(path),
            },
        })
    }

    /// A generator's `amp` (`default` when absent): 0 to 16.
    fn amp(&self, at: At<'_>, amp: Option<f64>, default: f64) -> Result<f64, ManifestError> {
        let a = amp.unwrap_or(default);
        let ok = (0.0..=16.0).contains(&a);
        self.number(at, "source.amp", a, ok, "must be between 0 and 16")
    }

    /// A generator's `length`, if given: 0 to the longest song allowed.
    fn length(&self, at: At<'_>, length: Option<f64>) -> Result<Option<f64>, ManifestError> {
        let what = format!("must be between 0 and {} s", self.max_duration);
        length
            .map(|l| {
                self.number(
                    at,
                    "source.length",
                    l,
                    (0.0..=self.max_duration).contains(&l),
                    &what,
                )
            })
            .transpose()
    }

    /// The linear gain, from `gain` or `gain_db` (not both); 1 when neither.
    fn gain(
        &self,
        at: At<'_>,
        gain: Option<f64>,
        gain_db: Option<f64>,
    ) -> Result<f64, ManifestError> {
        match (gain, gain_db) {
            (Some(_), Some(_)) => {
                Err(self.err(at, Some("gain_db"), "give `gain` or `gain_db`, not both"))
            }
            (Some(g), None) => self.number(
                at,
                "gain",
                g,
                g.abs() <= 16.0,
                "must be a finite linear gain between -16 and 16",
            ),
            (None, Some(db)) => {
                let ok = (-120.0..=24.0).contains(&db);
                let db = self.number(at, "gain_db", db, ok, "must be between -120 and 24 dB")?;
                Ok(10f64.powf(db / 20.0))
            }
            (None, None) => Ok(1.0),
        }
    }
}

/// Whether a stem keeps time (`align = "auto"` then loops it when short):
/// its `role` if given, else drums or a name that sounds rhythmic.
fn rhythmic(role: Option<Role>, name: &str, source: &SourceSpec) -> bool {
    match role {
        Some(role) => role == Role::Rhythmic,
        None => {
            let name = name.to_ascii_lowercase();
            matches!(source, SourceSpec::Drums { .. })
                || ["drum", "bass", "perc", "kick", "snare", "hat"]
                    .iter()
                    .any(|w| name.contains(w))
        }
    }
}
