//! From raw TOML to a [`Plan`], one small step per table or key group.
//! Steps run in a fixed order and the first failure is the error, so the
//! order of the calls here and in `song`, `stem` and `effect` is part of the
//! contract: the same bad manifest always names the same key and line.

mod deliver;
mod delivery;
mod effect;
mod placement;
mod song;
mod stem;
mod tempo;

use std::collections::HashSet;
use std::ops::{Range, RangeInclusive};
use std::path::Path;

use super::error::ManifestError;
use super::locate::{Table, key_line, table_region};
use super::raw::{RawDefaults, RawLimits, RawManifest, RawSong};
use super::{MAX_DURATION_S, MAX_STEMS, digest};
use crate::plan::{Plan, SongPlan};
use toml::Spanned;

/// Checks one manifest's raw tables against its text (for error lines).
pub(super) struct Validator<'a> {
    text: &'a str,
    file: &'a str,
    max_duration: f64,
    max_stems: usize,
}

/// Where a check is being made, for error messages.
#[derive(Clone, Copy)]
struct At<'s> {
    span: &'s Range<usize>,
    song: Option<&'s str>,
    stem: Option<&'s str>,
}

impl<'s> At<'s> {
    /// Anywhere in the file (`span` is all of it): top-level keys.
    fn top(span: &'s Range<usize>) -> Self {
        At {
            span,
            song: None,
            stem: None,
        }
    }

    /// In the song `id`, whose table is `span`.
    fn song(span: &'s Range<usize>, id: &'s str) -> Self {
        At {
            span,
            song: Some(id),
            stem: None,
        }
    }

    /// In the stem `name` of this song, whose table is `span`.
    fn stem<'t>(self, span: &'t Range<usize>, name: &'t str) -> At<'t>
    where
        's: 't,
    {
        At {
            span,
            song: self.song,
            stem: Some(name),
        }
    }
}

impl<'a> Validator<'a> {
    /// A validator for `text` (named `file` in errors) with the manifest's
    /// `[limits]` applied over the defaults.
    pub(super) fn new(
        text: &'a str,
        file: &'a str,
        limits: RawLimits,
    ) -> Result<Self, ManifestError> {
        let mut v = Validator {
            text,
            file,
            max_duration: MAX_DURATION_S,
            max_stems: MAX_STEMS,
        };
        let whole = 0..text.len();
        let top = At::top(&whole);
        if let Some(d) = limits.max_duration {
            if !(d.is_finite() && d > 0.0) {
                return Err(v.err(
                    top,
                    Some("limits.max_duration"),
                    format!("must be a number of seconds > 0, got {d}"),
                ));
            }
            v.max_duration = d;
        }
        if let Some(n) = limits.max_stems {
            if n == 0 {
                return Err(v.err(top, Some("limits.max_stems"), "must be at least 1"));
            }
            v.max_stems = n;
        }
        Ok(v)
    }
}

impl<'a> Validator<'a> {
    /// The whole manifest: at least one song, ids unique, each song valid.
    pub(super) fn plan(&self, raw: RawManifest, base_dir: &Path) -> Result<Plan, ManifestError> {
        let whole = 0..self.text.len();
        let raw_songs = raw.songs.unwrap_or_default();
        if raw_songs.is_empty() {
            return Err(self.err(At::top(&whole), Some("songs"), "the manifest has no songs"));
        }
        let mut ids = HashSet::new();
        let songs = raw_songs
            .into_iter()
            .enumerate()
            .map(|(index, song)| self.song_entry(index, song, &raw.defaults, base_dir, &mut ids))
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            base_dir: base_dir.to_path_buf(),
            songs,
        })
    }

    /// The same limits, checking another text (one song's table, parsed
    /// on its own: its errors' lines are then relative to that text).
    pub(super) fn for_text<'b>(&self, text: &'b str) -> Validator<'b>
    where
        'a: 'b,
    {
        Validator {
            text,
            file: self.file,
            max_duration: self.max_duration,
            max_stems: self.max_stems,
        }
    }

    /// Song number `index` of the manifest, its id not among `ids` (which
    /// it joins), with its digest.
    pub(super) fn song_entry(
        &self,
        index: usize,
        spanned: Spanned<RawSong>,
        defaults: &RawDefaults,
        base_dir: &Path,
        ids: &mut HashSet<String>,
    ) -> Result<SongPlan, ManifestError> {
        let span = table_region(self.text, spanned.span(), Table::Song);
        let song = spanned.into_inner();
        if !ids.insert(song.id.clone()) {
            let at = At::song(&span, &song.id);
            return Err(self.err(at, Some("id"), "duplicate song id"));
        }
        let mut song = self.song(index, song, defaults, &span, base_dir)?;
        song.digest = digest(&song);
        Ok(song)
    }

    /// `v` when it is finite and `ok`; otherwise the error "`what`, got `v`"
    /// at `key`.
    fn number(
        &self,
        at: At<'_>,
        key: &str,
        v: f64,
        ok: bool,
        what: &str,
    ) -> Result<f64, ManifestError> {
        if v.is_finite() && ok {
            Ok(v)
        } else {
            Err(self.err(at, Some(key), format!("{what}, got {v}")))
        }
    }

    /// A frequency `f` above 0 and below `nyquist` (a tone or filter there
    /// would alias or be unstable).
    fn below_nyquist(
        &self,
        at: At<'_>,
        key: &str,
        f: f64,
        nyquist: f64,
    ) -> Result<f64, ManifestError> {
        let what = format!("must be > 0 and below Nyquist ({nyquist} Hz)");
        self.number(at, key, f, f > 0.0 && f < nyquist, &what)
    }

    /// `v` when absent or inside `range` (NaN and ±∞ never are); otherwise
    /// the error "`what`, got `v`" at `key`.
    fn bounded(
        &self,
        at: At<'_>,
        key: &str,
        v: Option<f64>,
        range: RangeInclusive<f64>,
        what: &str,
    ) -> Result<Option<f64>, ManifestError> {
        match v {
            Some(v) if !range.contains(&v) => {
                Err(self.err(at, Some(key), format!("{what}, got {v}")))
            }
            v => Ok(v),
        }
    }

    /// The error `message` about `key` (or the table) at `at`.
    fn err(&self, at: At<'_>, key: Option<&str>, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.file.to_string(),
            line: Some(key_line(self.text, at.span, key)),
            song: at.song.map(str::to_string),
            stem: at.stem.map(str::to_string),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}
