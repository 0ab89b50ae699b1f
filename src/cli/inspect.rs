//! The subcommands that render nothing: `check` (a manifest's plan and
//! timing, and the input files it would read) and `timing` (sections from
//! a tempo).

use std::path::PathBuf;

use serde::Serialize;

use super::exit::{CliResult, EXIT_OK, Failure};
use super::print::{errln, out_str, outln};
use super::{load_plan, print_json};
use crate::plan::{SongPlan, SourceSpec, StemPlan};
use crate::timing::{Meter, Section, Timing};

/// Arguments of `check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The manifest (TOML); `-` reads it from standard input (relative
    /// paths then resolve against the current folder).
    pub manifest: PathBuf,
    /// Treat warnings about input files (missing, not a regular file) as
    /// errors: exit 2.
    #[arg(long)]
    pub strict: bool,
    /// Print the plan as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

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
/// An input file that is not there is a warning (the render would fail
/// that song), an error with `--strict`.
pub fn check(args: CheckArgs) -> CliResult {
    let plan = load_plan(Some(&args.manifest))?;
    let missing: Vec<String> = plan.songs.iter().flat_map(missing_inputs).collect();
    if args.strict && !missing.is_empty() {
        return Err(Failure::usage(missing.join("; ")));
    }
    if args.json {
        let songs: Vec<CheckedSong> = plan.songs.iter().map(CheckedSong::new).collect();
        print_json(&serde_json::json!({ "songs": songs, "missing_files": missing }));
    } else {
        plan.songs.iter().for_each(print_song);
    }
    for m in &missing {
        errln!("stemflow: warning: {m}");
    }
    Ok(EXIT_OK)
}

/// The input files of `song` (file stems, the reference) that cannot be
/// read as regular files, each as one line naming song, stem and path.
fn missing_inputs(song: &SongPlan) -> Vec<String> {
    let problem = |path: &std::path::Path| match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(_) => Some(format!("{}: not a regular file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{}: file not found", path.display()))
        }
        Err(e) => Some(format!("{}: {e}", path.display())),
    };
    let stems = song.stems.iter().filter_map(|stem| match &stem.source {
        SourceSpec::File { path } => {
            problem(path).map(|p| format!("song {:?} stem {:?}: source {p}", song.id, stem.name))
        }
        _ => None,
    });
    let reference = song
        .reference
        .as_ref()
        .and_then(|r| problem(&r.path).map(|p| format!("song {:?}: reference {p}", song.id)));
    stems.chain(reference).collect()
}

/// The text `check` prints for one song.
fn print_song(song: &SongPlan) {
    let title = song
        .title
        .as_ref()
        .map_or(String::new(), |t| format!(" ({t})"));
    outln!(
        "song {:?}{title}: {} at {} BPM in {}, {} Hz {} {}ch, {} frames, archive {}",
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

/// One song of `check --json`.
#[derive(Serialize)]
struct CheckedSong<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    /// `None`: taken from the reference at render time.
    duration: Option<f64>,
    bpm: f64,
    meter: Meter,
    sample_rate: u32,
    format: &'static str,
    channels: u16,
    target_frames: u64,
    archive: Option<&'a str>,
    stems: Vec<CheckedStem<'a>>,
    timing: &'a Timing,
    warnings: Vec<String>,
}

/// One stem of `check --json`.
#[derive(Serialize)]
struct CheckedStem<'a> {
    name: &'a str,
    source: &'static str,
    align: &'static str,
    gain: f64,
    effects: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

impl<'a> CheckedSong<'a> {
    fn new(song: &'a SongPlan) -> CheckedSong<'a> {
        CheckedSong {
            id: &song.id,
            title: song.title.as_deref(),
            duration: song.duration,
            bpm: song.bpm,
            meter: song.meter,
            sample_rate: song.spec.sample_rate,
            format: song.spec.format.name(),
            channels: song.spec.channels,
            target_frames: song.target_frames_or_zero().0,
            archive: song.archive.as_deref(),
            stems: song.stems.iter().map(CheckedStem::new).collect(),
            timing: &song.timing,
            warnings: crate::batch::plan_warnings(song),
        }
    }
}

impl<'a> CheckedStem<'a> {
    fn new(stem: &'a StemPlan) -> CheckedStem<'a> {
        CheckedStem {
            name: &stem.name,
            source: stem.source.kind(),
            align: stem.align.name(),
            gain: stem.gain,
            effects: stem.effects.len(),
            file: match &stem.source {
                SourceSpec::File { path } => Some(path.display().to_string()),
                _ => None,
            },
        }
    }
}

/// Where a placed stem plays, for `check`: " in 12.000-24.000 s (restart
/// region)", or nothing for a stem that plays the whole song.
fn placement(song: &SongPlan, stem: &StemPlan) -> String {
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
