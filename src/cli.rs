//! The command line (SPEC §2). `main` turns every error into one line on
//! stderr and an exit code: 0 ok, 1 a song failed, 2 bad command line or
//! manifest, 130 interrupted.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use crate::batch::{self, BatchOptions};
use crate::manifest;
use crate::output::Status;
use crate::plan::Plan;
use crate::progress::Progress;

/// Set by the SIGINT/SIGTERM handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
use crate::timing::{Section, Timing};

/// Exit code: every song ok.
pub const EXIT_OK: i32 = 0;
/// Exit code: one or more songs failed.
pub const EXIT_SONG_FAILED: i32 = 1;
/// Exit code: bad command line or invalid manifest.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: interrupted.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Renders song manifests into verified, duration-aligned stems, a master
/// mix and a zip of deliverables.
#[derive(Parser, Debug)]
#[command(name = "stemflow", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render the songs of a manifest (the built-in demo if none is given).
    Render(RenderArgs),
    /// Validate a manifest and print its plan and timing; renders nothing.
    Check {
        /// The manifest (TOML).
        manifest: PathBuf,
    },
    /// Print the section timing of a tempo and a list of sections.
    Timing(TimingArgs),
    /// Verify an audio file against expectations.
    Verify {
        file: PathBuf,
        #[arg(long)]
        sample_rate: Option<u32>,
        #[arg(long, value_enum)]
        format: Option<crate::types::SampleFormat>,
        #[arg(long)]
        channels: Option<u16>,
        #[arg(long)]
        min_duration: Option<f64>,
        #[arg(long)]
        duration: Option<f64>,
        #[arg(long)]
        tolerance: Option<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Align an audio file to a duration.
    Align {
        input: PathBuf,
        output: PathBuf,
        #[arg(long)]
        duration: f64,
        #[arg(long, value_enum, default_value = "auto")]
        strategy: crate::plan::AlignMode,
        #[arg(long, value_enum, default_value = "float")]
        format: crate::types::SampleFormat,
        #[arg(long)]
        sample_rate: Option<u32>,
    },
    /// Write the demo manifest to start from.
    Init {
        /// Where to write it.
        #[arg(default_value = "stemflow.toml")]
        path: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The manifest (TOML); omit to render the built-in demo.
    pub manifest: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "stemflow-out")]
    pub out: PathBuf,
    /// Songs rendered at once [default: number of CPUs]; jobs beyond the
    /// number of songs render the stems of a song in parallel.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Frames per processing block; never changes the output.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub block_size: u32,
    /// Render only songs whose 0-based position i has i % N == K.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
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
    /// Print the summary as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct TimingArgs {
    /// Tempo in beats per minute.
    #[arg(long)]
    pub bpm: f64,
    /// Sections as name=beats, comma separated (intro=16,verse=32).
    #[arg(long, value_parser = parse_sections)]
    pub sections: SectionList,
    /// Song duration in seconds, to check the sections against.
    #[arg(long)]
    pub duration: Option<f64>,
    #[arg(long, default_value_t = 48000)]
    pub sample_rate: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parsed `--sections`.
#[derive(Clone, Debug)]
pub struct SectionList(pub Vec<Section>);

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or("expected K/N, e.g. 0/4")?;
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

fn parse_sections(s: &str) -> Result<SectionList, String> {
    s.split(',')
        .map(|part| {
            let (name, beats) = part
                .split_once('=')
                .ok_or(format!("{part:?}: expected name=beats"))?;
            let beats: u32 = beats
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: beats must be a whole number"))?;
            if beats == 0 || name.trim().is_empty() {
                return Err(format!("{part:?}: need a name and beats > 0"));
            }
            Ok(Section {
                name: name.trim().to_string(),
                beats,
            })
        })
        .collect::<Result<_, _>>()
        .map(SectionList)
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("stemflow: {message}");
            code
        }
    }
}

/// An exit code, or an exit code and the one-line error to print.
pub type CliResult = Result<i32, (i32, String)>;

fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Render(args) => render(args),
        Command::Check { manifest } => check(&manifest),
        Command::Timing(args) => timing(args),
        Command::Init { path } => init(&path),
        Command::Verify {
            file,
            sample_rate,
            format,
            channels,
            min_duration,
            duration,
            tolerance,
            json,
        } => crate::tools::verify_file(
            &file,
            &crate::tools::Expect {
                sample_rate,
                format,
                channels,
                min_duration,
                duration,
                tolerance,
            },
            json,
        ),
        Command::Align {
            input,
            output,
            duration,
            strategy,
            format,
            sample_rate,
        } => crate::tools::align_file(&input, &output, duration, strategy, format, sample_rate),
    }
}

