//! The TOML manifest (SPEC §3): parsed strictly, defaults inherited, then
//! validated into a [`Plan`]. Every error is one line naming the file, line,
//! song, stem and key that are wrong.

// A manifest error is built at most once per run: its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::plan::*;
use crate::timing::{Section, Timing};
use crate::types::{SampleFormat, StreamSpec};

/// Default longest song (and generator length), in seconds; a manifest's
/// `[limits] max_duration` overrides it. Keeps a typo from asking for days
/// of audio.
pub const MAX_DURATION_S: f64 = 24.0 * 3600.0;
/// Default most stems one song may have; `[limits] max_stems` overrides it.
pub const MAX_STEMS: usize = 256;
/// Longest echo memory (delay × taps), in seconds.
pub const MAX_ECHO_S: f64 = 10.0;

/// A manifest error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    pub file: String,
    pub line: Option<usize>,
    pub song: Option<String>,
    pub stem: Option<String>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ":")?;
        if let Some(song) = &self.song {
            write!(f, " song {song:?}")?;
        }
        if let Some(stem) = &self.stem {
            write!(f, " stem {stem:?}")?;
        }
        if self.song.is_some() || self.stem.is_some() {
            write!(f, ":")?;
        }
        if let Some(key) = &self.key {
            write!(f, " key `{key}`:")?;
        }
        // Keep the error on one line whatever the parser said.
        let msg = self
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        write!(f, " {msg}")
    }
}

impl std::error::Error for ManifestError {}

// ---------------------------------------------------------------- raw TOML

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    songs: Vec<Spanned<RawSong>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_duration: Option<f64>,
    max_stems: Option<usize>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    sample_rate: Option<u32>,
    format: Option<SampleFormat>,
    channels: Option<u16>,
    seed: Option<u64>,
    dither: Option<Dither>,
    compression: Option<Compression>,
    #[serde(default)]
    verify: RawVerify,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawVerifyTable {
    duration_tolerance: Option<f64>,
    max_clip_ratio: Option<f64>,
    min_rms: Option<f64>,
    target_lufs: Option<f64>,
    lufs_tolerance: Option<f64>,
    max_true_peak_db: Option<f64>,
}

/// Loudness delivery presets for `verify = "..."`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "lowercase")]
enum VerifyPreset {
    /// Streaming platforms: −14 LUFS ± 1, true peak ≤ −1 dBTP.
    Streaming,
    /// EBU R128 broadcast: −23 LUFS ± 1, true peak ≤ −1 dBTP.
    Broadcast,
}

impl VerifyPreset {
    fn table(self) -> RawVerifyTable {
        let target = match self {
            VerifyPreset::Streaming => -14.0,
            VerifyPreset::Broadcast => -23.0,
        };
        RawVerifyTable {
            target_lufs: Some(target),
            lufs_tolerance: Some(1.0),
            max_true_peak_db: Some(-1.0),
            ..RawVerifyTable::default()
        }
    }
}

/// `verify` is either a preset name or a table of limits.
#[derive(Default, Clone)]
struct RawVerify(RawVerifyTable);

