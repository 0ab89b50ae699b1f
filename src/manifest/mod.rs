//! The TOML manifest (SPEC §3): parsed strictly, defaults inherited, then
//! validated into a [`Plan`]. Every error is one line naming the file, line,
//! song, stem and key that are wrong.
//!
//! Split like a command-line parser's two stages: `raw` is the file as
//! serde reads it (the parser reports syntax, unknown keys and wrong types),
//! `validate` turns it into the plan step by step (ranges, names, limits),
//! and `locate` finds the line, song and stem an error belongs to, so
//! neither stage has to carry positions around.

// A manifest error is built at most once per run: its size does not matter.
#![allow(clippy::result_large_err)]

mod error;
mod locate;
mod raw;
mod validate;

use std::path::{Path, PathBuf};

use crate::plan::{Plan, SongPlan, SourceSpec};
use raw::RawManifest;
use validate::Validator;

pub use error::ManifestError;

/// Default longest song (and generator length), in seconds; a manifest's
/// `[limits] max_duration` overrides it. Keeps a typo from asking for days
/// of audio.
pub const MAX_DURATION_S: f64 = 24.0 * 3600.0;
/// Default most stems one song may have; `[limits] max_stems` overrides it.
pub const MAX_STEMS: usize = 256;
/// Longest echo memory (delay × taps), in seconds.
pub const MAX_ECHO_S: f64 = 10.0;

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
    let raw: RawManifest =
        toml::from_str(text).map_err(|e| locate::syntax_error(text, file, &e))?;
    Validator::new(text, file, raw.limits)?.plan(raw, base_dir)
}

/// Whether a song id or stem name is well formed:
/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A stable digest of a song's resolved settings (FNV-1a over its debug
/// form): equal digests mean equal renders.
fn digest(song: &SongPlan) -> String {
    let text = format!(
        "{}|{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
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
        song.stems,
        song.keep_files
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

    /// A one-song manifest for the tests of every part of the module.
    pub(super) const SONG: &str = r#"
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

    pub(super) fn parse_str(s: &str) -> Result<Plan, ManifestError> {
        parse(s, "m.toml", Path::new("."))
    }

    #[test]
    fn name_rule() {
        assert!(is_valid_name("demo-1.final_v2"));
        for bad in ["", "../x", "a/b", ".hidden", "-x", &"a".repeat(65), "a\0b"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
