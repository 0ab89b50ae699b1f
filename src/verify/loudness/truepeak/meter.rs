//! The true-peak meter: the interpolator run over every channel of a
//! stream, skipping the chunks that provably cannot raise the peak.

use super::{CHUNK, TruePeakInterpolator, max_abs};
use crate::types::Block;

/// The true-peak meter: [`TruePeakInterpolator`] over every channel, keeping the
/// largest peak.
pub struct TruePeak {
    interpolator: TruePeakInterpolator,
    /// Per channel: the last HISTORY inputs, then the block's.
    lines: Vec<Vec<f32>>,
    peaks: Vec<f32>,
    /// Stretch peaks of one chunk.
    scratch: Vec<f32>,
}

impl TruePeak {
    pub fn new(channels: usize) -> TruePeak {
        TruePeak {
            interpolator: TruePeakInterpolator::new(),
            lines: vec![vec![0.0; TruePeakInterpolator::HISTORY]; channels],
            peaks: vec![0.0; channels],
            scratch: vec![0.0; CHUNK],
        }
    }

    /// Adds one block.
    pub fn update(&mut self, block: &Block) {
        for (c, (line, peak)) in self.lines.iter_mut().zip(&mut self.peaks).enumerate() {
            block.channel_into(c, line, |v| v);
            scan(&mut self.interpolator, line, peak, &mut self.scratch);
            line.drain(..line.len() - TruePeakInterpolator::HISTORY);
        }
    }

    /// The highest true peak so far over all channels.
    pub fn peak(&self) -> f32 {
        self.peaks.iter().fold(0.0f32, |m, &p| m.max(p))
    }
}

/// Raises `peak` to the largest stretch peak of `line`'s new samples,
/// skipping chunks whose inputs are too small to matter.
pub(super) fn scan(interp: &mut TruePeakInterpolator, line: &[f32], peak: &mut f32, scratch: &mut [f32]) {
    let history = TruePeakInterpolator::HISTORY;
    const { assert!(CHUNK == TruePeakInterpolator::HISTORY) };
    let mut start = history;
    // The largest |input| of the HISTORY inputs before the chunk: the
    // last chunk's new ones, each scanned once.
    let mut before = max_abs(&line[..history]);
    while start < line.len() {
        let end = (start + CHUNK).min(line.len());
        // Every input the chunk's points depend on; they are samples of
        // the signal, so peaks too.
        let new = max_abs(&line[start..end]);
        let window = before.max(new);
        before = new;
        *peak = peak.max(window);
        if interp.may_exceed(line, start, end, window, *peak as f64) {
            interp.stretch_peaks(line, start, end, scratch);
            *peak = scratch[..end - start].iter().fold(*peak, |m, &v| m.max(v));
        }
        start = end;
    }
}