impl<'de> Deserialize<'de> for RawVerify {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawVerify;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a preset (\"streaming\" or \"broadcast\") or a table of limits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawVerify, E> {
                let preset =
                    VerifyPreset::deserialize(serde::de::value::StrDeserializer::<E>::new(v))?;
                Ok(RawVerify(preset.table()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawVerify, A::Error> {
                RawVerifyTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawVerify)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSong {
    id: String,
    bpm: f64,
    duration: Option<f64>,
    archive: Option<String>,
    keep_files: Option<bool>,
    sample_rate: Option<u32>,
    format: Option<SampleFormat>,
    channels: Option<u16>,
    seed: Option<u64>,
    dither: Option<Dither>,
    compression: Option<Compression>,
    #[serde(default)]
    verify: RawVerify,
    #[serde(default)]
    master: RawMaster,
    reference: Option<RawReference>,
    #[serde(default)]
    sections: Vec<RawSection>,
    #[serde(default)]
    stems: Vec<Spanned<RawStem>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMaster {
    clip: Option<Clip>,
    normalize_lufs: Option<f64>,
    limit_true_peak_db: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReference {
    path: String,
    sample_rate: Option<u32>,
    channels: Option<u16>,
    min_duration: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    name: String,
    beats: u32,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Role {
    Rhythmic,
    Melodic,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStem {
    name: String,
    source: RawSource,
    align: Option<AlignMode>,
    role: Option<Role>,
    gain: Option<f64>,
    gain_db: Option<f64>,
    pan: Option<f64>,
    #[serde(default)]
    effects: Vec<RawEffect>,
    crossfade_ms: Option<f64>,
    fade_ms: Option<f64>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawSource {
    Tone {
        freq: f64,
        amp: Option<f64>,
        wave: Option<Wave>,
        length: Option<f64>,
    },
    Drums {
        amp: Option<f64>,
        hats: Option<bool>,
        length: Option<f64>,
    },
    Noise {
        amp: Option<f64>,
        length: Option<f64>,
    },
    Silence {
        length: Option<f64>,
    },
    File {
        path: String,
    },
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawEffect {
    Lowpass {
        cutoff: f64,
        order: Option<u8>,
    },
    Highpass {
        cutoff: f64,
        order: Option<u8>,
    },
    Bandpass {
        freq: f64,
        q: f64,
    },
    Notch {
        freq: f64,
        q: f64,
    },
    Peak {
        freq: f64,
        q: f64,
        gain_db: f64,
    },
    Lowshelf {
        freq: f64,
        gain_db: f64,
    },
    Highshelf {
        freq: f64,
        gain_db: f64,
    },
    Gain {
        db: f64,
    },
    Echo {
        delay_ms: f64,
        decay: f64,
        taps: Option<u32>,
    },
}

// ------------------------------------------------------------- validation

/// Reads and validates a manifest file.
pub fn load(path: &Path) -> Result<Plan, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
        file: path.display().to_string(),
        line: None,
        song: None,
        stem: None,
        key: None,
        message: format!("cannot read manifest: {e}"),
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &path.display().to_string(), &base)
}

/// Parses and validates manifest text. `file` names it in errors; relative
/// paths are resolved against `base_dir`.
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Plan, ManifestError> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| syntax_error(text, file, &e))?;
    let whole = 0..text.len();
    let mut v = Validator {
        text,
        file,
        max_duration: MAX_DURATION_S,
        max_stems: MAX_STEMS,
    };
    let top = At {
        span: &whole,
        song: None,
        stem: None,
    };
    if let Some(d) = raw.limits.max_duration {
        if !(d.is_finite() && d > 0.0) {
            return Err(v.err(
                top,
                Some("limits.max_duration"),
                format!("must be a number of seconds > 0, got {d}"),
            ));
        }
        v.max_duration = d;
    }
    if let Some(n) = raw.limits.max_stems {
        if n == 0 {
            return Err(v.err(top, Some("limits.max_stems"), "must be at least 1"));
        }
        v.max_stems = n;
    }
    v.plan(raw, base_dir)
}

/// Turns a TOML/serde error into one line, with the song and stem found by
/// looking back from the error's position.
fn syntax_error(text: &str, file: &str, e: &toml::de::Error) -> ManifestError {
    let pos = e.span().map_or(0, |s| s.start);
    let line = line_of(text, pos);
    let (song, stem) = enclosing_song_and_stem(text, pos);
    let message = e.message().to_string();
    let key = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_string);
    // Type errors point at the value: the key is the name before its `=`.
    let key = key.or_else(|| key_before(text, pos));
    let message = if message.starts_with("unknown field") {
        match message.split_once(", expected") {
            Some((_, rest)) => format!("unknown key; expected{rest}"),
            None => "unknown key".to_string(),
        }
    } else {
        message
    };
    ManifestError {
        file: file.to_string(),
        line: Some(line),
        song,
        stem,
        key,
        message,
    }
}

/// The key whose value starts at `pos` (`key = <pos>`), if any.
fn key_before(text: &str, pos: usize) -> Option<String> {
    let before = text[..pos.min(text.len())]
        .trim_end()
        .strip_suffix('=')?
        .trim_end();
    let key: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!key.is_empty()).then_some(key)
}

fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].matches('\n').count() + 1
}

/// The `id` of the `[[songs]]` table and the `name` of the
/// `[[songs.stems]]` table that enclose byte `pos`, read from the text.
fn enclosing_song_and_stem(text: &str, pos: usize) -> (Option<String>, Option<String>) {
    let before = &text[..pos.min(text.len())];
    let header = |rest: &str, name: &str| is_header(rest, name);
    let song_start = before
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(0))
        .filter(|&i| header(&text[i..], "songs"))
        .max();
    let Some(song_start) = song_start else {
        return (None, None);
    };
    let song_end = text[song_start + 1..]
        .match_indices('\n')
        .map(|(i, _)| song_start + 1 + i + 1)
        .find(|&i| header(&text[i..], "songs"))
        .unwrap_or(text.len());
    let song = find_string_key(&text[song_start..song_end], "id");
    let stem_start = text[song_start..pos.min(text.len())]
        .match_indices('\n')
        .map(|(i, _)| song_start + i + 1)
        .filter(|&i| header(&text[i..], "songs.stems"))
        .max();
    let stem = stem_start.and_then(|s| {
        let end = text[s + 1..]
            .match_indices('\n')
            .map(|(i, _)| s + 1 + i + 1)
            .find(|&i| text[i..].trim_start().starts_with('['))
            .unwrap_or(text.len());
        find_string_key(&text[s..end], "name")
    });
    (song, stem)
}

/// Whether the line starting `rest` is the `[[name]]` table header
/// (spaces inside the brackets allowed). Looks at that one line only.
fn is_header(rest: &str, name: &str) -> bool {
    let line = rest.split('\n').next().unwrap_or("");
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    compact.starts_with(&format!("[[{name}]]"))
}

/// The string value of `key = "..."` at the start of a line in `block`.
fn find_string_key(block: &str, key: &str) -> Option<String> {
    block.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix(key)?.trim_start();
        let rest = rest.strip_prefix('=')?.trim();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        rest[1..].split(quote).next().map(str::to_string)
    })
}

