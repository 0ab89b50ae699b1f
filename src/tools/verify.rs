//! `stemflow verify FILE`: decode a file once, streaming, measure it and
//! compare it with what the caller expects.

use std::path::Path;

use serde::Serialize;

use crate::error::StageError;
use crate::source::{Source, file::FileSource};
use crate::types::{Block, SampleFormat};
use crate::verify::{Loudness, LoudnessMeter, StreamStats};

/// What `verify` is asked to check; every expectation is optional.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Expect {
    /// Expected sample rate in Hz.
    #[arg(long)]
    pub sample_rate: Option<u32>,
    /// Expected sample format.
    #[arg(long, value_enum)]
    pub format: Option<SampleFormat>,
    /// Expected channel count.
    #[arg(long)]
    pub channels: Option<u16>,
    /// Shortest acceptable duration in seconds.
    #[arg(long)]
    pub min_duration: Option<f64>,
    /// Expected duration in seconds (± `--tolerance`).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Allowed distance from `--duration` in seconds [default: 0].
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// Integrated loudness the file must have, LUFS (± `--lufs-tolerance`).
    #[arg(long, allow_negative_numbers = true)]
    pub target_lufs: Option<f64>,
    /// Allowed distance from `--target-lufs` in LU [default: 1].
    #[arg(long)]
    pub lufs_tolerance: Option<f64>,
    /// Highest true peak the file may have, dBTP.
    #[arg(long, allow_negative_numbers = true)]
    pub max_true_peak: Option<f64>,
}

/// What `verify` measured, and which expectations failed.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub file: String,
    pub ok: bool,
    pub sample_rate: u32,
    pub channels: u16,
    pub format: Option<&'static str>,
    pub codec: String,
    pub frames: u64,
    pub duration: f64,
    pub peak: f64,
    pub rms: f64,
    /// Integrated loudness (LUFS), loudness range (LU), true peak (dBTP).
    #[serde(flatten)]
    pub loudness: Loudness,
    pub failures: Vec<String>,
}

/// Decodes `path` once and checks it against `expect`. A file that does
/// not meet an expectation is a report with failures, not an error.
pub fn verify_file(path: &Path, expect: &Expect) -> Result<VerifyReport, StageError> {
    let mut src = FileSource::open(path, 1)?;
    if src.info().channels == 2 {
        // Measure the file's own channels, not their average.
        src = FileSource::open(path, 2)?;
    }
    let info = src.info().clone();
    let mut stats = StreamStats::default();
    let mut meter = LoudnessMeter::new(info.channels, info.sample_rate);
    let mut block = Block::new(info.channels, 4096);
    while src.read(&mut block)? > 0 {
        stats.update(&block);
        meter.update(&block);
    }
    let seconds = info.seconds();
    let loudness = meter.loudness();
    let mut failures = failures(
        expect,
        info.sample_rate,
        info.channels,
        info.format,
        seconds,
    );
    failures.extend(loudness_failures(expect, &loudness));
    Ok(VerifyReport {
        file: path.display().to_string(),
        ok: failures.is_empty(),
        sample_rate: info.sample_rate,
        channels: info.channels,
        format: info.format.map(SampleFormat::name),
        codec: info.codec.clone(),
        frames: info.frames.0,
        duration: seconds,
        peak: stats.peak as f64,
        rms: stats.rms(),
        loudness,
        failures,
    })
}

/// The loudness expectations the measured `l` does not meet.
fn loudness_failures(expect: &Expect, l: &Loudness) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(target) = expect.target_lufs {
        let tol = expect.lufs_tolerance.unwrap_or(1.0);
        match l.lufs {
            Some(v) if (v - target).abs() <= tol => {}
            Some(v) => failures.push(format!(
                "integrated loudness is {v:.2} LUFS, expected {target} ± {tol} LU"
            )),
            None => failures.push(format!(
                "integrated loudness is undefined (silence), expected {target} LUFS"
            )),
        }
    }
    if let (Some(max), Some(tp)) = (expect.max_true_peak, l.true_peak_db)
        && tp > max
    {
        failures.push(format!("true peak is {tp:.2} dBTP, above {max} dBTP"));
    }
    failures
}

/// The expectations a file with these properties does not meet.
fn failures(
    expect: &Expect,
    rate: u32,
    channels: u16,
    format: Option<SampleFormat>,
    seconds: f64,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(r) = expect.sample_rate.filter(|r| *r != rate) {
        failures.push(format!("sample rate is {rate} Hz, expected {r} Hz"));
    }
    if let Some(c) = expect.channels.filter(|c| *c != channels) {
        failures.push(format!("{channels} channels, expected {c}"));
    }
    if let Some(f) = expect.format.filter(|f| Some(*f) != format) {
        failures.push(format!(
            "format is {}, expected {}",
            format.map_or("other", SampleFormat::name),
            f.name()
        ));
    }
    if let Some(m) = expect.min_duration.filter(|m| seconds < *m) {
        failures.push(format!("lasts {seconds:.3} s, less than {m} s"));
    }
    if let Some(d) = expect.duration {
        let tol = expect.tolerance.unwrap_or(0.0);
        if (seconds - d).abs() > tol {
            failures.push(format!("lasts {seconds:.3} s, expected {d} s ± {tol} s"));
        }
    }
    failures
}
