//! Sustain and release for `crossfade` (SPEC §9). A pad or a held note
//! ends in a release; repeating that fading tail (as a plain crossfade
//! extension would) gives a train of fading blips. A sampler instead loops
//! a sustained part of the body and plays the release once, at the very
//! end: that is what this module plans.
//!
//! Detection reads only the source's last part (at most
//! [`ANALYSIS_S`]), one 50 ms window at a time, so memory stays flat.
//! Planning is pure arithmetic on the cached loop region: the repeats of
//! the sustained region must add exactly T − S frames, which fixes the
//! phase of the last jump; the mismatch is shared between the last two
//! seams (each searched for the best normalised correlation), so neither
//! has to crossfade two tones in anti-phase.

use super::reader::SourceReader;
use super::seam;
use crate::error::StageError;
use crate::types::Frames;

/// Window of the RMS that detects a release.
const WINDOW_S: f64 = 0.05;
/// The part of the source analysed: its median RMS stands for the body's.
pub(super) const ANALYSIS_S: f64 = 30.0;

/// Frames of the release at the end of the source behind `reader` (0 when
/// it has none): where its 50 ms RMS falls below half the median for good,
/// back to where that fall began; at most half the source.
pub(super) fn detect(reader: &mut SourceReader, rate: u32, ch: usize) -> Result<u64, StageError> {
    let len = reader.len();
    let w = Frames::from_seconds(WINDOW_S, rate).0.max(1);
    let windows = len.min(Frames::from_seconds(ANALYSIS_S, rate).0) / w;
    reader.seek(len - windows * w)?;
    let mut buf = vec![0.0f32; w as usize * ch];
    let mut rms = Vec::with_capacity(windows as usize);
    for _ in 0..windows {
        reader.pull(&mut buf)?;
        let sum: f64 = buf.iter().map(|v| (*v as f64) * (*v as f64)).sum();
        rms.push((sum / buf.len() as f64).sqrt());
    }
    Ok((release_windows(&rms) as u64 * w).min(len / 2))
}

/// How many trailing windows of `rms` (in time order) are the release.
fn release_windows(rms: &[f64]) -> usize {
    let n = rms.len();
    if n < 2 {
        return 0;
    }
    let mut sorted = rms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let half = 0.5 * sorted[n / 2];
    let mut i = n;
    while i > 0 && rms[i - 1] < half {
        i -= 1;
    }
    if i == n {
        return 0;
    }
    // Back up the fall to its top: a window of the body, so the release
    // played at the end starts on the body, never inside the fall.
    while i > 0 && rms[i - 1] > rms[i] {
        i -= 1;
    }
    n - i
}

/// The two final seams of a sustain loop: where each repeat re-enters
/// the source (`incoming` frames from the region's start), its crossfade
/// and that crossfade's correlation.
pub(super) struct FinalSeam {
    pub incoming: usize,
    pub samples: Vec<f32>,
    pub correlation: f64,
}

/// The plan of a sustain loop after its regular seams.
pub(super) struct SustainPlan {
    /// Regular seams (each adding `period` frames) before the final two.
    pub regular: u64,
    pub last: [FinalSeam; 2],
}

/// Every seam leaves the region at its last `c` frames. Regular seams
/// enter at `lag` (adding `period` frames each); the last two enter at
/// `a` and `x` so that all of them together add exactly `ext` frames, and
/// the final repeat plays on through the release. `a` is searched within
/// `span` for the largest smaller correlation of the two.
pub(super) fn plan_sustain(
    region: &[f32],
    ch: usize,
    c: usize,
    span: usize,
    lag: usize,
    ext: u64,
) -> Option<SustainPlan> {
    let frames = region.len() / ch;
    let out = &region[(frames - c) * ch..];
    let jump = |incoming: usize| (frames - c - incoming) as u64;
    let period = jump(lag);
    let first_min = jump(span);
    if ext < first_min || period == 0 {
        return None;
    }
    let regular = (ext - first_min) / period;
    let rem = ext - regular * period;
    let corr = |at: usize| seam::correlation(out, &region[at * ch..(at + c) * ch]);
    let mut best: Option<(f64, usize, usize)> = None;
    for a in 0..=span {
        let Some(second) = rem.checked_sub(jump(a)) else {
            continue;
        };
        let Some(x) = (frames - c).checked_sub(second as usize) else {
            continue;
        };
        let score = corr(a).min(corr(x));
        if best.is_none_or(|(s, _, _)| score > s + 1e-12) {
            best = Some((score, a, x));
        }
    }
    let (_, a, x) = best?;
    let last = [a, x].map(|at| {
        let r = corr(at);
        FinalSeam {
            incoming: at,
            samples: seam::crossfade(out, &region[at * ch..], ch, c, r),
            correlation: r,
        }
    });
    Some(SustainPlan { regular, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_or_rising_end_is_no_release() {
        assert_eq!(release_windows(&[1.0; 10]), 0);
        assert_eq!(release_windows(&[0.0; 10]), 0);
        let rising: Vec<f64> = (0..10).map(|i| i as f64).collect();
        assert_eq!(release_windows(&rising), 0);
    }

    #[test]
    fn a_release_starts_where_the_fall_begins() {
        // Body at 1, a fall over five windows, the last three below half.
        let mut rms = vec![1.0; 20];
        rms.extend([0.9, 0.7, 0.55, 0.4, 0.2, 0.1]);
        // The fall begins after window 19: the release is the six falling
        // windows and the body's last window, the top of the fall.
        assert_eq!(release_windows(&rms), 7);
    }

    fn sine(freq: f64, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| (std::f64::consts::TAU * freq * i as f64 / 48000.0).sin() as f32)
            .collect()
    }

    #[test]
    fn the_jumps_add_exactly_the_extension_and_both_seams_keep_in_phase() {
        let region = sine(110.0, 96_000);
        let (c, span) = seam::lengths(96_000, 50.0, 48000);
        let m = seam::match_seam(&region[96_000 - c..], &region[..span + c], 1, c, span);
        for ext in [500_000u64, 500_001, 777_777, 960_000] {
            let p = plan_sustain(&region, 1, c, span, m.lag, ext).unwrap();
            let jump = |at: usize| (96_000 - c - at) as u64;
            let total =
                p.regular * jump(m.lag) + jump(p.last[0].incoming) + jump(p.last[1].incoming);
            assert_eq!(total, ext);
            // A forced jump may be a quarter period off each, never more.
            for s in &p.last {
                assert!(s.correlation > -1e-3, "{ext}: {}", s.correlation);
            }
        }
    }
}