/// Whether a song id or stem name is well formed:
/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

struct Validator<'a> {
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

impl Validator<'_> {
    /// `v` when absent or inside `range` (NaN and ±∞ never are); otherwise
    /// the error "`what`, got `v`" at `key`.
    fn bounded(
        &self,
        at: At<'_>,
        key: &str,
        v: Option<f64>,
        range: std::ops::RangeInclusive<f64>,
        what: &str,
    ) -> Result<Option<f64>, ManifestError> {
        match v {
            Some(v) if !range.contains(&v) => {
                Err(self.err(at, Some(key), format!("{what}, got {v}")))
            }
            v => Ok(v),
        }
    }

    fn err(&self, at: At<'_>, key: Option<&str>, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.file.to_string(),
            line: Some(self.key_line(at.span, key)),
            song: at.song.map(str::to_string),
            stem: at.stem.map(str::to_string),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    /// The line of `key = ` inside the span, or the span's first line.
    fn key_line(&self, span: &Range<usize>, key: Option<&str>) -> usize {
        let end = span.end.min(self.text.len());
        let block = &self.text[span.start.min(end)..end];
        let leaf = key.map(|k| k.rsplit('.').next().unwrap_or(k));
        let offset = leaf.and_then(|k| {
            block.match_indices(k).map(|(i, _)| i).find(|&i| {
                let before_ok = block[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
                let after = block[i + k.len()..].trim_start();
                before_ok && after.starts_with('=')
            })
        });
        line_of(self.text, span.start + offset.unwrap_or(0))
    }

    /// The text a table occupies. The parser's span of a `[[header]]` table
    /// covers only the header; its keys run to the next header (for a song,
    /// to the next `[[songs]]`, since its sub-tables belong to it too).
    fn table_region(&self, span: Range<usize>, song: bool) -> Range<usize> {
        let text = self.text;
        if !text[span.start..].starts_with('[') {
            return span; // an inline table: the span is the whole table
        }
        let next = text[span.end..]
            .match_indices('\n')
            .map(|(i, _)| span.end + i + 1)
            .find(|&i| {
                if song {
                    is_header(&text[i..], "songs")
                } else {
                    text[i..].trim_start().starts_with('[')
                }
            });
        span.start..next.unwrap_or(text.len())
    }

    fn plan(&self, raw: RawManifest, base_dir: &Path) -> Result<Plan, ManifestError> {
        let whole = 0..self.text.len();
        let top = At {
            span: &whole,
            song: None,
            stem: None,
        };
        if raw.songs.is_empty() {
            return Err(self.err(top, Some("songs"), "the manifest has no songs"));
        }
        let mut ids = HashSet::new();
        let mut songs = Vec::new();
        for (index, spanned) in raw.songs.into_iter().enumerate() {
            let span = self.table_region(spanned.span(), true);
            let song = spanned.into_inner();
            let at = At {
                span: &span,
                song: Some(&song.id),
                stem: None,
            };
            if !ids.insert(song.id.clone()) {
                return Err(self.err(at, Some("id"), "duplicate song id"));
            }
            songs.push(self.song(index, song, &raw.defaults, &span, base_dir)?);
        }
        Ok(Plan {
            base_dir: base_dir.to_path_buf(),
            songs,
        })
    }

    fn song(
        &self,
        index: usize,
        raw: RawSong,
        defaults: &RawDefaults,
        span: &Range<usize>,
        base_dir: &Path,
    ) -> Result<SongPlan, ManifestError> {
        let at = At {
            span,
            song: Some(&raw.id),
            stem: None,
        };
        if !is_valid_name(&raw.id) {
            return Err(self.err(
                at,
                Some("id"),
                "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63} (it names a folder)",
            ));
        }
        let finite_pos = |v: f64| v.is_finite() && v > 0.0;
        if !finite_pos(raw.bpm) || raw.bpm > 1000.0 {
            return Err(self.err(
                at,
                Some("bpm"),
                format!("must be > 0 and <= 1000, got {}", raw.bpm),
            ));
        }
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
        let spec = StreamSpec {
            sample_rate,
            channels,
            format: raw
                .format
                .or(defaults.format)
                .unwrap_or(SampleFormat::Float),
        };
        let duration = match (raw.duration, &raw.reference) {
            (Some(d), _) => {
                if !finite_pos(d) || d > self.max_duration {
                    return Err(self.err(
                        at,
                        Some("duration"),
                        format!(
                            "must be > 0 and at most {} s (raise [limits] max_duration to allow more), got {d}",
                            self.max_duration
                        ),
                    ));
                }
                Some(d)
            }
            // Taken from the reference when the song renders.
            (None, Some(_)) => None,
            (None, None) => {
                return Err(self.err(at, Some("duration"), "missing: give `duration` (seconds)"));
            }
        };
        let verify = self.verify(at, &defaults.verify, &raw.verify)?;
        let archive = match raw.archive {
            None => Some(format!("{}.zip", raw.id)),
            Some(a) if a.is_empty() => None,
            Some(a) => {
                if a.contains(['/', '\\', '\0']) || a == "." || a == ".." || a.len() > 128 {
                    return Err(self.err(
                        at,
                        Some("archive"),
                        "must be a plain file name inside the song folder",
                    ));
                }
                if matches!(a.as_str(), "master.wav" | "report.json" | "stems") {
                    return Err(self.err(
                        at,
                        Some("archive"),
                        format!("{a:?} is a name stemflow writes itself"),
                    ));
                }
                Some(a)
            }
        };
        if let Some(r) = &raw.reference {
            let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
            if r.path.is_empty() {
                return Err(self.err(at, Some("reference.path"), "must not be empty"));
            }
            if !positive(r.min_duration) {
                return Err(self.err(at, Some("reference.min_duration"), "must be a number > 0"));
            }
        }
        let keep_files = raw.keep_files.unwrap_or(true);
        if !keep_files && archive.is_none() {
            return Err(self.err(
                at,
                Some("keep_files"),
                "false needs an archive to keep the audio in",
            ));
        }
        let reference = raw.reference.map(|r| ReferencePlan {
            path: base_dir.join(r.path),
            sample_rate: r.sample_rate,
            channels: r.channels,
            min_duration: r.min_duration,
        });

        let mut section_names = HashSet::new();
        let mut sections = Vec::new();
        for s in &raw.sections {
            if s.name.is_empty() || s.name.len() > 64 {
                return Err(self.err(at, Some("sections.name"), "must be 1 to 64 characters"));
            }
            if !section_names.insert(s.name.clone()) {
                return Err(self.err(
                    at,
                    Some("sections.name"),
                    format!("duplicate section {:?}", s.name),
                ));
            }
            if s.beats == 0 {
                return Err(self.err(
                    at,
                    Some("sections.beats"),
                    format!("section {:?} has 0 beats", s.name),
                ));
            }
            sections.push(Section {
                name: s.name.clone(),
                beats: s.beats,
            });
        }
        let timing = Timing::new(raw.bpm, sample_rate, &sections);
        if let Some(duration) = duration {
            timing
                .check_duration(duration)
                .map_err(|e| self.err(at, Some("sections"), e.to_string()))?;
        }

        if raw.stems.is_empty() {
            return Err(self.err(at, Some("stems"), "the song has no stems"));
        }
        if raw.stems.len() > self.max_stems {
            return Err(self.err(
                at,
                Some("stems"),
                format!(
                    "{} stems; at most {} are allowed (raise [limits] max_stems to allow more)",
                    raw.stems.len(),
                    self.max_stems
                ),
            ));
        }
        let mut names = HashSet::new();
        let mut stems = Vec::new();
        for spanned in raw.stems {
            let stem_span = self.table_region(spanned.span(), false);
            let stem = spanned.into_inner();
            let stem_name = stem.name.clone();
            let stem_at = At {
                span: &stem_span,
                song: Some(&raw.id),
                stem: Some(&stem_name),
            };
            if !is_valid_name(&stem.name) {
                return Err(self.err(
                    stem_at,
                    Some("name"),
                    "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63} (it names a file)",
                ));
            }
            if !names.insert(stem.name.clone()) {
                return Err(self.err(stem_at, Some("name"), "duplicate stem name in this song"));
            }
            stems.push(self.stem(stem_at, stem, spec, base_dir)?);
        }

        let mut plan = SongPlan {
            id: raw.id.clone(),
            index,
            bpm: raw.bpm,
            duration,
            spec,
            seed: raw.seed.or(defaults.seed).unwrap_or(1),
            dither: raw.dither.or(defaults.dither).unwrap_or(Dither::Tpdf),
            verify,
            master: MasterPlan {
                clip: raw.master.clip.unwrap_or(Clip::Hard),
                normalize_lufs: self.bounded(
                    at,
                    "master.normalize_lufs",
                    raw.master.normalize_lufs,
                    -70.0..=0.0,
                    "must be between -70 and 0 LUFS",
                )?,
                limit_true_peak_db: self.bounded(
                    at,
                    "master.limit_true_peak_db",
                    raw.master.limit_true_peak_db,
                    -30.0..=0.0,
                    "must be between -30 and 0 dBTP",
                )?,
            },
            archive,
            keep_files,
            compression: raw
                .compression
                .or(defaults.compression)
                .unwrap_or(Compression::Stored),
            reference,
            timing,
            stems,
            digest: String::new(),
            fingerprint: String::new(),
        };
        plan.digest = digest(&plan);
        Ok(plan)
    }

    fn verify(
        &self,
        at: At<'_>,
        d: &RawVerify,
        s: &RawVerify,
    ) -> Result<VerifyLimits, ManifestError> {
        let (d, s) = (&d.0, &s.0);
        let check = |key: &str, v: Option<f64>, range, what: &str| {
            self.bounded(at, &format!("verify.{key}"), v, range, what)
        };
        let non_negative = |key: &str, song: Option<f64>, def: Option<f64>, fallback: f64| {
            check(
                key,
                song.or(def),
                0.0..=f64::MAX,
                "must be a finite number >= 0",
            )
            .map(|v| v.unwrap_or(fallback))
        };
        Ok(VerifyLimits {
            duration_tolerance: non_negative(
                "duration_tolerance",
                s.duration_tolerance,
                d.duration_tolerance,
                1.0,
            )?,
            max_clip_ratio: non_negative(
                "max_clip_ratio",
                s.max_clip_ratio,
                d.max_clip_ratio,
                0.001,
            )?,
            min_rms: non_negative("min_rms", s.min_rms, d.min_rms, 0.01)?,
            target_lufs: check(
                "target_lufs",
                s.target_lufs.or(d.target_lufs),
                -70.0..=0.0,
                "must be between -70 and 0 LUFS",
            )?,
            lufs_tolerance: non_negative(
                "lufs_tolerance",
                s.lufs_tolerance,
                d.lufs_tolerance,
                1.0,
            )?,
            max_true_peak_db: check(
                "max_true_peak_db",
                s.max_true_peak_db.or(d.max_true_peak_db),
                -30.0..=6.0,
                "must be between -30 and 6 dBTP",
            )?,
        })
    }

    fn stem(
        &self,
        at: At<'_>,
        raw: RawStem,
        spec: StreamSpec,
        base_dir: &Path,
    ) -> Result<StemPlan, ManifestError> {
        let nyquist = spec.sample_rate as f64 / 2.0;
        let check = |key: &str, v: f64, ok: bool, what: &str| {
            if v.is_finite() && ok {
                Ok(v)
            } else {
                Err(self.err(at, Some(key), format!("{what}, got {v}")))
            }
        };
        let length = |l: Option<f64>| -> Result<Option<f64>, ManifestError> {
            l.map(|l| {
                check(
                    "source.length",
                    l,
                    (0.0..=self.max_duration).contains(&l),
                    &format!("must be between 0 and {} s", self.max_duration),
                )
            })
            .transpose()
        };
        let amp = |a: Option<f64>, def: f64| -> Result<f64, ManifestError> {
            let a = a.unwrap_or(def);
            check(
                "source.amp",
                a,
                (0.0..=16.0).contains(&a),
                "must be between 0 and 16",
            )
        };
        let source = match raw.source {
            RawSource::Tone {
                freq,
                amp: a,
                wave,
                length: l,
            } => SourceSpec::Tone {
                freq: check(
                    "source.freq",
                    freq,
                    freq > 0.0 && freq < nyquist,
                    &format!("must be > 0 and below Nyquist ({nyquist} Hz)"),
                )?,
                amp: amp(a, 0.5)?,
                wave: wave.unwrap_or(Wave::Sine),
                length: length(l)?,
            },
            RawSource::Drums {
                amp: a,
                hats,
                length: l,
            } => SourceSpec::Drums {
                amp: amp(a, 0.8)?,
                hats: hats.unwrap_or(false),
                length: length(l)?,
            },
            RawSource::Noise { amp: a, length: l } => SourceSpec::Noise {
                amp: amp(a, 0.1)?,
                length: length(l)?,
            },
            RawSource::Silence { length: l } => SourceSpec::Silence { length: length(l)? },
            RawSource::File { path } => {
                if path.is_empty() {
                    return Err(self.err(at, Some("source.path"), "must not be empty"));
                }
                SourceSpec::File {
                    path: base_dir.join(path),
                }
            }
        };
        let gain = match (raw.gain, raw.gain_db) {
            (Some(_), Some(_)) => {
                return Err(self.err(at, Some("gain_db"), "give `gain` or `gain_db`, not both"));
            }
            (Some(g), None) => check(
                "gain",
                g,
                g.abs() <= 16.0,
                "must be a finite linear gain between -16 and 16",
            )?,
            (None, Some(db)) => 10f64.powf(
                check(
                    "gain_db",
                    db,
                    (-120.0..=24.0).contains(&db),
                    "must be between -120 and 24 dB",
                )? / 20.0,
            ),
            (None, None) => 1.0,
        };
        let pan = raw.pan.unwrap_or(0.0);
        check(
            "pan",
            pan,
            (-1.0..=1.0).contains(&pan),
            "must be between -1 and 1",
        )?;
        let crossfade_ms = raw.crossfade_ms.unwrap_or(50.0);
        check(
            "crossfade_ms",
            crossfade_ms,
            (0.0..=10_000.0).contains(&crossfade_ms),
            "must be between 0 and 10000 ms",
        )?;
        let fade_ms = raw.fade_ms.unwrap_or(10.0);
        check(
            "fade_ms",
            fade_ms,
            (0.0..=60_000.0).contains(&fade_ms),
            "must be between 0 and 60000 ms",
        )?;

        let mut effects = Vec::new();
        for e in raw.effects {
            effects.push(self.effect(at, e, nyquist)?);
        }
        let rhythmic = match raw.role {
            Some(role) => role == Role::Rhythmic,
            None => {
                let name = raw.name.to_ascii_lowercase();
                matches!(source, SourceSpec::Drums { .. })
                    || ["drum", "bass", "perc", "kick", "snare", "hat"]
                        .iter()
                        .any(|w| name.contains(w))
            }
        };
        Ok(StemPlan {
            name: raw.name,
            source,
            align: raw.align.unwrap_or(AlignMode::Auto),
            rhythmic,
            gain,
            pan,
            effects,
            crossfade_ms,
            fade_ms,
        })
    }

    fn effect(&self, at: At<'_>, e: RawEffect, nyquist: f64) -> Result<EffectSpec, ManifestError> {
        let freq = |key: &str, f: f64| {
            if f.is_finite() && f > 0.0 && f < nyquist {
                Ok(f)
            } else {
                Err(self.err(
                    at,
                    Some(key),
                    format!("must be > 0 and below Nyquist ({nyquist} Hz), got {f}"),
                ))
            }
        };
        let order = |o: Option<u8>| match o.unwrap_or(2) {
            o @ (2 | 4 | 6 | 8) => Ok(o),
            o => Err(self.err(
                at,
                Some("effects.order"),
                format!("must be 2, 4, 6 or 8, got {o}"),
            )),
        };
        let q = |q: f64| {
            if q.is_finite() && q > 0.0 && q <= 100.0 {
                Ok(q)
            } else {
                Err(self.err(
                    at,
                    Some("effects.q"),
                    format!("must be > 0 and <= 100, got {q}"),
                ))
            }
        };
        let db = |key: &str, g: f64| {
            if g.is_finite() && g.abs() <= 48.0 {
                Ok(g)
            } else {
                Err(self.err(
                    at,
                    Some(key),
                    format!("must be between -48 and 48 dB, got {g}"),
                ))
            }
        };
        Ok(match e {
            RawEffect::Lowpass { cutoff, order: o } => EffectSpec::Filter(FilterKind::Lowpass {
                cutoff: freq("effects.cutoff", cutoff)?,
                order: order(o)?,
            }),
            RawEffect::Highpass { cutoff, order: o } => EffectSpec::Filter(FilterKind::Highpass {
                cutoff: freq("effects.cutoff", cutoff)?,
                order: order(o)?,
            }),
            RawEffect::Bandpass { freq: f, q: qq } => EffectSpec::Filter(FilterKind::Bandpass {
                freq: freq("effects.freq", f)?,
                q: q(qq)?,
            }),
            RawEffect::Notch { freq: f, q: qq } => EffectSpec::Filter(FilterKind::Notch {
                freq: freq("effects.freq", f)?,
                q: q(qq)?,
            }),
            RawEffect::Peak {
                freq: f,
                q: qq,
                gain_db,
            } => EffectSpec::Filter(FilterKind::Peak {
                freq: freq("effects.freq", f)?,
                q: q(qq)?,
                gain_db: db("effects.gain_db", gain_db)?,
            }),
            RawEffect::Lowshelf { freq: f, gain_db } => EffectSpec::Filter(FilterKind::Lowshelf {
                freq: freq("effects.freq", f)?,
                gain_db: db("effects.gain_db", gain_db)?,
            }),
            RawEffect::Highshelf { freq: f, gain_db } => {
                EffectSpec::Filter(FilterKind::Highshelf {
                    freq: freq("effects.freq", f)?,
                    gain_db: db("effects.gain_db", gain_db)?,
                })
            }
            RawEffect::Gain { db: g } => EffectSpec::Gain {
                db: db("effects.db", g)?,
            },
            RawEffect::Echo {
                delay_ms,
                decay,
                taps,
            } => {
                let taps = taps.unwrap_or(1);
                if !(1..=32).contains(&taps) {
                    return Err(self.err(
                        at,
                        Some("effects.taps"),
                        format!("must be 1 to 32, got {taps}"),
                    ));
                }
                if !(delay_ms.is_finite()
                    && delay_ms > 0.0
                    && delay_ms * taps as f64 <= MAX_ECHO_S * 1000.0)
                {
                    return Err(self.err(
                        at,
                        Some("effects.delay_ms"),
                        format!(
                            "must be > 0 with delay_ms × taps at most {} ms, got {delay_ms}",
                            MAX_ECHO_S * 1000.0
                        ),
                    ));
                }
                if !(decay.is_finite() && decay.abs() <= 1.0) {
                    return Err(self.err(
                        at,
                        Some("effects.decay"),
                        format!("must be between -1 and 1, got {decay}"),
                    ));
                }
                EffectSpec::Echo {
                    delay_ms,
                    decay,
                    taps,
                }
            }
        })
    }
}

/// A stable digest of a song's resolved settings (FNV-1a over its debug
/// form): equal digests mean equal renders.
fn digest(song: &SongPlan) -> String {
    let text = format!(
        "{}|{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        song.id,
        song.bpm,
        song.duration.unwrap_or(0.0),
        song.spec,
        song.seed,
        song.dither,
        song.verify,
        song.master,
        song.archive,
        song.compression,
        song.timing,
        song.stems
    );
    format!("{:016x}", crate::seed::hash64(text.as_bytes()))
}

/// Paths of files a song reads (file stems and its reference).
pub fn input_files(song: &SongPlan) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = song
        .stems
        .iter()
        .filter_map(|s| match &s.source {
            SourceSpec::File { path } => Some(path.clone()),
            _ => None,
        })
        .collect();
    if let Some(r) = &song.reference {
        v.push(r.path.clone());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const SONG: &str = r#"
[[songs]]
id = "s1"
bpm = 120
duration = 8

[[songs.sections]]
name = "a"
beats = 16

[[songs.stems]]
name = "bass"
source = { type = "tone", freq = 110.0 }
"#;

    fn parse_str(s: &str) -> Result<Plan, ManifestError> {
        parse(s, "m.toml", Path::new("."))
    }

    #[test]
    fn minimal_song_gets_defaults() {
        let plan = parse_str(SONG).unwrap();
        let song = &plan.songs[0];
        assert_eq!(song.spec.sample_rate, 48000);
        assert_eq!(song.archive.as_deref(), Some("s1.zip"));
        assert!(song.stems[0].rhythmic, "a bass stem is rhythmic by name");
        assert_eq!(song.target_frames().0, 384_000);
    }

    #[test]
    fn unknown_key_names_key_line_song_and_stem() {
        let text = SONG.replace("source = {", "colour = 3\nsource = {");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("m.toml:13: song \"s1\" stem \"bass\": key `colour`: unknown key"),
            "{e}"
        );
    }

    #[test]
    fn validation_error_points_at_the_key() {
        let text = SONG.replace("bpm = 120", "bpm = -5");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("m.toml:4: song \"s1\": key `bpm`: must be > 0"),
            "{e}"
        );
    }

    #[test]
    fn name_rule() {
        assert!(is_valid_name("demo-1.final_v2"));
        for bad in ["", "../x", "a/b", ".hidden", "-x", &"a".repeat(65), "a\0b"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
