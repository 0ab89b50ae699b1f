//! The single-file subcommands, `verify` and `align`, built from the same
//! sources, processors and writers as `render`.

use std::path::Path;

use serde::Serialize;

use crate::align::{AlignSettings, Aligner};
use crate::cli::{CliResult, EXIT_OK, EXIT_SONG_FAILED, EXIT_USAGE};
use crate::io::wav::WavOut;
use crate::plan::{AlignMode, Dither};
use crate::source::{self, file};
use crate::types::{Block, Frames, SampleFormat, StreamSpec};
use crate::verify::StreamStats;

/// What `verify` is asked to check.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    pub sample_rate: Option<u32>,
    pub format: Option<SampleFormat>,
    pub channels: Option<u16>,
    pub min_duration: Option<f64>,
    pub duration: Option<f64>,
    pub tolerance: Option<f64>,
}

#[derive(Serialize)]
struct VerifyReport {
    file: String,
    ok: bool,
    sample_rate: u32,
    channels: u16,
    format: Option<&'static str>,
    codec: String,
    frames: u64,
    duration: f64,
    peak: f64,
    rms: f64,
    failures: Vec<String>,
}

/// `stemflow verify FILE`: decodes the file once, streaming, and checks it.
pub fn verify_file(path: &Path, expect: &Expect, json: bool) -> CliResult {
    let err = |e: crate::error::StageError| (EXIT_SONG_FAILED, e.to_string());
    let mut src = file::FileSource::open(path, 1).map_err(err)?;
    if src.info().channels == 2 {
        // Measure the file's own channels, not their average.
        src = file::FileSource::open(path, 2).map_err(err)?;
    }
    let info = src.info().clone();
    let mut stats = StreamStats::default();
    let mut block = Block::new(info.channels, 4096);
    while crate::source::Source::read(&mut src, &mut block).map_err(err)? > 0 {
        stats.update(&block);
    }
    let mut failures = Vec::new();
    if let Some(r) = expect.sample_rate.filter(|r| *r != info.sample_rate) {
        failures.push(format!(
            "sample rate is {} Hz, expected {r} Hz",
            info.sample_rate
        ));
    }
    if let Some(c) = expect.channels.filter(|c| *c != info.channels) {
        failures.push(format!("{} channels, expected {c}", info.channels));
    }
    if let Some(f) = expect.format.filter(|f| Some(*f) != info.format) {
        failures.push(format!(
            "format is {}, expected {}",
            info.format.map_or("other", SampleFormat::name),
            f.name()
        ));
    }
    let seconds = info.seconds();
    if let Some(m) = expect.min_duration.filter(|m| seconds < *m) {
        failures.push(format!("lasts {seconds:.3} s, less than {m} s"));
    }
    if let Some(d) = expect.duration {
        let tol = expect.tolerance.unwrap_or(0.0);
        if (seconds - d).abs() > tol {
            failures.push(format!("lasts {seconds:.3} s, expected {d} s ± {tol} s"));
        }
    }
    let report = VerifyReport {
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
    };
    if json {
        println!(
            "{}",
            // Plain data with string keys: serialising cannot fail.
            serde_json::to_string_pretty(&report).expect("plain data")
        );
    } else {
        println!(
            "{}: {} Hz, {} ch, {}, {} frames ({:.3} s), peak {:.6}, rms {:.6}",
            report.file,
            report.sample_rate,
            report.channels,
            report.format.unwrap_or(&report.codec),
            report.frames,
            report.duration,
            report.peak,
            report.rms
        );
    }
    match report.failures.first() {
        None => Ok(EXIT_OK),
        Some(_) => Err((
            EXIT_SONG_FAILED,
            format!("{}: {}", report.file, report.failures.join("; ")),
        )),
    }
}

/// `stemflow align IN OUT`: brings a file to a duration with the same
/// alignment, resampling and writer as `render`.
pub fn align_file(
    input: &Path,
    output: &Path,
    duration: f64,
    strategy: AlignMode,
    format: SampleFormat,
    sample_rate: Option<u32>,
) -> CliResult {
    if !(duration.is_finite() && duration > 0.0 && duration <= crate::manifest::MAX_DURATION_S) {
        return Err((
            EXIT_USAGE,
            format!("--duration must be > 0 s, got {duration}"),
        ));
    }
    let err = |e: crate::error::StageError| (EXIT_SONG_FAILED, e.to_string());
    let info = file::probe(input).map_err(err)?;
    if info.channels > 2 {
        return Err((
            EXIT_SONG_FAILED,
            format!(
                "{}: has {} channels; only mono and stereo are supported",
                input.display(),
                info.channels
            ),
        ));
    }
    let rate = sample_rate.unwrap_or(info.sample_rate);
    let spec = StreamSpec {
        sample_rate: rate,
        channels: info.channels,
        format,
    };
    let src = source::open_file(input, rate, info.channels).map_err(err)?;
    let settings = AlignSettings {
        mode: strategy,
        rhythmic: false,
        target: Frames::from_seconds(duration, rate),
        sample_rate: rate,
        crossfade_ms: 50.0,
        fade_ms: 10.0,
    };
    let block_size = 4096;
    let mut aligner = Aligner::new(src, info.channels, block_size, settings).map_err(err)?;
    // Write beside the output and rename, so a failure leaves no partial file.
    let tmp = output.with_extension("stemflow-partial.wav");
    let result = (|| {
        let mut writer =
            WavOut::create(&tmp, spec, Dither::Tpdf, crate::seed::stem_key(1, "align"))?;
        let mut block = Block::new(info.channels, block_size);
        while aligner.read(&mut block)? > 0 {
            writer.write(&block)?;
        }
        writer.finish()?;
        std::fs::rename(&tmp, output).map_err(|e| crate::error::StageError::io(output, e))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    println!(
        "{}: {} frames ({}), {} from {} source frames",
        output.display(),
        settings.target,
        format.name(),
        aligner.info().strategy,
        aligner.info().source_frames
    );
    Ok(EXIT_OK)
}
