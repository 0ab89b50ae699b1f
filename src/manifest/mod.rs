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
mod split;
mod validate;

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::plan::{Plan, SongPlan, SourceSpec};
use raw::{RawManifest, RawSongTable};
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

/// Largest manifest accepted, in bytes. Ten thousand songs take about
/// 11 MB; the limit keeps a wrong path (`/dev/zero`, a multi-gigabyte
/// file) from filling memory before a single song is read.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// Reads and validates a manifest file. Only a regular file is read (a FIFO
/// or device is refused before it is opened), and at most
/// [`MAX_MANIFEST_BYTES`] of it.
pub fn load(path: &Path) -> Result<Plan, ManifestError> {
    let text = read_bounded(path).map_err(|m| cannot_read(&path.display().to_string(), m))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &path.display().to_string(), &base)
}

/// Reads and validates a manifest from standard input (`render -`, SPEC
/// §12), at most [`MAX_MANIFEST_BYTES`] of it. It has no folder of its
/// own, so relative paths resolve against the current folder.
pub fn load_stdin() -> Result<Plan, ManifestError> {
    const NAME: &str = "<stdin>";
    let text = read_limited(std::io::stdin().lock()).map_err(|m| cannot_read(NAME, m))?;
    parse(&text, NAME, Path::new(""))
}

fn cannot_read(file: &str, message: String) -> ManifestError {
    ManifestError {
        file: file.to_string(),
        line: None,
        song: None,
        stem: None,
        key: None,
        message: format!("cannot read manifest: {message}"),
    }
}

/// The text of the regular file at `path`, if it is at most
/// [`MAX_MANIFEST_BYTES`] of UTF-8; read through a bounded reader so a
/// file growing while it is read cannot exceed the limit either.
fn read_bounded(path: &Path) -> Result<String, String> {
    let (file, meta) = crate::io::open_regular(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(too_big());
    }
    read_limited(file)
}

fn too_big() -> String {
    format!("larger than the limit of {MAX_MANIFEST_BYTES} bytes (64 MiB)")
}

/// At most [`MAX_MANIFEST_BYTES`] of UTF-8 text from `reader`.
fn read_limited(reader: impl std::io::Read) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text ({e})"))
}

/// Parses and validates manifest text. `file` names it in errors; relative
/// paths are resolved against `base_dir`.
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Plan, ManifestError> {
    match split::song_tables(text) {
        Some(songs) if !songs.is_empty() => parse_by_song(text, &songs, file, base_dir),
        _ => parse_whole(text, file, base_dir),
    }
}

/// Parses the text as one document (memory: many times its size).
fn parse_whole(text: &str, file: &str, base_dir: &Path) -> Result<Plan, ManifestError> {
    let raw: RawManifest =
        toml::from_str(text).map_err(|e| locate::syntax_error(text, file, &e))?;
    Validator::new(text, file, raw.limits)?.plan(raw, base_dir)
}

/// Parses the text without its songs, then each song table alone, turning
/// it into its plan before the next is parsed: memory stays proportional
/// to the plan, not to the parser's view of the whole file. Errors name the
/// same lines as a whole parse would.
fn parse_by_song(
    text: &str,
    songs: &[Range<usize>],
    file: &str,
    base_dir: &Path,
) -> Result<Plan, ManifestError> {
    let rest = split::skeleton(text, songs);
    let raw: RawManifest =
        toml::from_str(&rest).map_err(|e| locate::syntax_error(&rest, file, &e))?;
    if raw.songs.is_some() {
        // `songs` also defined outside its tables: let the parser judge.
        return parse_whole(text, file, base_dir);
    }
    let top = Validator::new(&rest, file, raw.limits)?;
    let mut ids = HashSet::new();
    let mut plan = Vec::with_capacity(songs.len());
    let (mut lines_before, mut counted) = (0, 0);
    for range in songs {
        lines_before += text[counted..range.start].matches('\n').count();
        counted = range.start;
        let table = &text[range.clone()];
        let below = |e: ManifestError| ManifestError {
            line: e.line.map(|l| l + lines_before),
            ..e
        };
        let doc: RawSongTable =
            toml::from_str(table).map_err(|e| below(locate::syntax_error(table, file, &e)))?;
        let v = top.for_text(table);
        for song in doc.songs {
            let index = plan.len();
            let song = v.song_entry(index, song, &raw.defaults, base_dir, &mut ids);
            plan.push(song.map_err(below)?);
        }
    }
    Ok(Plan {
        base_dir: base_dir.to_path_buf(),
        songs: plan,
    })
}

