//! Runs the songs of a plan: `--jobs` at once, each rendered into a
//! temporary folder inside OUT and moved into place only when it passed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crate::error::{SongError, Stage, StageError};
use crate::output::{PreviousReport, Report, SongSummary, Status, Summary, archive};
use crate::pipeline::{self, RenderOptions, SongOutcome};
use crate::plan::{Plan, SongPlan};
use crate::types::Frames;

/// Prefix of the temporary song folders inside OUT.
pub const TMP_PREFIX: &str = ".stemflow-tmp-";

/// How a batch runs.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    pub out: PathBuf,
    pub jobs: usize,
    pub block_size: usize,
    /// `(k, n)`: render only songs whose index i has i % n == k.
    pub shard: Option<(usize, usize)>,
    pub force: bool,
    pub fail_fast: bool,
}

/// A failure of the whole run (as opposed to one song).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct BatchError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Renders every selected song; returns one summary line per song.
pub fn run(
    plan: &Plan,
    opts: &BatchOptions,
    interrupt: &AtomicBool,
) -> Result<Summary, BatchError> {
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| BatchError {
        path: out.clone(),
        source: e,
    })?;
    let songs: Vec<&SongPlan> = plan
        .songs
        .iter()
        .filter(|s| opts.shard.is_none_or(|(k, n)| s.index % n == k))
        .collect();
    let results: Mutex<Vec<Option<SongSummary>>> = Mutex::new(vec![None; songs.len()]);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let jobs = opts.jobs.clamp(1, songs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(song) = songs.get(i) else { break };
                    let summary = if interrupt.load(Ordering::Relaxed) {
                        not_started(song, "interrupted before it started")
                    } else if opts.fail_fast && failed.load(Ordering::Relaxed) {
                        not_started(song, "not started: --fail-fast after an earlier failure")
                    } else {
                        render_one(song, opts, interrupt)
                    };
                    if summary.status == Status::Failed {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(summary);
                }
            });
        }
    });
    let summary = Summary {
        songs: results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .flatten()
            .collect(),
    };
    let path = out.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).expect("summary is plain data") + "\n";
    std::fs::write(&path, json).map_err(|e| BatchError { path, source: e })?;
    Ok(summary)
}

fn not_started(song: &SongPlan, why: &str) -> SongSummary {
    SongSummary {
        id: song.id.clone(),
        status: Status::Skipped,
        seconds: 0.0,
        duration: song.duration,
        errors: vec![why.to_string()],
    }
}

/// Whether OUT/<id> already holds an ok render of the same settings.
fn up_to_date(song: &SongPlan, dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<PreviousReport>(&text).ok())
        .is_some_and(|r| r.status == Status::Ok && r.digest == song.digest)
}

/// Renders one song and moves it into place; never panics on bad input,
/// always leaves either the complete song or its failed report.
fn render_one(song: &SongPlan, opts: &BatchOptions, interrupt: &AtomicBool) -> SongSummary {
    let start = Instant::now();
    let final_dir = opts.out.join(&song.id);
    if !opts.force && up_to_date(song, &final_dir) {
        return SongSummary {
            id: song.id.clone(),
            status: Status::Skipped,
            seconds: 0.0,
            duration: song.duration,
            errors: vec![],
        };
    }
    let tmp = opts.out.join(format!("{TMP_PREFIX}{}", song.id));
    let warnings = warnings(song);
    let result = render_into(song, &tmp, &final_dir, opts, interrupt, &warnings);
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&tmp);
    match result {
        Ok(()) => SongSummary {
            id: song.id.clone(),
            status: Status::Ok,
            seconds,
            duration: song.duration,
            errors: vec![],
        },
        Err(e) => {
            // A failed song leaves its report and nothing else.
            let _ = std::fs::remove_dir_all(&final_dir);
            let report = Report::new(song, None, Some(&e), &warnings).to_json();
            let _ = std::fs::create_dir_all(&final_dir)
                .and_then(|_| std::fs::write(final_dir.join("report.json"), report));
            SongSummary {
                id: song.id.clone(),
                status: Status::Failed,
                seconds,
                duration: song.duration,
                errors: vec![e.to_string()],
            }
        }
    }
}

fn render_into(
    song: &SongPlan,
    tmp: &Path,
    final_dir: &Path,
    opts: &BatchOptions,
    interrupt: &AtomicBool,
    warnings: &[String],
) -> Result<(), SongError> {
    let fail = |stage, error| SongError {
        song: song.id.clone(),
        stage,
        stem: None,
        error,
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| fail(Stage::Output, StageError::io(path, e))
    };
    let _ = std::fs::remove_dir_all(tmp);
    std::fs::create_dir_all(tmp).map_err(io(tmp))?;
    let outcome: SongOutcome = pipeline::render_song(
        song,
        tmp,
        RenderOptions {
            block_size: opts.block_size,
        },
        interrupt,
        &|_: Frames| {},
    )?;
    let report = Report::new(song, Some(&outcome), None, warnings);
    let report_path = tmp.join("report.json");
    std::fs::write(&report_path, report.to_json()).map_err(io(&report_path))?;
    if let Some(name) = &song.archive {
        let mut entries: Vec<(String, PathBuf)> = outcome
            .stems
            .iter()
            .map(|s| (s.file.clone(), tmp.join(&s.file)))
            .collect();
        entries.push(("master.wav".into(), tmp.join("master.wav")));
        entries.push(("report.json".into(), report_path.clone()));
        let refs: Vec<(String, &Path)> = entries
            .iter()
            .map(|(n, p)| (n.clone(), p.as_path()))
            .collect();
        archive::write(&tmp.join(name), &refs, song.compression)
            .map_err(|e| fail(Stage::Archive, e))?;
    }
    if interrupt.load(Ordering::Relaxed) {
        return Err(fail(Stage::Output, StageError::Cancelled));
    }
    if final_dir.exists() {
        std::fs::remove_dir_all(final_dir).map_err(io(final_dir))?;
    }
    std::fs::rename(tmp, final_dir).map_err(io(final_dir))
}

/// Warnings known from the plan: an unassigned tail after the sections, and
/// generated sources further from the target than the tolerance.
pub fn warnings(song: &SongPlan) -> Vec<String> {
    let mut w = Vec::new();
    if let Ok(Some(tail)) = song.timing.check_duration(song.duration) {
        w.push(tail);
    }
    for stem in &song.stems {
        let length = match &stem.source {
            crate::plan::SourceSpec::Tone { length, .. }
            | crate::plan::SourceSpec::Drums { length, .. }
            | crate::plan::SourceSpec::Noise { length, .. }
            | crate::plan::SourceSpec::Silence { length } => *length,
            crate::plan::SourceSpec::File { .. } => continue,
        };
        let off = length - song.duration;
        if off.abs() > song.verify.duration_tolerance {
            w.push(format!(
                "stem {:?}: source is {:.3} s {} than the target (tolerance {} s)",
                stem.name,
                off.abs(),
                if off < 0.0 { "shorter" } else { "longer" },
                song.verify.duration_tolerance
            ));
        }
    }
    w
}
