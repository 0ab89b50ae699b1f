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
use crate::progress::{Progress, SongBar};
use crate::types::Frames;
use crate::verify::{self, Loudness, ReferenceInfo};

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
    /// Flush each song's files to disk before publishing its folder.
    pub sync: bool,
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
    progress: &Progress,
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
    // Jobs left over when there are fewer songs than jobs go to the stems
    // of each song; with as many songs as jobs, each song keeps to one
    // thread, so `--jobs` bounds the cores a run keeps busy.
    let render = RenderOptions {
        block_size: opts.block_size,
        threads: (opts.jobs / jobs).max(1),
    };
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
                        render_one(song, opts, render, interrupt, progress)
                    };
                    progress.song_done();
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
    // Written aside and renamed, so shards sharing OUT never see half a file.
    let path = out.join("summary.json");
    let tmp = out.join(format!("{TMP_PREFIX}summary-{}.json", std::process::id()));
    // Plain structs with string keys: serialising cannot fail.
    let json = serde_json::to_string_pretty(&summary).expect("summary is plain data") + "\n";
    std::fs::write(&tmp, json)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            BatchError { path, source: e }
        })?;
    Ok(summary)
}

fn not_started(song: &SongPlan, why: &str) -> SongSummary {
    SongSummary {
        id: song.id.clone(),
        status: Status::Skipped,
        seconds: 0.0,
        duration: song.duration.unwrap_or(0.0),
        lufs: None,
        true_peak_db: None,
        errors: vec![why.to_string()],
    }
}

/// The song's settings digest extended with the size and modification
/// time of every file it reads: a rerun with the same fingerprint would
/// produce the same bytes.
fn fingerprint(song: &SongPlan) -> String {
    let mut text = song.digest.clone();
    for path in crate::manifest::input_files(song) {
        let meta = std::fs::metadata(&path).ok();
        let mtime = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        text.push_str(&format!(
            "|{}:{:?}:{:?}",
            path.display(),
            meta.map(|m| m.len()),
            mtime
        ));
    }
    format!("{:016x}", crate::seed::hash64(text.as_bytes()))
}

/// Whether OUT/<id> already holds an ok render with this fingerprint.
fn up_to_date(fingerprint: &str, dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<PreviousReport>(&text).ok())
        .is_some_and(|r| r.status == Status::Ok && r.digest == fingerprint)
}

/// Renders one song and moves it into place; never panics on bad input,
/// always leaves either the complete song or its failed report.
fn render_one(
    song: &SongPlan,
    opts: &BatchOptions,
    render: RenderOptions,
    interrupt: &AtomicBool,
    progress: &Progress,
) -> SongSummary {
    let start = Instant::now();
    let final_dir = opts.out.join(&song.id);
    let summary = |song: &SongPlan, status, errors| SongSummary {
        id: song.id.clone(),
        status,
        seconds: start.elapsed().as_secs_f64(),
        duration: song.duration.unwrap_or(0.0),
        lufs: None,
        true_peak_db: None,
        errors,
    };
    let fingerprint = fingerprint(song);
    if !opts.force && up_to_date(&fingerprint, &final_dir) {
        return summary(song, Status::Skipped, vec![]);
    }
    let tmp = opts.out.join(format!("{TMP_PREFIX}{}", song.id));
    let mut song = song.clone();
    song.fingerprint = fingerprint;
    let mut warnings = Vec::new();
    let bar = progress.song(&song.id, song.target_frames_or_zero());
    let result = resolve_reference(&mut song, &mut warnings)
        .and_then(|reference| check_space(&song, &opts.out).map(|_| reference))
        .and_then(|reference| {
            let ctx = RenderCtx {
                song: &song,
                reference: reference.as_ref(),
                tmp: &tmp,
                final_dir: &final_dir,
                render,
                sync: opts.sync,
                interrupt,
                bar: &bar,
            };
            ctx.render(&mut warnings)
        });
    let _ = std::fs::remove_dir_all(&tmp);
    match result {
        Ok(loudness) => SongSummary {
            lufs: loudness.lufs,
            true_peak_db: loudness.true_peak_db,
            ..summary(&song, Status::Ok, vec![])
        },
        // An interrupted song leaves what was there before, untouched.
        Err(e) if matches!(e.error, StageError::Cancelled) => {
            summary(&song, Status::Skipped, vec!["interrupted".to_string()])
        }
        Err(e) => {
            // A failed song leaves its report and nothing else.
            let _ = std::fs::remove_dir_all(&final_dir);
            let report = Report::new(&song, None, None, Some(&e), &warnings).to_json();
            let _ = std::fs::create_dir_all(&final_dir)
                .and_then(|_| std::fs::write(final_dir.join("report.json"), report));
            summary(&song, Status::Failed, vec![e.to_string()])
        }
    }
}

/// Refuses a song whose outputs cannot fit on OUT's filesystem.
fn check_space(song: &SongPlan, out: &Path) -> Result<(), SongError> {
    let need = crate::output::estimate_bytes(song);
    match crate::io::free_bytes(out) {
        Some(free) if free < need => Err(SongError::new(
            &song.id,
            Stage::Output,
            StageError::Invalid(format!(
                "{}: needs about {} MB for its outputs but only {} MB are free",
                out.display(),
                need.div_ceil(1_000_000),
                free / 1_000_000
            )),
        )),
        _ => Ok(()),
    }
}