/// Names stemflow writes itself in OUT or in a song folder (SPEC §11): a
/// song id or archive named like one would collide with stemflow's own
/// files (an archive named `overview.svg` would zip itself).
pub const RESERVED_NAMES: [&str; 8] = [
    "summary.json",
    ".stemflow",
    "report.json",
    "master.wav",
    "master.flac",
    "overview.svg",
    "stems",
    "deliver",
];

/// Whether `name` is one stemflow writes itself, or starts like its
/// hidden state and temporary files (`.stemflow*`). Compared ignoring ASCII
/// case, so a case-insensitive filesystem cannot make two names one file.
pub fn is_reserved_name(name: &str) -> bool {
    RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name))
        || name
            .get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case(".stemflow"))
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
    let mut text = format!(
        "{}|{}|{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}",
        song.id,
        song.bpm,
        song.meter,
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
        song.keep_files,
        song.delivery
    );
    // Only when there are any: songs without versions keep their digest.
    if !song.deliver.is_empty() {
        text.push_str(&format!("|{:?}", song.deliver));
    }
    // Appended only when set: songs without a title keep their digests.
    if let Some(title) = &song.title {
        text.push_str(&format!("|title={title}"));
    }
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
    fn reserved_names() {
        for name in RESERVED_NAMES {
            assert!(is_reserved_name(name), "{name}");
        }
        for name in ["Summary.JSON", ".stemflow-song", ".stemflow-tmp-x", "STEMS"] {
            assert!(is_reserved_name(name), "{name}");
        }
        for name in ["summary", "stems.zip", "song.stemflow", "demo.zip"] {
            assert!(!is_reserved_name(name), "{name}");
        }
    }

    #[test]
    fn name_rule() {
        assert!(is_valid_name("demo-1.final_v2"));
        for bad in ["", "../x", "a/b", ".hidden", "-x", &"a".repeat(65), "a\0b"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    /// Song-by-song parsing must accept exactly what a whole parse accepts,
    /// with the same plan, and reject what it rejects: checked on mutations
    /// of the committed manifests. With several mistakes the two may name
    /// different ones (a whole parse reads every song before checking any;
    /// song by song, an earlier song's bad value comes first), so the error
    /// lines need only agree in most cases.
    #[test]
    fn song_by_song_parsing_agrees_with_a_whole_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let corpus: Vec<String> = ["fixtures/demo.toml", "tests/golden/every.toml"]
            .iter()
            .map(|p| std::fs::read_to_string(dir.join(p)).unwrap())
            .collect();
        let mut state = 7u64;
        let mut next = |n: usize| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            (crate::seed::mix64(state) % n.max(1) as u64) as usize
        };
        let tokens = [
            "[[songs]]\n",
            "[defaults]\n",
            "id = \"x\"\n",
            "\"\"\"",
            "[",
            "]",
            "\n",
            "#",
        ];
        let (mut same_ok, mut same_err, mut same_line) = (0, 0, 0);
        for _ in 0..1500 {
            let mut text = corpus[next(corpus.len())].clone();
            let mut at = next(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match next(3) {
                0 => text.insert_str(at, tokens[next(tokens.len())]),
                1 => {
                    let mut end = (at + next(20)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => text = format!("{text}{}", corpus[0]),
            }
            let split = parse(&text, "m.toml", Path::new("."));
            let whole = parse_whole(&text, "m.toml", Path::new("."));
            match (split, whole) {
                (Ok(a), Ok(b)) => {
                    let digests =
                        |p: &Plan| p.songs.iter().map(|s| s.digest.clone()).collect::<Vec<_>>();
                    assert_eq!(digests(&a), digests(&b), "{text}");
                    same_ok += 1;
                }
                (Err(a), Err(b)) => {
                    same_err += 1;
                    same_line += usize::from(a.line == b.line);
                }
                (a, b) => panic!("split {:?} whole {:?}\n{text}", a.err(), b.err()),
            }
        }
        assert!(same_ok > 100 && same_err > 100, "{same_ok} {same_err}");
        assert!(same_line * 10 >= same_err * 9, "{same_line} of {same_err}");
    }
}
