//! The matched seam of an extension (SPEC §4), as pure arithmetic on two
//! short interleaved windows: where the incoming repeat best matches the
//! outgoing audio, and the crossfade between them. No I/O here: the
//! aligner reads the windows once, and the seam is the same at every
//! repeat.

use crate::types::Frames;

/// The matcher searches this far (±10 ms around the middle of its window)
/// for the incoming repeat's best start.
const MATCH_MS: f64 = 10.0;

/// Seam crossfade length C and lag search span, in frames, for a loop
/// region of `region` frames: each at most a quarter of the region, so the
/// body between two seams is never empty.
pub(super) fn lengths(region: u64, crossfade_ms: f64, rate: u32) -> (usize, usize) {
    let c = Frames::from_seconds(crossfade_ms / 1000.0, rate)
        .0
        .min(region / 4);
    let span = Frames::from_seconds(2.0 * MATCH_MS / 1000.0, rate)
        .0
        .min(region / 4);
    (c as usize, span as usize)
}

/// A matched seam.
pub(super) struct Matched {
    /// The crossfade, `c` interleaved frames.
    pub samples: Vec<f32>,
    /// Offset into the incoming window where the repeat starts.
    pub lag: usize,
    /// Normalised correlation at that lag (1 when either side is silent).
    pub correlation: f64,
}

/// Matches `outgoing` (the source's last `c` frames) against `incoming`
/// (the loop region's first `span + c` frames) and crossfades them at the
/// best lag. Both are interleaved with `ch` channels.
pub(super) fn match_seam(
    outgoing: &[f32],
    incoming: &[f32],
    ch: usize,
    c: usize,
    span: usize,
) -> Matched {
    let (lag, correlation) = best_lag(outgoing, incoming, ch, c, span);
    let samples = crossfade(outgoing, &incoming[lag * ch..], ch, c, correlation);
    Matched {
        samples,
        lag,
        correlation,
    }
}

/// The lag in 0..=span of maximum normalised correlation, and that
/// correlation; the earliest lag wins a tie.
fn best_lag(outgoing: &[f32], incoming: &[f32], ch: usize, c: usize, span: usize) -> (usize, f64) {
    let n = c * ch;
    let e_out = dot(outgoing, outgoing);
    // Running sums of the incoming squares: each candidate's energy in
    // one subtraction.
    let mut squares = Vec::with_capacity(incoming.len() + 1);
    squares.push(0.0f64);
    for v in incoming {
        squares.push(squares[squares.len() - 1] + *v as f64 * *v as f64);
    }
    let (mut best, mut best_r) = (0usize, f64::NEG_INFINITY);
    for lag in 0..=span {
        let cand = &incoming[lag * ch..lag * ch + n];
        let dot = dot(outgoing, cand);
        let e_in = (squares[lag * ch + n] - squares[lag * ch]).max(0.0);
        let denom = (e_out * e_in).sqrt();
        // Silence matches anything perfectly.
        let r = if denom > 0.0 { dot / denom } else { 1.0 };
        if r > best_r + 1e-12 {
            best = lag;
            best_r = r;
        }
    }
    (best, best_r)
}

/// Normalised correlation of two equally long windows (1 when either is
/// silent: silence matches anything).
pub(super) fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let denom = (dot(a, a) * dot(b, b)).sqrt();
    if denom > 0.0 { dot(a, b) / denom } else { 1.0 }
}

/// Crossfades `c` frames of `outgoing` into `incoming` with gains for a
/// constant-power sum of signals with correlation `r`: linear for r = 1
/// (in-phase tones), equal-power for r = 0 (noise).
pub(super) fn crossfade(
    outgoing: &[f32],
    incoming: &[f32],
    ch: usize,
    c: usize,
    r: f64,
) -> Vec<f32> {
    let r = r.clamp(0.0, 1.0);
    (0..c)
        .flat_map(|j| {
            let t = (j as f64 + 0.5) / c as f64;
            let (fi, fo) = (t, 1.0 - t);
            let g = 1.0 / (fi * fi + fo * fo + 2.0 * r * fi * fo).sqrt();
            (0..ch).map(move |k| {
                let (o, i) = (outgoing[j * ch + k] as f64, incoming[j * ch + k] as f64);
                (g * (fo * o + fi * i)) as f32
            })
        })
        .collect()
}

/// Σ a·b in f64 over four running sums (so the seam search, about a
/// thousand of these per looped stem, is not bound by one long chain of
/// additions).
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] as f64 * y[k] as f64;
        }
    }
    for (x, y) in ra.iter().zip(rb) {
        acc[0] += *x as f64 * *y as f64;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, phase: f64, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| (std::f64::consts::TAU * freq * i as f64 / 48000.0 + phase).sin() as f32)
            .collect()
    }

    #[test]
    fn lengths_are_bounded_by_a_quarter_of_the_region() {
        assert_eq!(lengths(1_000_000, 50.0, 48000), (2400, 960));
        assert_eq!(lengths(2000, 50.0, 48000), (500, 500));
        assert_eq!(lengths(3, 50.0, 48000), (0, 0));
    }

    #[test]
    fn dot_matches_a_plain_sum() {
        let a: Vec<f32> = (0..103).map(|i| i as f32 * 0.01).collect();
        let b: Vec<f32> = (0..103).map(|i| 1.0 - i as f32 * 0.003).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-9);
    }

    #[test]
    fn finds_the_lag_that_brings_a_tone_back_in_phase() {
        // 100 Hz: 480 frames a period. The incoming window starts half a
        // period out of phase, so the best lag is 240 frames.
        let outgoing = sine(100.0, 0.0, 480);
        let incoming = sine(100.0, std::f64::consts::PI, 480 + 480);
        let m = match_seam(&outgoing, &incoming, 1, 480, 480);
        assert_eq!(m.lag, 240);
        assert!(m.correlation > 0.999, "{}", m.correlation);
        // In phase, the fade is linear: the seam is the tone itself.
        let expected = sine(100.0, 0.0, 480);
        for (s, e) in m.samples.iter().zip(&expected) {
            assert!((s - e).abs() < 1e-3, "{s} vs {e}");
        }
    }

    #[test]
    fn silence_matches_at_the_first_lag() {
        let m = match_seam(&[0.0; 20], &[0.0; 40], 2, 10, 10);
        assert_eq!((m.lag, m.correlation), (0, 1.0));
        assert!(m.samples.iter().all(|v| *v == 0.0));
        assert_eq!(m.samples.len(), 20);
    }

    #[test]
    fn uncorrelated_sides_get_equal_power_gains() {
        // At r = 0 each frame's gains satisfy gi² + go² = 1: a constant 1
        // fading into silence keeps g·fo, above the linear fade's fo.
        let s = crossfade(&[1.0; 2], &[0.0; 2], 1, 2, 0.0);
        for (j, v) in s.iter().enumerate() {
            let fi = (j as f64 + 0.5) / 2.0;
            let fo = 1.0 - fi;
            let g = 1.0 / (fi * fi + fo * fo).sqrt();
            assert!((*v as f64 - g * fo).abs() < 1e-6);
            assert!(*v as f64 > fo);
        }
    }
}