/// Verifies the song's reference, if any, and takes the target duration
/// from it when the manifest gives none.
fn resolve_reference(
    song: &mut SongPlan,
    warnings: &mut Vec<String>,
) -> Result<Option<ReferenceInfo>, SongError> {
    let Some(plan) = &song.reference else {
        warnings.extend(plan_warnings(song));
        return Ok(None);
    };
    let fail = |song: &SongPlan, error| SongError::new(&song.id, Stage::Reference, error);
    let info = verify::check_reference(plan).map_err(|e| fail(song, e))?;
    match song.duration {
        None => {
            song.duration = Some(info.duration);
            if let Err(e) = song.timing.check_duration(info.duration) {
                return Err(fail(song, StageError::Invalid(e.to_string())));
            }
        }
        Some(target) if (info.duration - target).abs() > song.verify.duration_tolerance => {
            warnings.push(format!(
                "reference lasts {:.3} s, {:.3} s from the target (tolerance {} s)",
                info.duration,
                (info.duration - target).abs(),
                song.verify.duration_tolerance
            ));
        }
        Some(_) => {}
    }
    warnings.extend(plan_warnings(song));
    Ok(Some(info))
}

/// Everything one song's render needs to know.
struct RenderCtx<'a> {
    song: &'a SongPlan,
    reference: Option<&'a ReferenceInfo>,
    tmp: &'a Path,
    final_dir: &'a Path,
    render: RenderOptions,
    sync: bool,
    interrupt: &'a AtomicBool,
    bar: &'a SongBar,
}

impl RenderCtx<'_> {
    /// Renders into the temporary folder, writes report and archive, then
    /// moves the folder into place.
    fn render(&self, warnings: &mut Vec<String>) -> Result<Loudness, SongError> {
        let (song, tmp, final_dir) = (self.song, self.tmp, self.final_dir);
        let fail = |stage, error| SongError::new(&song.id, stage, error);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| fail(Stage::Output, StageError::io(path, e))
        };
        let _ = std::fs::remove_dir_all(tmp);
        std::fs::create_dir_all(tmp).map_err(io(tmp))?;
        let outcome: SongOutcome =
            pipeline::render_song(song, tmp, self.render, self.interrupt, &|done: Frames| {
                self.bar.frames(done)
            })?;
        warnings.extend(source_warnings(song, &outcome));
        let report = Report::new(song, self.reference, Some(&outcome), None, warnings);
        let overview_path = tmp.join("overview.svg");
        std::fs::write(&overview_path, crate::output::overview::svg(song, &outcome))
            .map_err(io(&overview_path))?;
        let report_path = tmp.join("report.json");
        std::fs::write(&report_path, report.to_json()).map_err(io(&report_path))?;
        if let Some(name) = &song.archive {
            self.bar.stage("archive");
            let mut entries: Vec<(String, PathBuf)> = outcome
                .stems
                .iter()
                .map(|s| (s.file.clone(), tmp.join(&s.file)))
                .collect();
            let master_file = &outcome.master.file;
            entries.push((master_file.clone(), tmp.join(master_file)));
            entries.push(("overview.svg".into(), overview_path.clone()));
            entries.push(("report.json".into(), report_path.clone()));
            let refs: Vec<(String, &Path)> = entries
                .iter()
                .map(|(n, p)| (n.clone(), p.as_path()))
                .collect();
            archive::write(&tmp.join(name), &refs, song.compression)
                .map_err(|e| fail(Stage::Archive, e))?;
            if !song.keep_files {
                let stems = tmp.join("stems");
                std::fs::remove_dir_all(&stems).map_err(io(&stems))?;
                let master = tmp.join(&outcome.master.file);
                std::fs::remove_file(&master).map_err(io(&master))?;
            }
        }
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(fail(Stage::Output, StageError::Cancelled));
        }
        if self.sync {
            sync_tree(tmp).map_err(|(path, e)| fail(Stage::Output, StageError::io(path, e)))?;
        }
        if final_dir.exists() {
            std::fs::remove_dir_all(final_dir).map_err(io(final_dir))?;
        }
        std::fs::rename(tmp, final_dir).map_err(io(final_dir))?;
        Ok(outcome.master.loudness)
    }
}

/// Flushes every file under `dir`, and the folders themselves, to disk.
fn sync_tree(dir: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    fn at(p: &Path) -> impl FnOnce(std::io::Error) -> (PathBuf, std::io::Error) + '_ {
        move |e| (p.to_path_buf(), e)
    }
    for entry in std::fs::read_dir(dir).map_err(at(dir))? {
        let path = entry.map_err(at(dir))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_data())
                .map_err(at(&path))?;
        }
    }
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(at(dir))
}

/// Warnings known from the plan: an unassigned tail after the sections.
pub fn plan_warnings(song: &SongPlan) -> Vec<String> {
    let Some(duration) = song.duration else {
        return vec![];
    };
    match song.timing.check_duration(duration) {
        Ok(Some(tail)) => vec![tail],
        _ => vec![],
    }
}

/// Sources further from the target than the tolerance.
fn source_warnings(song: &SongPlan, outcome: &SongOutcome) -> Vec<String> {
    let rate = song.spec.sample_rate;
    outcome
        .stems
        .iter()
        .filter_map(|stem| {
            let off = Frames(stem.align.source_frames).seconds(rate) - song.seconds();
            (off.abs() > song.verify.duration_tolerance).then(|| {
                format!(
                    "stem {:?}: source is {:.3} s {} than the target (tolerance {} s)",
                    stem.name,
                    off.abs(),
                    if off < 0.0 { "shorter" } else { "longer" },
                    song.verify.duration_tolerance
                )
            })
        })
        .collect()
}
