//! One `[[songs]]` table: its settings resolved against `[defaults]`, each
//! group of keys checked by its own step, in the order the errors are
//! reported (id, bpm, format, duration, verify, archive, reference,
//! keep_files, delivery, sections, stems, master, deliver).

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use super::{At, Validator};
use crate::manifest::error::ManifestError;
use crate::manifest::raw::{RawDefaults, RawMaster, RawReference, RawSection, RawSong, RawVerify};
use crate::manifest::{is_reserved_name, is_valid_name};
use crate::plan::{Clip, Compression, Dither, MasterPlan, ReferencePlan, SongPlan, VerifyLimits};
use crate::timing::{Meter, Section, Timing};
use crate::types::{SampleFormat, StreamSpec};

/// Longest `title`: it fits a table column and the 256-byte `bext`
/// description with room for the file's name.
const MAX_TITLE_CHARS: usize = 200;

impl Validator<'_> {
    /// One song, with `defaults` filling what it leaves out (its digest is
    /// left to the caller, once the song is whole).
    pub(super) fn song(
        &self,
        index: usize,
        raw: RawSong,
        defaults: &RawDefaults,
        span: &Range<usize>,
        base_dir: &Path,
    ) -> Result<SongPlan, ManifestError> {
        let at = At::song(span, &raw.id);
        self.identity(at, &raw.id, raw.bpm)?;
        let title = self.title(at, raw.title.as_deref())?;
        let spec = self.spec(at, &raw, defaults)?;
        let duration = self.duration(at, raw.duration, raw.reference.is_some())?;
        self.at_least_one_frame(at, duration, spec.sample_rate)?;
        let verify = self.verify(at, &defaults.verify, &raw.verify)?;
        let archive = self.archive(at, &raw.id, raw.archive.as_deref())?;
        let reference = self.reference(at, raw.reference.as_ref(), base_dir)?;
        let keep_files = self.keep_files(at, raw.keep_files, archive.is_some())?;
        let delivery = self.delivery(at, &raw, defaults, spec)?;
        let meter = self.meter(at, raw.meter.as_deref())?;
        let timing = self.timing(
            at,
            (raw.bpm, meter),
            spec.sample_rate,
            &raw.sections,
            duration,
        )?;
        let stems = self.stems(at, raw.stems, spec, (&timing, duration), base_dir)?;
        let master = self.master(at, &raw.master)?;
        let dither = raw.dither.or(defaults.dither).unwrap_or(Dither::Tpdf);
        let deliver = self.deliver(at, raw.deliver, spec, dither)?;
        let compression = raw.compression.or(defaults.compression);
        Ok(SongPlan {
            id: raw.id.clone(),
            title,
            index,
            bpm: raw.bpm,
            meter,
            duration,
            spec,
            seed: raw.seed.or(defaults.seed).unwrap_or(1),
            dither,
            verify,
            master,
            archive,
            keep_files,
            compression: compression.unwrap_or(Compression::Stored),
            reference,
            timing,
            stems,
            delivery,
            deliver,
            digest: String::new(),
            fingerprint: String::new(),
        })
    }

    /// The id (it names the song's folder) and the tempo.
    fn identity(&self, at: At<'_>, id: &str, bpm: f64) -> Result<(), ManifestError> {
        if !is_valid_name(id) {
            return Err(self.err(
                at,
                Some("id"),
                "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63} (it names a folder)",
            ));
        }
        if is_reserved_name(id) {
            return Err(self.err(
                at,
                Some("id"),
                format!("{id:?} is a name stemflow writes itself"),
            ));
        }
        let ok = bpm > 0.0 && bpm <= 1000.0;
        self.number(at, "bpm", bpm, ok, "must be > 0 and <= 1000")?;
        Ok(())
    }

    /// The free-text title: any printable text (spaces, accents), no
    /// control characters (they would drive a terminal or break a table).
    fn title(&self, at: At<'_>, title: Option<&str>) -> Result<Option<String>, ManifestError> {
        let Some(title) = title else {
            return Ok(None);
        };
        let what = if title.trim().is_empty() {
            "must not be empty"
        } else if title.chars().any(char::is_control) {
            "must not contain control characters (newline, tab, escape, ...)"
        } else if title.chars().count() > MAX_TITLE_CHARS {
            "must be at most 200 characters"
        } else {
            return Ok(Some(title.to_string()));
        };
        Err(self.err(at, Some("title"), what))
    }

    /// The output stream: rate, channels, format.
    fn spec(
        &self,
        at: At<'_>,
        raw: &RawSong,
        defaults: &RawDefaults,
    ) -> Result<StreamSpec, ManifestError> {
        let sample_rate = raw.sample_rate.or(defaults.sample_rate).unwrap_or(48000);
        if !(8000..=384_000).contains(&sample_rate) {
            return Err(self.err(
                at,
                Some("sample_rate"),
                format!("must be between 8000 and 384000 Hz, got {sample_rate}"),
            ));
        }
        let channels = raw.channels.or(defaults.channels).unwrap_or(1);
        if !(1..=2).contains(&channels) {
            return Err(self.err(
                at,
                Some("channels"),
                format!("must be 1 or 2, got {channels}"),
            ));
        }
        Ok(StreamSpec {
            sample_rate,
            channels,
            format: raw
                .format
                .or(defaults.format)
                .unwrap_or(SampleFormat::Float),
        })
    }

    /// The target length; `None` when the reference will give it.
    fn duration(
        &self,
        at: At<'_>,
        duration: Option<f64>,
        has_reference: bool,
    ) -> Result<Option<f64>, ManifestError> {
        match (duration, has_reference) {
            (Some(d), _) => {
                let what = format!(
                    "must be > 0 and at most {} s (raise [limits] max_duration to allow more)",
                    self.max_duration
                );
                self.number(at, "duration", d, d > 0.0 && d <= self.max_duration, &what)
                    .map(Some)
            }
            // Taken from the reference when the song renders.
            (None, true) => Ok(None),
            (None, false) => {
                Err(self.err(at, Some("duration"), "missing: give `duration` (seconds)"))
            }
        }
    }

    /// A song must hold at least one frame at its rate: a shorter one would
    /// render empty files and still pass.
    fn at_least_one_frame(
        &self,
        at: At<'_>,
        duration: Option<f64>,
        sample_rate: u32,
    ) -> Result<(), ManifestError> {
        match duration {
            Some(d) if crate::types::Frames::from_seconds(d, sample_rate).0 == 0 => {
                let what = format!("{d} s is shorter than one frame at {sample_rate} Hz");
                Err(self.err(at, Some("duration"), what))
            }
            _ => Ok(()),
        }
    }

    /// A section name, shown in reports, on the terminal and in
    /// overview.svg: 1 to 64 characters, none of them a control character
    /// (which would garble a terminal and make the SVG invalid XML).
    fn section_name(&self, at: At<'_>, name: &str) -> Result<(), ManifestError> {
        if name.is_empty() || name.len() > 64 {
            return Err(self.err(at, Some("sections.name"), "must be 1 to 64 characters"));
        }
        if name.contains(char::is_control) {
            let what = format!("{name:?} contains a control character");
            return Err(self.err(at, Some("sections.name"), what));
        }
        Ok(())
    }

    /// `[songs.verify]` over `[defaults.verify]`, each limit in range.
    fn verify(
        &self,
        at: At<'_>,
        defaults: &RawVerify,
        song: &RawVerify,
    ) -> Result<VerifyLimits, ManifestError> {
        let v = song.0.or(&defaults.0);
        let limit = |key: &str, value: Option<f64>, range, what: &str| {
            self.bounded(at, &format!("verify.{key}"), value, range, what)
        };
        let non_negative = |key: &str, value: Option<f64>, fallback: f64| {
            limit(key, value, 0.0..=f64::MAX, "must be a finite number >= 0")
                .map(|v| v.unwrap_or(fallback))
        };
        Ok(VerifyLimits {
            duration_tolerance: non_negative("duration_tolerance", v.duration_tolerance, 1.0)?,
            max_clip_ratio: non_negative("max_clip_ratio", v.max_clip_ratio, 0.001)?,
            min_rms: non_negative("min_rms", v.min_rms, 0.01)?,
            target_lufs: limit(
                "target_lufs",
                v.target_lufs,
                -70.0..=0.0,
                "must be between -70 and 0 LUFS",
            )?,
            lufs_tolerance: non_negative("lufs_tolerance", v.lufs_tolerance, 1.0)?,
            max_true_peak_db: limit(
                "max_true_peak_db",
                v.max_true_peak_db,
                -30.0..=6.0,
                "must be between -30 and 6 dBTP",
            )?,
        })
    }

    /// The archive's file name: `<id>.zip` by default, `""` for none, and
    /// never a path out of the song folder or a name stemflow writes.
    fn archive(
        &self,
        at: At<'_>,
        id: &str,
        archive: Option<&str>,
    ) -> Result<Option<String>, ManifestError> {
        let a = match archive {
            None => return Ok(Some(format!("{id}.zip"))),
            Some("") => return Ok(None),
            Some(a) => a,
        };
        if a.contains(['/', '\\']) || a.contains(char::is_control) {
            return Err(self.err(
                at,
                Some("archive"),
                "must be a plain file name inside the song folder (no slashes or control characters)",
            ));
        }
        if a == "." || a == ".." || a.len() > 128 {
            return Err(self.err(
                at,
                Some("archive"),
                "must be a plain file name inside the song folder",
            ));
        }
        if is_reserved_name(a) {
            return Err(self.err(
                at,
                Some("archive"),
                format!("{a:?} is a name stemflow writes itself"),
            ));
        }
        Ok(Some(a.to_string()))
    }

    /// `[songs.reference]`, its path resolved against `base_dir`.
    fn reference(
        &self,
        at: At<'_>,
        raw: Option<&RawReference>,
        base_dir: &Path,
    ) -> Result<Option<ReferencePlan>, ManifestError> {
        let Some(r) = raw else {
            return Ok(None);
        };
        if r.path.is_empty() {
            return Err(self.err(at, Some("reference.path"), "must not be empty"));
        }
        if !r.min_duration.is_none_or(|v| v.is_finite() && v > 0.0) {
            return Err(self.err(at, Some("reference.min_duration"), "must be a number > 0"));
        }
        Ok(Some(ReferencePlan {
            path: base_dir.join(&r.path),
            sample_rate: r.sample_rate,
            channels: r.channels,
            min_duration: r.min_duration,
        }))
    }

    /// `keep_files` (default true): false only with an archive to keep.
    fn keep_files(
        &self,
        at: At<'_>,
        keep: Option<bool>,
        archived: bool,
    ) -> Result<bool, ManifestError> {
        let keep = keep.unwrap_or(true);
        if !keep && !archived {
            let what = "false needs an archive to keep the audio in";
            return Err(self.err(at, Some("keep_files"), what));
        }
        Ok(keep)
    }

    /// `meter` (default 4/4).
    fn meter(&self, at: At<'_>, raw: Option<&str>) -> Result<Meter, ManifestError> {
        raw.map_or(Ok(Meter::default()), |m| {
            m.parse()
                .map_err(|e: String| self.err(at, Some("meter"), e))
        })
    }

    /// The sections' timing, which must fit in the duration when known.
    fn timing(
        &self,
        at: At<'_>,
        (bpm, meter): (f64, Meter),
        sample_rate: u32,
        raw: &[RawSection],
        duration: Option<f64>,
    ) -> Result<Timing, ManifestError> {
        let sections = self.sections(at, raw, meter)?;
        let timing = Timing::with_meter(bpm, meter, sample_rate, &sections);
        if let Some(duration) = duration {
            timing
                .check_duration(duration)
                .map_err(|e| self.err(at, Some("sections"), e.to_string()))?;
        }
        Ok(timing)
    }

    /// The sections in order: names 1 to 64 characters and unique, beats
    /// (or bars of `meter`) > 0.
    fn sections(
        &self,
        at: At<'_>,
        raw: &[RawSection],
        meter: Meter,
    ) -> Result<Vec<Section>, ManifestError> {
        let mut names = HashSet::new();
        let mut sections = Vec::new();
        for s in raw {
            self.section_name(at, &s.name)?;
            if !names.insert(s.name.clone()) {
                let what = format!("duplicate section {:?}", s.name);
                return Err(self.err(at, Some("sections.name"), what));
            }
            sections.push(Section {
                name: s.name.clone(),
                beats: self.section_beats(at, s, meter)?,
            });
        }
        Ok(sections)
    }

    /// A section's length in beats, from exactly one of `beats` and `bars`.
    fn section_beats(
        &self,
        at: At<'_>,
        s: &RawSection,
        meter: Meter,
    ) -> Result<u32, ManifestError> {
        let (key, beats) = match (s.beats, s.bars) {
            (Some(_), Some(_)) => {
                let what = format!("section {:?}: give `beats` or `bars`, not both", s.name);
                return Err(self.err(at, Some("sections.bars"), what));
            }
            (None, None) => {
                let what = format!("section {:?}: missing `beats` (or `bars`)", s.name);
                return Err(self.err(at, Some("sections.name"), what));
            }
            (Some(beats), None) => ("beats", Some(beats)),
            (None, Some(bars)) => ("bars", bars.checked_mul(meter.beats)),
        };
        let what = match beats {
            Some(b) if b > 0 => return Ok(b),
            Some(_) => format!("section {:?} has 0 {key}", s.name),
            None => format!("section {:?} is too long", s.name),
        };
        Err(self.err(at, Some(&format!("sections.{key}")), what))
    }

    /// `[songs.master]`: the clip mode and the optional loudness targets.
    fn master(&self, at: At<'_>, raw: &RawMaster) -> Result<MasterPlan, ManifestError> {
        Ok(MasterPlan {
            clip: raw.clip.unwrap_or(Clip::Hard),
            normalize_lufs: self.bounded(
                at,
                "master.normalize_lufs",
                raw.normalize_lufs,
                -70.0..=0.0,
                "must be between -70 and 0 LUFS",
            )?,
            limit_true_peak_db: self.bounded(
                at,
                "master.limit_true_peak_db",
                raw.limit_true_peak_db,
                -30.0..=0.0,
                "must be between -30 and 0 dBTP",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::tests::{SONG, parse_str};

    #[test]
    fn minimal_song_gets_defaults() {
        let plan = parse_str(SONG).unwrap();
        let song = &plan.songs[0];
        assert_eq!(song.spec.sample_rate, 48000);
        assert_eq!(song.archive.as_deref(), Some("s1.zip"));
        assert!(song.stems[0].rhythmic, "a bass stem is rhythmic by name");
        assert_eq!(song.target_frames().0, 384_000);
    }
}
