//! Verification (SPEC §1.6, §1.8): streaming statistics gathered block by
//! block, the checks made on them, and the re-read of a written header.

use std::path::Path;

use serde::Serialize;

use crate::error::StageError;
use crate::plan::{ReferencePlan, VerifyLimits};
use crate::source::file::{self, FileInfo};
use crate::types::{Block, Frames, StreamSpec};

pub mod envelope;
mod loudness;
pub use loudness::LoudnessMeter;

/// Level at or above which a master sample counts as clipped.
pub const CLIP_LEVEL: f32 = 0.99;

/// Running peak, RMS and sanity counts of a stream.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    pub frames: u64,
    samples: u64,
    /// Σ x² of the samples whose index is ≡ k (mod 4), k = 0..4.
    lanes: [f64; 4],
    pub peak: f32,
    pub clipped: u64,
    /// Index of the first NaN or infinite sample, if any.
    pub first_non_finite: Option<u64>,
}

impl StreamStats {
    /// Adds one block.
    pub fn update(&mut self, block: &Block) {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::has_avx() {
            // SAFETY: the CPU has AVX, checked just above.
            unsafe { self.update_avx(block) };
            return;
        }
        self.update_portable(block);
    }

    /// [`StreamStats::update`] with twice the lanes; lane-wise additions
    /// and maxima round as they do without AVX: the same figures.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    fn update_avx(&mut self, block: &Block) {
        self.update_portable(block)
    }

    #[inline(always)]
    fn update_portable(&mut self, block: &Block) {
        let samples = block.samples();
        // Peak and a NaN probe (x·0 is NaN only for NaN and ±∞) in eight
        // f32 lanes, then the clip count: loops the compiler vectorises;
        // max and counts do not depend on the order.
        let (mut peak, mut probe) = ([0.0f32; 8], [0.0f32; 8]);
        let mut chunks = samples.chunks_exact(8);
        for c in &mut chunks {
            for k in 0..8 {
                peak[k] = peak[k].max(c[k].abs());
                probe[k] += c[k] * 0.0;
            }
        }
        for &v in chunks.remainder() {
            peak[0] = peak[0].max(v.abs());
            probe[0] += v * 0.0;
        }
        let clipped = samples.iter().filter(|v| v.abs() >= CLIP_LEVEL).count() as u64;
        if probe.iter().all(|p| p.is_finite()) {
            self.peak = peak.iter().fold(self.peak, |m, &p| m.max(p));
            self.clipped += clipped;
            self.add_squares(samples);
        } else {
            // Rare (the song fails): note where, count the finite rest.
            let index = samples.iter().position(|v| !v.is_finite()).unwrap_or(0);
            self.first_non_finite
                .get_or_insert(self.samples + index as u64);
            for &v in samples.iter().filter(|v| v.is_finite()) {
                self.peak = self.peak.max(v.abs());
                self.clipped += (v.abs() >= CLIP_LEVEL) as u64;
            }
            for (i, &v) in samples.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                self.lanes[(self.samples as usize + i) % 4] += (v as f64) * (v as f64);
            }
        }
        self.samples += samples.len() as u64;
        self.frames += block.frames() as u64;
    }

    /// Adds Σ x² in four lanes keyed by the absolute sample index (so any
    /// block split sums alike), which lets the loop run four additions at
    /// a time. Does not advance the sample count.
    #[inline(always)]
    fn add_squares(&mut self, samples: &[f32]) {
        let mut lanes = self.lanes;
        let lead = ((4 - self.samples % 4) % 4).min(samples.len() as u64) as usize;
        let (head, rest) = samples.split_at(lead);
        for (k, &v) in head.iter().enumerate() {
            lanes[(self.samples as usize + k) % 4] += (v as f64) * (v as f64);
        }
        // From here the absolute index of chunk element k is ≡ k (mod 4).
        let mut chunks = rest.chunks_exact(4);
        for c in &mut chunks {
            for k in 0..4 {
                lanes[k] += (c[k] as f64) * (c[k] as f64);
            }
        }
        for (k, &v) in chunks.remainder().iter().enumerate() {
            lanes[k] += (v as f64) * (v as f64);
        }
        self.lanes = lanes;
    }

    /// Root mean square over all samples.
    pub fn rms(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            let sum_sq = (self.lanes[0] + self.lanes[1]) + (self.lanes[2] + self.lanes[3]);
            (sum_sq / self.samples as f64).sqrt()
        }
    }

    /// Share of samples at or above [`CLIP_LEVEL`].
    pub fn clip_ratio(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.clipped as f64 / self.samples as f64
        }
    }

    /// Fails on the first NaN/Inf seen so far.
    pub fn check_finite(&self, channels: u16) -> Result<(), StageError> {
        match self.first_non_finite {
            Some(i) => Err(StageError::Check {
                check: "finite",
                detail: format!("NaN or infinite sample at frame {}", i / channels as u64),
            }),
            None => Ok(()),
        }
    }

    /// Checks the frame count against the target.
    pub fn check_frames(&self, target: Frames) -> Result<(), StageError> {
        if self.frames != target.0 {
            return Err(StageError::Check {
                check: "frames",
                detail: format!("{} frames, expected {target}", self.frames),
            });
        }
        Ok(())
    }

    /// Summary figures for the report.
    pub fn summary(&self) -> Levels {
        Levels {
            frames: self.frames,
            peak: round6(self.peak as f64),
            rms: round6(self.rms()),
            peak_db: round3(to_db(self.peak as f64)),
            rms_db: round3(to_db(self.rms())),
        }
    }
}

