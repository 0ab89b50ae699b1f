//! `stemflow init --from-dir DIR`: a manifest for a folder of stems, so a
//! user with files does not start from a blank page. Each audio file
//! becomes a `file` stem; a file named like `ref*`/`reference*` becomes
//! the song's reference instead. The target duration is the reference's,
//! else the longest file's (every stem is then extended, none cut). Roles
//! are guessed from the names (SPEC §4: a rhythmic stem loops on the bar
//! grid, a melodic one is extended by crossfading its tail); the user is
//! expected to read and adjust the result, starting with the tempo.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ToolError;
use crate::error::StageError;
use crate::source::file;

/// File extensions read as audio (the decoder's containers).
const AUDIO_EXTENSIONS: [&str; 16] = [
    "wav", "wave", "flac", "mp3", "mp2", "ogg", "oga", "aif", "aiff", "aifc", "m4a", "mp4", "aac",
    "caf", "mka", "mkv",
];
/// Name parts that make a stem rhythmic: the SPEC's own list, and loops.
const RHYTHMIC: [&str; 14] = [
    "drum", "kick", "snare", "hat", "perc", "bass", "beat", "loop", "clap", "tom", "cymbal",
    "shaker", "groove", "break",
];
/// Name parts that make a stem melodic.
const MELODIC: [&str; 17] = [
    "vocal", "vox", "voice", "choir", "pad", "key", "piano", "organ", "guitar", "gtr", "synth",
    "lead", "string", "chord", "melod", "brass", "horn",
];
/// Tempo written when none is known: the user sets the real one.
const DEFAULT_BPM: u32 = 120;

/// A generated manifest and what went into it.
#[derive(Debug, Serialize)]
pub struct Scaffold {
    /// The manifest text.
    #[serde(skip)]
    pub text: String,
    pub id: String,
    pub duration: f64,
    /// The file the duration was taken from.
    pub duration_from: String,
    pub reference: Option<String>,
    pub stems: Vec<ScaffoldStem>,
}

/// One stem of a generated manifest.
#[derive(Debug, Serialize)]
pub struct ScaffoldStem {
    pub name: String,
    /// As written in the manifest (relative to the manifest's folder).
    pub path: String,
    pub role: Option<&'static str>,
    pub seconds: f64,
}

/// One audio file found.
struct Found {
    path: PathBuf,
    stem: String,
    seconds: f64,
}

/// The manifest for the audio files directly inside `dir`, with paths
/// relative to `manifest_dir` (the folder the manifest will live in).
pub fn from_dir(dir: &Path, manifest_dir: &Path) -> Result<Scaffold, ToolError> {
    let files = audio_files(dir)?;
    let is_ref = |f: &&Found| f.stem.to_ascii_lowercase().starts_with("ref");
    let reference = files.iter().find(is_ref);
    let stems: Vec<&Found> = files
        .iter()
        .filter(|f| reference.is_none_or(|r| r.path != f.path))
        .collect();
    let longest = stems
        .iter()
        .copied()
        .max_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let (Some(timing), true) = (reference.or(longest), !stems.is_empty()) else {
        return Err(ToolError::Argument(format!(
            "{}: no audio stems found ({} files)",
            dir.display(),
            AUDIO_EXTENSIONS.join(", ")
        )));
    };
    let base = relative_base(dir, manifest_dir);
    let rel = |f: &Found| match &base {
        Some(b) => b.join(f.path.file_name().unwrap_or_default()),
        None => f.path.clone(),
    };
    let mut names = Vec::new();
    let stems: Vec<ScaffoldStem> = stems
        .iter()
        .map(|f| {
            let name = unique(stem_name(&f.stem), &mut names);
            ScaffoldStem {
                role: guess_role(&name),
                name,
                path: rel(f).display().to_string(),
                seconds: f.seconds,
            }
        })
        .collect();
    let folder = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "song".into());
    let mut id = stem_name(&folder);
    if crate::manifest::is_reserved_name(&id) {
        // A folder called `stems` must not name a song folder `stems`.
        id = format!("song-{id}");
    }
    let mut s = Scaffold {
        text: String::new(),
        id,
        duration: timing.seconds,
        duration_from: rel(timing).display().to_string(),
        reference: reference.map(|r| rel(r).display().to_string()),
        stems,
    };
    s.text = manifest_text(&s, (folder != s.id).then_some(folder.as_str()));
    Ok(s)
}

