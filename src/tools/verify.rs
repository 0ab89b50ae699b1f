//! `stemflow verify FILE`: decode a file once, streaming, measure it and
//! compare it with what the caller expects.

use std::path::Path;

use serde::Serialize;

use crate::error::StageError;
use crate::source::{Source, file::FileSource};
use crate::types::{Block, SampleFormat};
use crate::verify::StreamStats;

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
    let mut block = Block::new(info.channels, 4096);
    while src.read(&mut block)? > 0 {
        stats.update(&block);
    }
    let seconds = info.seconds();
    let failures = failures(
        expect,
        info.sample_rate,
        info.channels,
        info.format,
        seconds,
    );
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
        failures,
    })
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
