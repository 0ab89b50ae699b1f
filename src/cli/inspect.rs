//! The subcommands that render nothing: `check` (a manifest's plan and
//! timing), `timing` (sections from a tempo) and `init` (the demo
//! manifest to start from).

use std::path::{Path, PathBuf};

use super::exit::{CliResult, EXIT_OK, Failure};
use super::print::{errln, out_str, outln};
use super::{load_plan, print_json};
use crate::timing::{Meter, Section, Timing};

/// Arguments of `timing`.
#[derive(clap::Args, Debug)]
pub struct TimingArgs {
    /// Tempo in beats per minute.
    #[arg(long)]
    pub bpm: f64,
    /// Sections as name=beats, comma separated (intro=16,verse=32); with
    /// `--bars`, name=bars.
    #[arg(long, value_parser = parse_sections)]
    pub sections: SectionList,
    /// Time signature: beats per bar / note value (3/4, 6/8).
    #[arg(long, default_value = "4/4", value_parser = parse_meter)]
    pub meter: Meter,
    /// The section lengths are bars of the meter, not beats.
    #[arg(long)]
    pub bars: bool,
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

fn parse_meter(s: &str) -> Result<Meter, String> {
    s.parse()
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

/// Runs `check`: the plan of every song, its timing and its warnings.
pub fn check(path: &Path) -> CliResult {
    let plan = load_plan(Some(path))?;
    for song in &plan.songs {
        outln!(
            "song {:?}: {} at {} BPM in {}, {} Hz {} {}ch, {} frames, archive {}",
            song.id,
            match song.duration {
                Some(d) => format!("{d} s"),
                None => "duration from the reference".into(),
            },
            song.bpm,
            song.meter,
            song.spec.sample_rate,
            song.spec.format.name(),
            song.spec.channels,
            song.target_frames_or_zero(),
            song.archive.as_deref().unwrap_or("none")
        );
        for stem in &song.stems {
            outln!(
                "  stem {:<16} {:<8} align {:<9} gain {:.3} effects {}{}",
                stem.name,
                stem.source.kind(),
                stem.align.name(),
                stem.gain,
                stem.effects.len(),
                placement(song, stem)
            );
        }
        out_str(&song.timing.table());
        for w in crate::batch::plan_warnings(song) {
            outln!("  warning: {w}");
        }
    }
    Ok(EXIT_OK)
}

/// Where a placed stem plays, for `check`: " in 12.000-24.000 s (restart
/// region)", or nothing for a stem that plays the whole song.
fn placement(song: &crate::plan::SongPlan, stem: &crate::plan::StemPlan) -> String {
    let Some(p) = &stem.placement else {
        return String::new();
    };
    let rate = song.spec.sample_rate as f64;
    // Until the reference gives the duration, an open end stays open.
    let target = song.duration.map_or(u64::MAX, |_| song.target_frames().0);
    let regions: Vec<String> = p
        .regions_in(target)
        .iter()
        .map(|r| match r.end {
            u64::MAX => format!("{:.3} s-end", r.start as f64 / rate),
            end => format!("{:.3}-{:.3} s", r.start as f64 / rate, end as f64 / rate),
        })
        .collect();
    let restart = match p.restart {
        crate::plan::Restart::Region => "region",
        crate::plan::Restart::Song => "song",
    };
    format!(" in {} (restart {restart})", regions.join(", "))
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
    let mut sections = args.sections.0;
    if args.bars {
        for s in &mut sections {
            s.beats = s.beats.checked_mul(args.meter.beats).ok_or_else(|| {
                Failure::usage(format!("--sections: {:?} has too many bars", s.name))
            })?;
        }
    }
    let t = Timing::with_meter(args.bpm, args.meter, args.sample_rate, &sections);
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
