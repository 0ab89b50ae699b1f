//! Verification (SPEC §1.6, §1.8): the meters fed block by block while the
//! streams render — [`StreamStats`] (`stats`), the [`LoudnessMeter`]
//! (`loudness`) and the overview's [`envelope`] — and the checks made on
//! their figures, on a reference and on a written file's header. Each meter
//! is its own module so it can be tested alone; the pass/fail decisions
//! stay here, so what fails a song is found in one place.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::error::StageError;
use crate::plan::{ReferencePlan, VerifyLimits};
use crate::source::file::{self, FileInfo};
use crate::types::{Frames, StreamSpec};

pub mod envelope;
mod loudness;
mod stats;
mod sums;

pub use loudness::{LoudnessMeter, TruePeakInterpolator};
pub use stats::{CLIP_LEVEL, Levels, StreamStats};

/// Loudness figures as reported; `None` where undefined (silence).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Loudness {
    /// Integrated loudness, LUFS.
    pub lufs: Option<f64>,
    /// Loudness range, LU.
    pub loudness_range: Option<f64>,
    /// Highest true peak over all channels, dBTP.
    pub true_peak_db: Option<f64>,
    /// Highest momentary (400 ms) loudness, LUFS.
    pub max_momentary: Option<f64>,
    /// Highest short-term (3 s) loudness, LUFS.
    pub max_short_term: Option<f64>,
}

/// dBFS of a linear level; `None` for silence (−∞ has no JSON form).
pub fn to_db(v: f64) -> Option<f64> {
    (v > 0.0).then(|| 20.0 * v.log10())
}

/// A failed pass/fail check, kept beside the figures it failed on: a song
/// failing its checks is still measured and reported whole (SPEC §10).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckFailure {
    pub check: &'static str,
    pub detail: String,
}

impl From<CheckFailure> for StageError {
    fn from(f: CheckFailure) -> StageError {
        StageError::Check {
            check: f.check,
            detail: f.detail,
        }
    }
}

/// The master's pass/fail checks: clip ratio, RMS floor, loudness target
/// and true-peak ceiling.
pub fn check_master(
    stats: &StreamStats,
    loudness: &Loudness,
    limits: &VerifyLimits,
) -> Result<(), CheckFailure> {
    check_stream("master", stats, loudness, limits)
}

/// The pass/fail checks of the master or a delivery version (`what`
/// names it in the message).
pub fn check_stream(
    what: &str,
    stats: &StreamStats,
    loudness: &Loudness,
    limits: &VerifyLimits,
) -> Result<(), CheckFailure> {
    let fail = |check, detail| Err(CheckFailure { check, detail });
    if let Some(target) = limits.target_lufs {
        match loudness.lufs {
            Some(l) if (l - target).abs() <= limits.lufs_tolerance => {}
            got => {
                let got = got.map_or("undefined (silence)".to_string(), |l| {
                    format!("{l:.2} LUFS")
                });
                let tolerance = limits.lufs_tolerance;
                let detail = format!(
                    "{what} integrated loudness is {got}, the target {target} ± {tolerance} LUFS"
                );
                return fail("loudness", detail);
            }
        }
    }
    if let (Some(max), Some(tp)) = (limits.max_true_peak_db, loudness.true_peak_db)
        && tp > max
    {
        let detail = format!("{what} true peak is {tp:.2} dBTP, above the ceiling of {max} dBTP");
        return fail("true_peak", detail);
    }
    if stats.clip_ratio() > limits.max_clip_ratio {
        let detail = format!(
            "{:.6} of the {what}'s samples are at or above {CLIP_LEVEL}; the limit is {}",
            stats.clip_ratio(),
            limits.max_clip_ratio
        );
        return fail("clip_ratio", detail);
    }
    if stats.rms() < limits.min_rms {
        let detail = format!(
            "{what} RMS {:.6} is below the floor of {} (too quiet)",
            stats.rms(),
            limits.min_rms
        );
        return fail("min_rms", detail);
    }
    Ok(())
}

/// Re-reads a written WAV's (RF64's, FLAC's) header and checks it
/// describes `spec` and `frames` exactly.
pub fn check_header(path: &Path, spec: StreamSpec, frames: Frames) -> Result<(), StageError> {
    let h = crate::io::read_header(path)?;
    let mismatch = |what: &str, got: String, want: String| StageError::Check {
        check: "header",
        detail: format!("{}: {what} is {got}, expected {want}", path.display()),
    };
    if h.spec.sample_rate != spec.sample_rate {
        return Err(mismatch(
            "sample rate",
            h.spec.sample_rate.to_string(),
            spec.sample_rate.to_string(),
        ));
    }
    if h.spec.channels != spec.channels {
        return Err(mismatch(
            "channel count",
            h.spec.channels.to_string(),
            spec.channels.to_string(),
        ));
    }
    if h.spec.format != spec.format {
        return Err(mismatch(
            "format",
            h.spec.format.name().to_string(),
            spec.format.name().to_string(),
        ));
    }
    if h.frames != frames {
        return Err(mismatch(
            "frame count",
            h.frames.to_string(),
            frames.to_string(),
        ));
    }
    Ok(())
}

/// The reference as found, for the report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReferenceInfo {
    pub path: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub frames: u64,
    pub duration: f64,
}

/// Probes a reference, decoding it to the end in fixed memory, and checks
/// the manifest's expectations of it; gives up with
/// [`StageError::Cancelled`] as soon as `interrupt` is set: streaming a
/// multi-gigabyte reference must not delay SIGINT/SIGTERM past a moment.
pub fn check_reference_until(
    r: &ReferencePlan,
    interrupt: &AtomicBool,
) -> Result<ReferenceInfo, StageError> {
    let info: FileInfo = file::probe_until(&r.path, interrupt)?;
    let fail = |detail: String| StageError::Check {
        check: "reference",
        detail: format!("{}: {detail}", r.path.display()),
    };
    if let Some(rate) = r.sample_rate.filter(|&x| x != info.sample_rate) {
        return Err(fail(format!(
            "sample rate is {} Hz, expected {rate} Hz",
            info.sample_rate
        )));
    }
    if let Some(ch) = r.channels.filter(|&x| x != info.channels) {
        return Err(fail(format!(
            "has {} channels, expected {ch}",
            info.channels
        )));
    }
    if let Some(min) = r.min_duration.filter(|&m| info.seconds() < m) {
        return Err(fail(format!(
            "lasts {:.3} s, less than the minimum of {min} s",
            info.seconds()
        )));
    }
    Ok(ReferenceInfo {
        path: r.path.display().to_string(),
        sample_rate: info.sample_rate,
        channels: info.channels,
        frames: info.frames.0,
        duration: info.seconds(),
    })
}
