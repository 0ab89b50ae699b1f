//! Running peak, RMS, clip count and NaN probe of a stream (SPEC §1.6,
//! §1.8), gathered block by block. Every stem and the master pass through
//! here, so the loops are written for the compiler to vectorise, and the
//! sums are kept in lanes keyed by the absolute sample index so that any
//! split of the stream into blocks gives the same figures.

use serde::Serialize;

use super::sums::{self, LANES, Lanes};
use super::to_db;
use crate::cpu::{self, Isa};
use crate::error::StageError;
use crate::types::{Block, Frames};

/// Level at or above which a master sample counts as clipped.
pub const CLIP_LEVEL: f32 = 0.99;

/// Running peak, RMS and sanity counts of a stream.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    pub frames: u64,
    samples: u64,
    /// Σ x² of the samples, in lanes keyed by index.
    lanes: Lanes,
    pub peak: f32,
    pub clipped: u64,
    /// Index of the first NaN or infinite sample, if any.
    pub first_non_finite: Option<u64>,
}

impl StreamStats {
    /// Adds one block.
    pub fn update(&mut self, block: &Block) {
        self.update_with(cpu::isa(), block);
    }

    /// [`StreamStats::update`] with the kernels of `isa`; every level
    /// gives the same figures.
    fn update_with(&mut self, isa: Isa, block: &Block) {
        cpu::dispatch!(
            isa,
            avx: self.update_avx(block),
            portable: self.update_portable(block),
        )
    }

    /// [`StreamStats::update_portable`] with twice the lanes; lane-wise
    /// additions and maxima round as they do without AVX: the same figures.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    fn update_avx(&mut self, block: &Block) {
        self.update_portable(block)
    }

    #[inline(always)]
    fn update_portable(&mut self, block: &Block) {
        let samples = block.samples();
        // Peak, clip count and a non-finite probe in one pass of eight
        // lanes. Maxima, counts and ANDs carry no rounding and no long
        // addition chain, so the compiler keeps them in vector registers.
        let (mut peak, mut clip, mut finite) = ([0.0f32; 8], [0u32; 8], [true; 8]);
        let mut chunks = samples.chunks_exact(8);
        for c in &mut chunks {
            for k in 0..8 {
                let a = c[k].abs();
                peak[k] = peak[k].max(a);
                clip[k] += (a >= CLIP_LEVEL) as u32;
                // False for NaN and ±∞ only.
                finite[k] &= a <= f32::MAX;
            }
        }
        for &v in chunks.remainder() {
            let a = v.abs();
            peak[0] = peak[0].max(a);
            clip[0] += (a >= CLIP_LEVEL) as u32;
            finite[0] &= a <= f32::MAX;
        }
        let clipped: u64 = clip.iter().map(|&n| n as u64).sum();
        if finite == [true; 8] {
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
                self.lanes[(self.samples as usize + i) % LANES] += (v as f64) * (v as f64);
            }
        }
        self.samples += samples.len() as u64;
        self.frames += block.frames() as u64;
    }

    /// Adds Σ x² (see [`sums`]). Does not advance the sample count.
    #[inline(always)]
    fn add_squares(&mut self, samples: &[f32]) {
        sums::add_squares(&mut self.lanes, self.samples, samples);
    }

    /// Root mean square over all samples.
    pub fn rms(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            let sum_sq = sums::total(&self.lanes);
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

/// Levels as reported (linear full scale, with dB beside them).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Levels {
    pub frames: u64,
    pub peak: f64,
    pub rms: f64,
    pub peak_db: Option<f64>,
    pub rms_db: Option<f64>,
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn round3(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 1e3).round() / 1e3)
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

    #[test]
    fn a_nan_or_infinity_is_caught_in_any_lane_and_the_tail() {
        // 17 samples: two whole chunks of eight and a remainder of one.
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in 0..17 {
                let mut b = Block::new(1, 17);
                b.samples_mut().fill(0.25);
                b.samples_mut()[at] = bad;
                let mut s = StreamStats::default();
                s.update(&b);
                assert_eq!(s.first_non_finite, Some(at as u64), "{bad} at {at}");
                assert_eq!(s.peak, 0.25, "the finite rest still counts");
            }
        }
        let mut b = Block::new(1, 17);
        b.samples_mut().fill(f32::MAX);
        let mut s = StreamStats::default();
        s.update(&b);
        assert_eq!(s.first_non_finite, None, "f32::MAX is finite");
    }

    /// Every field, floats as bits.
    fn fingerprint(s: &StreamStats) -> String {
        format!(
            "{} {} {:?} {} {} {:?}",
            s.frames,
            s.samples,
            s.lanes.map(f64::to_bits),
            s.peak.to_bits(),
            s.clipped,
            s.first_non_finite
        )
    }

    #[test]
    fn every_cpu_path_gives_the_same_bits() {
        // Odd block lengths leave remainders for every lane loop; the NaN
        // block takes the slow branch.
        let blocks: Vec<Block> = [1usize, 7, 4096, 333, 4096]
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                let mut b = Block::new(2, n);
                for (i, v) in b.samples_mut().iter_mut().enumerate() {
                    *v = ((i as f32 * 0.013 + k as f32).sin() * 1.2).clamp(-1.0, 1.0);
                }
                if k == 3 {
                    b.samples_mut()[100] = f32::NAN;
                }
                b
            })
            .collect();
        let run = |isa: Isa| {
            let mut s = StreamStats::default();
            for b in &blocks {
                s.update_with(isa, b);
            }
            fingerprint(&s)
        };
        let portable = run(Isa::PORTABLE);
        for level in cpu::Level::ALL {
            match Isa::new(level) {
                Some(isa) => assert_eq!(run(isa), portable, "{level:?}"),
                None => eprintln!("skipped {level:?}: this CPU lacks it"),
            }
        }
    }
}
