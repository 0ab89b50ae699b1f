//! `stemflow summary OUT`: one catalogue of every song report under OUT.
//!
//! Why read the reports and not `summary.json`: a summary covers one run
//! (one shard, and after a resume only what that run did), while every
//! song folder keeps its `report.json` whatever run wrote it. Walking OUT
//! for them gathers any number of shards and runs, including shards that
//! wrote into sub-folders of OUT. The run state (`.stemflow/`) is skipped:
//! what it holds is either in a song folder too or a failure the song
//! folder does not show, and it is not a catalogue.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StageError;

/// How deep below OUT reports are looked for (OUT/shard-3/run/<id>/).
const MAX_DEPTH: usize = 4;

/// One song of the catalogue.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Entry {
    pub id: String,
    /// The free-text title, else the id.
    pub title: String,
    /// "ok", "failed", or "unreadable" for a report that cannot be read.
    pub status: String,
    pub duration: f64,
    pub lufs: Option<f64>,
    pub true_peak_db: Option<f64>,
    pub clip_ratio: Option<f64>,
    pub errors: Vec<String>,
    /// The song folder, relative to OUT.
    pub folder: String,
    /// The overview picture, if the folder has one.
    #[serde(skip)]
    pub overview: Option<PathBuf>,
}

impl Entry {
    /// Whether the song needs a look: anything but ok.
    pub fn is_failure(&self) -> bool {
        self.status != "ok"
    }
}

/// The fields of `report.json` the catalogue shows.
#[derive(Deserialize)]
struct ReportFields {
    song: String,
    title: Option<String>,
    status: String,
    #[serde(default)]
    duration: f64,
    master: Option<MasterFields>,
    #[serde(default)]
    errors: Vec<ErrorFields>,
}

#[derive(Deserialize)]
struct MasterFields {
    lufs: Option<f64>,
    true_peak_db: Option<f64>,
    clip_ratio: Option<f64>,
}

#[derive(Deserialize)]
struct ErrorFields {
    message: String,
}

/// Every song report under `out`, sorted by id then folder.
pub fn gather(out: &Path) -> Result<Vec<Entry>, StageError> {
    let meta = std::fs::metadata(out).map_err(|e| StageError::io(out, e))?;
    if !meta.is_dir() {
        return Err(StageError::Invalid(format!(
            "{}: not a folder (give the --out folder of a render)",
            out.display()
        )));
    }
    let mut entries = Vec::new();
    walk(out, out, 0, &mut entries);
    entries.sort_by(|a, b| (&a.id, &a.folder).cmp(&(&b.id, &b.folder)));
    Ok(entries)
}

/// Collects the reports in `dir` and below, never following links.
fn walk(root: &Path, dir: &Path, depth: usize, entries: &mut Vec<Entry>) {
    let report = dir.join("report.json");
    if depth > 0 && std::fs::symlink_metadata(&report).is_ok_and(|m| m.is_file()) {
        entries.push(read_entry(root, dir, &report));
    }
    if depth == MAX_DEPTH {
        return;
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name() != ".stemflow" && e.file_name() != "stems")
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        walk(root, &sub, depth + 1, entries);
    }
}

/// The entry of the report at `report` in song folder `dir`.
fn read_entry(root: &Path, dir: &Path, report: &Path) -> Entry {
    let folder = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
    let overview = Some(dir.join("overview.svg")).filter(|p| p.is_file());
    let parsed = std::fs::read_to_string(report)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<ReportFields>(&t).map_err(|e| e.to_string()));
    match parsed {
        Ok(r) => Entry {
            title: r.title.unwrap_or_else(|| r.song.clone()),
            id: r.song,
            status: r.status,
            duration: r.duration,
            lufs: r.master.as_ref().and_then(|m| m.lufs),
            true_peak_db: r.master.as_ref().and_then(|m| m.true_peak_db),
            clip_ratio: r.master.as_ref().and_then(|m| m.clip_ratio),
            errors: r.errors.into_iter().map(|e| e.message).collect(),
            folder,
            overview,
        },
        Err(why) => Entry {
            id: folder.clone(),
            title: folder.clone(),
            status: "unreadable".into(),
            duration: 0.0,
            lufs: None,
            true_peak_db: None,
            clip_ratio: None,
            errors: vec![format!("{}: {why}", report.display())],
            folder,
            overview: None,
        },
    }
}

/// A figure with `decimals`, or `-`.
fn fig(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// `s` cut to `n` characters (an ellipsis marks the cut).
fn cut(s: &str, n: usize) -> String {
    match s.chars().count() > n {
        true => s.chars().take(n - 1).chain(['…']).collect(),
        false => s.to_string(),
    }
}

/// The plain-text table, one line per song, and a count of each status.
pub fn table(entries: &[Entry]) -> String {
    let mut out = format!(
        "{:<24} {:<28} {:<10} {:>9} {:>7} {:>7} {:>9}  {}\n",
        "id", "title", "status", "duration", "LUFS", "dBTP", "clip", "errors"
    );
    for e in entries {
        out.push_str(&format!(
            "{:<24} {:<28} {:<10} {:>8.1}s {:>7} {:>7} {:>9}  {}\n",
            e.id,
            cut(&e.title, 28),
            e.status,
            e.duration,
            fig(e.lufs, 1),
            fig(e.true_peak_db, 1),
            fig(e.clip_ratio, 5),
            e.errors.first().map_or("", |s| s.as_str())
        ));
    }
    let failed = entries.iter().filter(|e| e.is_failure()).count();
    out.push_str(&format!(
        "{} songs: {} ok, {} not ok\n",
        entries.len(),
        entries.len() - failed,
        failed
    ));
    out
}

/// One CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    match s.contains([',', '"', '\n', '\r']) {
        true => format!("\"{}\"", s.replace('"', "\"\"")),
        false => s.to_string(),
    }
}

/// The catalogue as CSV with a header row; empty fields for no figure.
pub fn csv(entries: &[Entry]) -> String {
    let mut out =
        String::from("id,title,status,duration,lufs,true_peak_db,clip_ratio,errors,folder\n");
    let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for e in entries {
        let fields = [
            csv_field(&e.id),
            csv_field(&e.title),
            csv_field(&e.status),
            e.duration.to_string(),
            num(e.lufs),
            num(e.true_peak_db),
            num(e.clip_ratio),
            csv_field(&e.errors.join("; ")),
            csv_field(&e.folder),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn long_titles_are_cut_by_characters() {
        assert_eq!(cut("ééééé", 3), "éé…");
        assert_eq!(cut("abc", 3), "abc");
    }
}