fn load_plan(manifest: Option<&Path>) -> Result<Plan, (i32, String)> {
    match manifest {
        Some(path) => manifest::load(path),
        None => manifest::parse(crate::DEMO_MANIFEST, "<built-in demo>", Path::new(".")),
    }
    .map_err(|e| (EXIT_USAGE, e.to_string()))
}

fn render(args: RenderArgs) -> CliResult {
    let plan = load_plan(args.manifest.as_deref())?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = BatchOptions {
        out: args.out.clone(),
        jobs,
        block_size: args.block_size as usize,
        shard: args.shard,
        force: args.force,
        fail_fast: args.fail_fast,
        sync: args.sync,
    };
    // SIGINT and SIGTERM stop the run: songs in flight are abandoned (their
    // temporary folders removed), finished songs stay.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    let progress = Progress::new(
        !args.quiet && std::io::stderr().is_terminal(),
        plan.songs.len(),
    );
    let summary = batch::run(&plan, &opts, &INTERRUPTED, &progress);
    progress.finish();
    let summary = summary.map_err(|e| (EXIT_SONG_FAILED, e.to_string()))?;
    if args.json {
        println!(
            "{}",
            // Plain data with string keys: serialising cannot fail.
            serde_json::to_string_pretty(&summary).expect("summary is plain data")
        );
    } else {
        print!("{}", summary.table());
    }
    for s in summary.songs.iter().filter(|s| s.status == Status::Failed) {
        eprintln!(
            "stemflow: {}",
            s.errors.first().map(String::as_str).unwrap_or("failed")
        );
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("stemflow: interrupted; finished songs are complete, the rest were not written");
        return Ok(EXIT_INTERRUPTED);
    }
    if summary.songs.iter().any(|s| s.status == Status::Failed) {
        Ok(EXIT_SONG_FAILED)
    } else {
        Ok(EXIT_OK)
    }
}

fn check(path: &Path) -> CliResult {
    let plan = load_plan(Some(path))?;
    for song in &plan.songs {
        println!(
            "song {:?}: {} at {} BPM, {} Hz {} {}ch, {} frames, archive {}",
            song.id,
            match song.duration {
                Some(d) => format!("{d} s"),
                None => "duration from the reference".into(),
            },
            song.bpm,
            song.spec.sample_rate,
            song.spec.format.name(),
            song.spec.channels,
            song.target_frames(),
            song.archive.as_deref().unwrap_or("none")
        );
        for stem in &song.stems {
            println!(
                "  stem {:<16} {:<8} align {:<9} gain {:.3} effects {}",
                stem.name,
                stem.source.kind(),
                stem.align.name(),
                stem.gain,
                stem.effects.len()
            );
        }
        print!("{}", song.timing.table());
        for w in batch::plan_warnings(song) {
            println!("  warning: {w}");
        }
    }
    Ok(EXIT_OK)
}

fn timing(args: TimingArgs) -> CliResult {
    if !(args.bpm.is_finite() && args.bpm > 0.0) {
        return Err((EXIT_USAGE, format!("--bpm must be > 0, got {}", args.bpm)));
    }
    if !(8000..=384_000).contains(&args.sample_rate) {
        return Err((
            EXIT_USAGE,
            format!(
                "--sample-rate must be 8000..384000, got {}",
                args.sample_rate
            ),
        ));
    }
    let t = Timing::new(args.bpm, args.sample_rate, &args.sections.0);
    let mut warning = None;
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            return Err((EXIT_USAGE, format!("--duration must be > 0, got {d}")));
        }
        warning = t
            .check_duration(d)
            .map_err(|e| (EXIT_USAGE, e.to_string()))?;
    }
    if args.json {
        println!(
            "{}",
            // Plain data with string keys: serialising cannot fail.
            serde_json::to_string_pretty(&t).expect("timing is plain data")
        );
    } else {
        print!("{}", t.table());
    }
    if let Some(w) = warning {
        eprintln!("stemflow: warning: {w}");
    }
    Ok(EXIT_OK)
}

fn init(path: &Path) -> CliResult {
    if path.exists() {
        return Err((
            EXIT_USAGE,
            format!("{}: already exists; not overwriting", path.display()),
        ));
    }
    std::fs::write(path, crate::DEMO_MANIFEST)
        .map_err(|e| (EXIT_SONG_FAILED, format!("{}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    Ok(EXIT_OK)
}
