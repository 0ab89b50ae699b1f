//! `stemflow render`: runs the batch, prints the summary (table or JSON)
//! and turns the songs' statuses into the exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::exit::{CliResult, EXIT_INTERRUPTED, EXIT_OK, EXIT_SONG_FAILED, Failure};
use super::print::{errln, out_str};
use super::shard;
use super::{load_plan, print_json};
use crate::batch::{self, BatchOptions};
use crate::output::{Status, Summary};
use crate::progress::Progress;

/// Set by the SIGINT/SIGTERM handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Arguments of `render`.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The manifest (TOML); `-` reads it from standard input (relative
    /// paths then resolve against the current folder); omit to render the
    /// built-in demo.
    pub manifest: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "stemflow-out")]
    pub out: PathBuf,
    /// Songs rendered at once [default: number of CPUs]; jobs beyond the
    /// number of songs render the stems of a song in parallel.
    #[arg(long, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Frames per processing block; never changes the output.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub block_size: u32,
    /// Render only songs whose 0-based position i has i % N == K; `auto`
    /// takes K and N from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX
    /// and STEMFLOW_SHARDS) or a Slurm array (SLURM_ARRAY_TASK_ID,
    /// SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN).
    #[arg(long, value_name = "K/N|auto", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Re-render songs whose previous report says ok.
    #[arg(long)]
    pub force: bool,
    /// Start no new song after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Flush every file of a song to disk before the song folder is put in
    /// place (survives power loss; costs the disk's write time).
    #[arg(long)]
    pub sync: bool,
    /// Keep the audio of a song that fails its checks in
    /// OUT/.stemflow/failed/<id>/ for inspection.
    #[arg(long)]
    pub keep_failed: bool,
    /// Print the summary as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// `--shard`: fixed, or from the scheduler's environment.
#[derive(Clone, Copy, Debug)]
pub enum Shard {
    Fixed(usize, usize),
    Auto,
}

/// Parses `--jobs`: at least one song at a time.
fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (omit --jobs for one job per CPU)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// Parses `--shard K/N` or `--shard auto`.
fn parse_shard(s: &str) -> Result<Shard, String> {
    if s == "auto" {
        return Ok(Shard::Auto);
    }
    parse_k_n(s).map(|(k, n)| Shard::Fixed(k, n))
}

/// Parses `K/N` with 0 <= K < N.
fn parse_k_n(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or("expected K/N (e.g. 0/4) or auto")?;
    let k: usize = k
        .trim()
        .parse()
        .map_err(|_| format!("K in {s:?} is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("N in {s:?} is not a number"))?;
    if n == 0 || k >= n {
        return Err(format!("need 0 <= K < N, got {k}/{n}"));
    }
    Ok((k, n))
}

/// Songs the interrupt actually stopped (mid-render, or never started).
/// A SIGINT that arrives after the last song finished stops nothing, so
/// the run's exit code stays what the songs make it.
fn interrupted_songs(summary: &Summary) -> usize {
    summary
        .songs
        .iter()
        .filter(|s| s.status == Status::Interrupted)
        .count()
}

/// Runs `render`.
pub fn run(args: RenderArgs) -> CliResult {
    let plan = load_plan(args.manifest.as_deref())?;
    let shard = match args.shard {
        None => None,
        Some(Shard::Fixed(k, n)) => Some((k, n)),
        Some(Shard::Auto) => {
            Some(shard::from_env(|k| std::env::var(k).ok()).map_err(Failure::usage)?)
        }
    };
    let jobs = args.jobs.unwrap_or_else(BatchOptions::default_jobs);
    let opts = BatchOptions {
        out: args.out.clone(),
        jobs,
        block_size: args.block_size as usize,
        shard,
        force: args.force,
        fail_fast: args.fail_fast,
        sync: args.sync,
        keep_failed: args.keep_failed,
    };
    // SIGINT and SIGTERM stop the run: songs in flight are abandoned (their
    // staging folders removed), finished songs stay.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    let progress = Progress::new(
        !args.quiet && std::io::stderr().is_terminal(),
        batch::selected(&plan, shard).count(),
    );
    let summary = batch::run(&plan, &opts, &INTERRUPTED, &progress);
    progress.finish(INTERRUPTED.load(Ordering::SeqCst));
    let summary = summary.map_err(Failure::failed)?;
    if args.json {
        print_json(&summary);
    } else {
        out_str(&summary.table());
    }
    let not_ok =
        |s: &&crate::output::SongSummary| matches!(s.status, Status::Failed | Status::Busy);
    for s in summary.songs.iter().filter(not_ok) {
        errln!(
            "stemflow: {}",
            s.errors.first().map(String::as_str).unwrap_or("failed")
        );
    }
    if INTERRUPTED.load(Ordering::SeqCst) && interrupted_songs(&summary) > 0 {
        errln!("stemflow: interrupted; finished songs are complete, the rest were not written");
        return Ok(EXIT_INTERRUPTED);
    }
    // A busy song was not rendered by this run: not ok (SPEC §11).
    if summary.songs.iter().any(|s| not_ok(&s)) {
        Ok(EXIT_SONG_FAILED)
    } else {
        Ok(EXIT_OK)
    }
}