/// Loudness figures as reported; `None` where undefined (silence).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Loudness {
    /// Integrated loudness, LUFS.
    pub lufs: Option<f64>,
    /// Loudness range, LU.
    pub loudness_range: Option<f64>,
    /// Highest true peak over all channels, dBTP.
    pub true_peak_db: Option<f64>,
}

/// Levels as reported (linear full scale, with dB beside them).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Levels {
    pub frames: u64,
    pub peak: f64,
    pub rms: f64,
    pub peak_db: Option<f64>,
    pub rms_db: Option<f64>,
}

/// dBFS of a linear level; `None` for silence (−∞ has no JSON form).
pub fn to_db(v: f64) -> Option<f64> {
    (v > 0.0).then(|| 20.0 * v.log10())
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn round3(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 1e3).round() / 1e3)
}

/// The master's pass/fail checks: clip ratio, RMS floor, loudness target
/// and true-peak ceiling.
pub fn check_master(
    stats: &StreamStats,
    loudness: &Loudness,
    limits: &VerifyLimits,
) -> Result<(), StageError> {
    if let Some(target) = limits.target_lufs {
        match loudness.lufs {
            Some(l) if (l - target).abs() <= limits.lufs_tolerance => {}
            got => {
                return Err(StageError::Check {
                    check: "loudness",
                    detail: format!(
                        "master integrated loudness is {}, the target {target} ± {} LUFS",
                        got.map_or("undefined (silence)".to_string(), |l| format!(
                            "{l:.2} LUFS"
                        )),
                        limits.lufs_tolerance
                    ),
                });
            }
        }
    }
    if let (Some(max), Some(tp)) = (limits.max_true_peak_db, loudness.true_peak_db)
        && tp > max
    {
        return Err(StageError::Check {
            check: "true_peak",
            detail: format!("master true peak is {tp:.2} dBTP, above the ceiling of {max} dBTP"),
        });
    }
    if stats.clip_ratio() > limits.max_clip_ratio {
        return Err(StageError::Check {
            check: "clip_ratio",
            detail: format!(
                "{:.6} of the master's samples are at or above {CLIP_LEVEL}; the limit is {}",
                stats.clip_ratio(),
                limits.max_clip_ratio
            ),
        });
    }
    if stats.rms() < limits.min_rms {
        return Err(StageError::Check {
            check: "min_rms",
            detail: format!(
                "master RMS {:.6} is below the floor of {} (too quiet)",
                stats.rms(),
                limits.min_rms
            ),
        });
    }
    Ok(())
}

/// Re-reads a written WAV's (or RF64's) header and checks it describes
/// `spec` and `frames` exactly.
pub fn check_header(path: &Path, spec: StreamSpec, frames: Frames) -> Result<(), StageError> {
    let h = crate::io::wav::read_header(path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_a_known_signal() {
        let mut b = Block::new(1, 4);
        b.samples_mut().copy_from_slice(&[0.5, -1.0, 0.0, 0.995]);
        let mut s = StreamStats::default();
        s.update(&b);
        assert_eq!(s.peak, 1.0);
        assert_eq!(s.clipped, 2);
        assert!((s.rms() - ((0.25 + 1.0 + 0.990025) / 4.0f64).sqrt()).abs() < 1e-7);
        assert!(s.check_finite(1).is_ok());
        b.samples_mut()[2] = f32::NAN;
        s.update(&b);
        assert!(
            s.check_finite(1)
                .unwrap_err()
                .to_string()
                .contains("frame 6")
        );
    }
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
/// the manifest's expectations of it.
pub fn check_reference(r: &ReferencePlan) -> Result<ReferenceInfo, StageError> {
    let info: FileInfo = file::probe(&r.path)?;
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
