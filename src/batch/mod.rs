//! Runs the songs of a plan: `--jobs` at once, each one locked, rendered into
//! a staging folder under `OUT/.stemflow/tmp/` and swapped into `OUT/<id>`
//! atomically only when it passed (SPEC §5, §11).
//!
//! Why everything goes through [`crate::store`]: OUT may be shared by other
//! processes, may hold folders stemflow never wrote (`--out .`), and a run
//! may be killed at any instant; the store holds the rules that keep every
//! song folder complete and every foreign file untouched. This module only
//! decides what to do with each song: skip (see `resume`), render and
//! publish, or report it failed or busy (see `song`).

mod resume;
mod song;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::output::{SongSummary, Status, Summary};
use crate::pipeline::RenderOptions;
use crate::plan::{Plan, SongPlan};
use crate::progress::Progress;
use crate::store::{OutDir, StoreError};

pub use song::plan_warnings;

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
    /// Keep the rendered files of a song that fails its checks in
    /// `OUT/.stemflow/failed/<id>/` (SPEC §10).
    pub keep_failed: bool,
}

impl BatchOptions {
    /// Songs rendered at once when the user names no number: one per CPU.
    pub fn default_jobs() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// A failure of the whole run (as opposed to one song): OUT or its state
/// folder cannot be used, or `summary.json` cannot be written.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BatchError(#[from] pub StoreError);

/// What every worker shares.
struct Shared<'a> {
    out: &'a OutDir,
    opts: &'a BatchOptions,
    render: RenderOptions,
    interrupt: &'a AtomicBool,
    progress: &'a Progress,
}

/// Renders every selected song; returns one summary line per song.
pub fn run(
    plan: &Plan,
    opts: &BatchOptions,
    interrupt: &AtomicBool,
    progress: &Progress,
) -> Result<Summary, BatchError> {
    let mut out = OutDir::open(&opts.out)?;
    out.set_fsync(opts.sync);
    let songs: Vec<&SongPlan> = selected(plan, opts.shard).collect();
    let jobs = opts.jobs.clamp(1, songs.len().max(1));
    // Jobs left over when there are fewer songs than jobs go to the stems
    // of each song; with as many songs as jobs, each song keeps to one
    // thread, so `--jobs` bounds the cores a run keeps busy.
    let shared = Shared {
        out: &out,
        opts,
        render: RenderOptions {
            block_size: opts.block_size,
            threads: (opts.jobs / jobs).max(1),
        },
        interrupt,
        progress,
    };
    let summary = Summary {
        songs: run_workers(&songs, jobs, &shared),
    };
    // Plain structs with string keys: serialising cannot fail.
    let json = serde_json::to_string_pretty(&summary).expect("summary is plain data") + "\n";
    out.write_atomic("summary.json", json.as_bytes())?;
    Ok(summary)
}

/// The songs of `plan` that `shard` selects (all without one).
pub fn selected(plan: &Plan, shard: Option<(usize, usize)>) -> impl Iterator<Item = &SongPlan> {
    plan.songs
        .iter()
        .filter(move |s| shard.is_none_or(|(k, n)| s.index % n == k))
}

/// Runs `jobs` workers that take songs in order; returns their summaries in
/// song order.
fn run_workers(songs: &[&SongPlan], jobs: usize, shared: &Shared) -> Vec<SongSummary> {
    let results: Mutex<Vec<Option<SongSummary>>> = Mutex::new(vec![None; songs.len()]);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(song) = songs.get(i) else { break };
                    let summary = if shared.interrupt.load(Ordering::Relaxed) {
                        not_started(song, Status::Interrupted, "interrupted before it started")
                    } else if shared.opts.fail_fast && failed.load(Ordering::Relaxed) {
                        not_started(
                            song,
                            Status::Skipped,
                            "not started: --fail-fast after an earlier failure",
                        )
                    } else {
                        song::render_one(song, shared)
                    };
                    shared.progress.song_done();
                    if summary.status == Status::Failed {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(summary);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

fn not_started(song: &SongPlan, status: Status, why: &str) -> SongSummary {
    SongSummary {
        id: song.id.clone(),
        status,
        seconds: 0.0,
        duration: song.duration.unwrap_or(0.0),
        lufs: None,
        true_peak_db: None,
        errors: vec![why.to_string()],
    }
}