/// The audio files directly in `dir` (not its subfolders, not hidden
/// files), sorted by name, each probed for its length.
fn audio_files(dir: &Path) -> Result<Vec<Found>, ToolError> {
    let io = |e| ToolError::Stage(StageError::io(dir, e));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_audio(p))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let info = file::probe(&path)?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Found {
                seconds: info.seconds(),
                path,
                stem,
            })
        })
        .collect()
}

fn is_audio(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    !hidden && ext.is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.as_str()))
}

/// How to name `dir`'s files from `manifest_dir`: `Some(prefix)` when
/// `dir` is that folder or below it, `None` (absolute paths) otherwise.
fn relative_base(dir: &Path, manifest_dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    let from = manifest_dir.canonicalize().ok()?;
    dir.strip_prefix(&from).ok().map(Path::to_path_buf)
}

/// A valid stem or song name (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`) from a
/// file name: other characters become `_`, accents lose their marks only
/// by becoming `_` (the title keeps the real name).
fn stem_name(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                true => c,
                false => '_',
            },
        )
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(60)
        .collect();
    match clean.is_empty() {
        true => "stem".into(),
        false => clean,
    }
}

/// `name`, or `name-2`, `name-3`... if already taken.
fn unique(name: String, taken: &mut Vec<String>) -> String {
    let lower = |s: &str| s.to_ascii_lowercase();
    let mut candidate = name.clone();
    let mut n = 2;
    while taken.iter().any(|t| lower(t) == lower(&candidate)) {
        candidate = format!("{name}-{n}");
        n += 1;
    }
    taken.push(candidate.clone());
    candidate
}

/// `rhythmic` or `melodic` from the name, `None` when it says neither.
fn guess_role(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    if RHYTHMIC.iter().any(|w| name.contains(w)) {
        Some("rhythmic")
    } else if MELODIC.iter().any(|w| name.contains(w)) {
        Some("melodic")
    } else {
        None
    }
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The manifest text of `s`; `title` when the folder's name is not a
/// valid id as it stands.
fn manifest_text(s: &Scaffold, title: Option<&str>) -> String {
    let mut t = String::from(
        "# Written by `stemflow init --from-dir`: one stem per audio file.\n\
         # Check the tempo and the roles, then `stemflow check` this file.\n\n[[songs]]\n",
    );
    t += &format!("id = {}\n", quoted(&s.id));
    if let Some(title) = title.filter(|t| !t.chars().any(char::is_control)) {
        t += &format!("title = {}\n", quoted(title));
    }
    t += &format!("bpm = {DEFAULT_BPM}  # set the song's tempo: bar-grid loops follow it\n");
    t += &format!(
        "duration = {:.6}  # seconds, from {}\n",
        s.duration,
        quoted(&s.duration_from)
    );
    // Stems from one session sum to the mix at unity gain; the limiter only
    // catches the overs such a sum can have.
    t += "\n[songs.master]\nlimit_true_peak_db = -1.0\n";
    if let Some(r) = &s.reference {
        t += &format!("\n[songs.reference]\npath = {}\n", quoted(r));
    }
    for stem in &s.stems {
        t += &format!(
            "\n[[songs.stems]]\nname = {}\nsource = {{ type = \"file\", path = {} }}\n",
            quoted(&stem.name),
            quoted(&stem.path)
        );
        if let Some(role) = stem.role {
            t += &format!("role = \"{role}\"\n");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_valid_ids_and_stay_unique() {
        assert_eq!(stem_name("Kick Drum (final)"), "Kick_Drum__final_");
        assert_eq!(stem_name("  _Voix été"), "Voix__t_");
        assert_eq!(stem_name("%%%"), "stem");
        let mut taken = Vec::new();
        assert_eq!(unique("bass".into(), &mut taken), "bass");
        assert_eq!(unique("Bass".into(), &mut taken), "Bass-2");
        assert!(crate::manifest::is_valid_name(&stem_name(&"é".repeat(100))));
        assert!(crate::manifest::is_valid_name(&stem_name(&"x".repeat(100))));
    }

    #[test]
    fn roles_follow_the_names() {
        for (name, role) in [
            ("Kick", Some("rhythmic")),
            ("drums_bus", Some("rhythmic")),
            ("sub-bass", Some("rhythmic")),
            ("Lead_Vox", Some("melodic")),
            ("pad2", Some("melodic")),
            ("ambience", None),
        ] {
            assert_eq!(guess_role(name), role, "{name}");
        }
    }
}
