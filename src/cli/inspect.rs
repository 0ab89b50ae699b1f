//! The subcommands that render nothing: `check` (a manifest's plan and
//! timing), `timing` (sections from a tempo) and `init` (the demo
//! manifest to start from).

use std::path::{Path, PathBuf};

use super::exit::{CliResult, EXIT_OK, Failure};
use super::print::{errln, out_str, outln};
use super::{load_plan, print_json};
use crate::timing::{Section, Timing};

/// Arguments of `timing`.
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
    /// Sample rate the frame positions are given at.
    #[arg(long, default_value_t = 48000)]
    pub sample_rate: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parsed `--sections`.
#[derive(Clone, Debug)]
pub struct SectionList(pub Vec<Section>);

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

/// Runs `check`: the plan of every song, its timing and its warnings.
pub fn check(path: &Path) -> CliResult {
    let plan = load_plan(Some(path))?;
    for song in &plan.songs {
        outln!(
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
            song.target_frames_or_zero(),
            song.archive.as_deref().unwrap_or("none")
        );
        for stem in &song.stems {
            outln!(
                "  stem {:<16} {:<8} align {:<9} gain {:.3} effects {}",
                stem.name,
                stem.source.kind(),
                stem.align.name(),
                stem.gain,
                stem.effects.len()
            );
        }
        out_str(&song.timing.table());
        for w in crate::batch::plan_warnings(song) {
            outln!("  warning: {w}");
        }
    }
    Ok(EXIT_OK)
}

/// Runs `timing`.
pub fn timing(args: TimingArgs) -> CliResult {
    if !(args.bpm.is_finite() && args.bpm > 0.0) {
        return Err(Failure::usage(format!(
            "--bpm must be > 0, got {}",
            args.bpm
        )));
    }
    if !(8000..=384_000).contains(&args.sample_rate) {
        return Err(Failure::usage(format!(
            "--sample-rate must be 8000..384000, got {}",
            args.sample_rate
        )));
    }
    let t = Timing::new(args.bpm, args.sample_rate, &args.sections.0);
    let mut warning = None;
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            return Err(Failure::usage(format!("--duration must be > 0, got {d}")));
        }
        warning = t.check_duration(d).map_err(Failure::usage)?;
    }
    if args.json {
        print_json(&t);
    } else {
        out_str(&t.table());
    }
    if let Some(w) = warning {
        errln!("stemflow: warning: {w}");
    }
    Ok(EXIT_OK)
}

/// Arguments of `init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(default_value = "stemflow.toml")]
    pub path: PathBuf,
}

/// Runs `init`: writes the demo manifest, never over an existing file.
pub fn init(args: InitArgs) -> CliResult {
    let path = &args.path;
    if path.exists() {
        return Err(Failure::usage(format!(
            "{}: already exists; not overwriting",
            path.display()
        )));
    }
    std::fs::write(path, crate::DEMO_MANIFEST)
        .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    outln!("wrote {}", path.display());
    Ok(EXIT_OK)
}
