//! The placement envelope: 1 inside a stem's regions, exactly 0 outside,
//! with raised-cosine fades that start on a region's first frame and end on
//! its last. Computed from the absolute song frame, so it is the same
//! whatever the block size.

use std::f64::consts::PI;
use std::ops::Range;

use serde::Serialize;

use crate::plan::Restart;
use crate::types::Block;

/// A placed stem's regions, as the report gives them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlacementInfo {
    pub restart: Restart,
    /// `[start_frame, end_frame)` of each region, end exclusive.
    pub regions: Vec<[u64; 2]>,
    pub fade_in_frames: u64,
    pub fade_out_frames: u64,
}

/// Multiplies a stem by its placement envelope.
pub struct Gate {
    regions: Vec<Range<u64>>,
    fade_in: u64,
    fade_out: u64,
    /// Song frame of the next block's first frame.
    pos: u64,
    /// Index of the first region that does not end before `pos`.
    region: usize,
}

impl Gate {
    /// A gate open in `regions` (sorted, disjoint), fading in over the first
    /// `fade_in` frames of each and out over the last `fade_out`.
    pub fn new(regions: Vec<Range<u64>>, fade_in: u64, fade_out: u64) -> Gate {
        Gate {
            regions,
            fade_in,
            fade_out,
            pos: 0,
            region: 0,
        }
    }

    /// The regions and fades, for the report.
    pub fn info(&self, restart: Restart) -> PlacementInfo {
        PlacementInfo {
            restart,
            regions: self.regions.iter().map(|r| [r.start, r.end]).collect(),
            fade_in_frames: self.fade_in,
            fade_out_frames: self.fade_out,
        }
    }

    /// Gates the next block of the stem in place.
    pub fn process(&mut self, block: &mut Block) {
        let start = self.pos;
        for (i, frame) in block.frames_mut().enumerate() {
            let n = start + i as u64;
            while self.regions.get(self.region).is_some_and(|r| r.end <= n) {
                self.region += 1;
            }
            let g = match self.regions.get(self.region) {
                Some(r) if r.start <= n => self.gain(n, r),
                _ => 0.0,
            };
            if g == 0.0 {
                // Exact zeros, never a negative zero or a denormal.
                frame.fill(0.0);
            } else if g != 1.0 {
                for v in frame.iter_mut() {
                    *v = (*v as f64 * g) as f32;
                }
            }
        }
        self.pos += block.frames() as u64;
    }

    /// The envelope at song frame `n` inside region `r`: the product of
    /// the fade-in and fade-out ramps (both apply in a region shorter than
    /// the two fades).
    fn gain(&self, n: u64, r: &Range<u64>) -> f64 {
        rise(n - r.start, self.fade_in) * rise(r.end - 1 - n, self.fade_out)
    }
}

/// A raised-cosine ramp over `len` frames: `0.5 − 0.5·cos(π·i/len)` at
/// frame `i` (0 at `i = 0`), 1 from `i = len` on.
pub fn rise(i: u64, len: u64) -> f64 {
    if i >= len {
        1.0
    } else {
        0.5 - 0.5 * (PI * i as f64 / len as f64).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate_all(g: &mut Gate, frames: usize, block: usize) -> Vec<f32> {
        let mut out = Vec::new();
        let mut left = frames;
        while left > 0 {
            let n = left.min(block);
            let mut b = Block::new(1, n);
            b.samples_mut().fill(1.0);
            g.process(&mut b);
            out.extend_from_slice(b.samples());
            left -= n;
        }
        out
    }

    #[test]
    fn zero_outside_faded_at_both_edges() {
        let out = gate_all(&mut Gate::new(vec![10..30, 40..50], 4, 4), 60, 7);
        assert!(
            out[..10]
                .iter()
                .chain(&out[30..40])
                .chain(&out[50..])
                .all(|&v| v == 0.0)
        );
        assert_eq!(
            out[10], 0.0,
            "the fade-in starts at the region's first frame"
        );
        assert_eq!(out[29], 0.0, "the fade-out ends at the region's last frame");
        assert_eq!(out[14..26], [1.0; 12]);
        assert!((out[12] as f64 - 0.5).abs() < 1e-7);
    }

    #[test]
    fn block_size_never_changes_the_envelope() {
        let one = gate_all(
            &mut Gate::new(std::iter::once(3..90).collect(), 17, 5),
            100,
            1,
        );
        let many = gate_all(
            &mut Gate::new(std::iter::once(3..90).collect(), 17, 5),
            100,
            64,
        );
        assert_eq!(one, many);
    }
}
