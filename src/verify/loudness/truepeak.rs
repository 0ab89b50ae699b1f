//! The BS.1770-4 Annex 2 true-peak meter, the costliest part of metering:
//! a 48-tap polyphase interpolator over every sample of every stem. Kept
//! apart from the gating because its speed-ups — skipping stretches that
//! cannot raise the peak, folding the mirror-image phases, AVX lanes — are
//! its own, and each must change no result (the tests hold the folding to
//! the design and the AVX path to the portable one, bit for bit).

use crate::cpu::{self, Isa, Level};
use crate::types::Block;

/// Input samples per true-peak bound check.
const TP_CHUNK: usize = 64;
/// Taps of the true-peak interpolator over all its phases.
const TP_TAPS: usize = 48;

/// The BS.1770-4 Annex 2 true-peak meter: a 48-tap windowed-sinc
/// polyphase interpolator (×4 below 96 kHz, ×2 below 192 kHz, none
/// above), with libebur128's coefficients and f32 arithmetic.
pub(super) struct TruePeak {
    factor: usize,
    /// The instruction set the interpolator runs with.
    isa: Isa,
    folded: Folded,
    /// max over phases of Σ|taps|: |output| ≤ bound · max|input|.
    bound: f64,
    /// Per channel: the last `taps − 1` inputs, then the block's.
    lines: Vec<Vec<f32>>,
    peaks: Vec<f32>,
}

impl TruePeak {
    pub(super) fn new(rate: u32, channels: usize) -> TruePeak {
        use std::f64::consts::PI;
        let factor = if rate < 96_000 {
            4
        } else if rate < 192_000 {
            2
        } else {
            1
        };
        // libebur128's design, indexed j = t·factor + p.
        let design: Vec<f32> = (0..TP_TAPS)
            .map(|j| {
                let j = j as f64;
                let window = TP_TAPS as f64;
                let w = 0.5 * (1.0 - (2.0 * PI * j / window).cos());
                let m = j - window / 2.0;
                let x = m * PI / factor as f64;
                (if m.abs() > 1e-6 { w * x.sin() / x } else { w }) as f32
            })
            .collect();
        let taps = TP_TAPS / factor;
        let coefs: Vec<f32> = (0..factor)
            .flat_map(|p| (0..taps).map(move |t| (p, t)))
            .map(|(p, t)| design[t * factor + p])
            .collect();
        let bound = coefs
            .chunks(taps)
            .map(|phase| phase.iter().map(|c| c.abs() as f64).sum())
            .fold(0.0f64, f64::max);
        TruePeak {
            factor,
            isa: cpu::isa(),
            folded: Folded::new(&coefs, factor),
            bound,
            lines: vec![vec![0.0; taps - 1]; channels],
            peaks: vec![0.0; channels],
        }
    }

    /// Adds one block.
    pub(super) fn update(&mut self, block: &Block) {
        for (c, (line, peak)) in self.lines.iter_mut().zip(&mut self.peaks).enumerate() {
            let history = line.len();
            block.channel_into(c, line, |v| v);
            if self.factor == 1 {
                *peak = line.iter().fold(*peak, |m, v| m.max(v.abs()));
            } else {
                match self.factor {
                    4 => scan::<4>(self.isa, line, &self.folded, self.bound, peak),
                    _ => scan::<2>(self.isa, line, &self.folded, self.bound, peak),
                }
            }
            line.drain(..line.len() - history);
        }
    }

    /// The highest true peak so far over all channels.
    pub(super) fn peak(&self) -> f32 {
        self.peaks.iter().fold(0.0f32, |m, &p| m.max(p))
    }
}

/// Raises `peak` to the largest interpolated |value| of `line`'s new
/// samples (those after the first taps − 1), skipping chunks whose inputs
/// are too small to matter.
fn scan<const F: usize>(isa: Isa, line: &[f32], fold: &Folded, bound: f64, peak: &mut f32) {
    let taps = fold.taps;
    let mut start = taps - 1;
    while start < line.len() {
        let end = (start + TP_CHUNK).min(line.len());
        let window = max_abs(&line[start + 1 - taps..end]);
        // Phase 0 of this interpolator is the input itself (its other
        // taps are sin(kπ) ≈ 0), so the samples are peaks too.
        *peak = peak.max(window);
        if window as f64 * bound * (1.0 + 1e-4) >= *peak as f64 {
            *peak = peak.max(interpolated_peak::<F>(isa, line, start, end, fold));
        }
        start = end;
    }
}

/// The interpolator's phases folded about their centres. The design is
/// symmetric — phase p's taps mirror phase F − p's, and the middle phase
/// mirrors itself — so with u_t = x[n−t] + x[n−T+1+t] and v_t the
/// difference (t < T/2), the middle phase is Σ m_t·u_t and the pair (p,
/// F − p) is (S ± D)/2 with S = Σ s_t·u_t, D = Σ d_t·v_t, whose larger
/// magnitude is (|S| + |D|)/2. Half the multiplications of the plain sums.
struct Folded {
    /// Taps per phase (T).
    taps: usize,
    /// Middle phase (F/2), averaged with its mirror.
    m: Vec<f32>,
    /// Phase 1 plus and minus its mirror (F = 4 only).
    s: Vec<f32>,
    d: Vec<f32>,
}

impl Folded {
    /// `coefs[p * taps + t]` as designed.
    fn new(coefs: &[f32], factor: usize) -> Folded {
        let taps = coefs.len() / factor;
        let phase = |p: usize| &coefs[p * taps..(p + 1) * taps];
        let half = taps / 2;
        let mid = phase(factor / 2);
        let m = (0..half)
            .map(|t| (mid[t] + mid[taps - 1 - t]) / 2.0)
            .collect();
        let (s, d) = if factor == 4 {
            let h = phase(1);
            (
                (0..half).map(|t| h[t] + h[taps - 1 - t]).collect(),
                (0..half).map(|t| h[t] - h[taps - 1 - t]).collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Folded { taps, m, s, d }
    }
}

/// The largest |x|, eight lanes at a time (a max does not depend on the
/// order).
fn max_abs(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            lanes[k] = lanes[k].max(c[k].abs());
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

/// The largest interpolated |output| (phases 1..F) for inputs
/// `start..end` of `line`. AVX doubles the lanes where the CPU has it;
/// without FMA contraction every lane rounds as SSE2 does: same bits.
fn interpolated_peak<const F: usize>(
    isa: Isa,
    line: &[f32],
    start: usize,
    end: usize,
    fold: &Folded,
) -> f32 {
    match isa.level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx | Level::AvxFma => {
            // SAFETY: an `Isa` at these levels exists only on a CPU with
            // AVX.
            unsafe { interpolated_peak_avx::<F>(line, start, end, fold) }
        }
        _ => interpolated_peak_portable::<F>(line, start, end, fold),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn interpolated_peak_avx<const F: usize>(
    line: &[f32],
    start: usize,
    end: usize,
    fold: &Folded,
) -> f32 {
    interpolated_peak_portable::<F>(line, start, end, fold)
}

#[inline(always)]
fn interpolated_peak_portable<const F: usize>(
    line: &[f32],
    start: usize,
    end: usize,
    fold: &Folded,
) -> f32 {
    const LANES: usize = 8;
    let (taps, half) = (fold.taps, fold.taps / 2);
    let mut lanes = [0.0f32; LANES];
    let mut n = start;
    // Eight outputs at once, each summed over the taps in the same order
    // as one output at a time below, so with the same rounding.
    while n + LANES <= end {
        let (mut sm, mut ss, mut sd) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
        for t in 0..half {
            let a: &[f32; LANES] = line[n - t..n - t + LANES].try_into().expect("8 lanes");
            let back = n + 1 + t - taps;
            let b: &[f32; LANES] = line[back..back + LANES].try_into().expect("8 lanes");
            for k in 0..LANES {
                let (u, v) = (a[k] + b[k], a[k] - b[k]);
                sm[k] += fold.m[t] * u;
                if F == 4 {
                    ss[k] += fold.s[t] * u;
                    sd[k] += fold.d[t] * v;
                }
            }
        }
        for k in 0..LANES {
            lanes[k] = lanes[k].max(sm[k].abs());
            if F == 4 {
                lanes[k] = lanes[k].max((ss[k].abs() + sd[k].abs()) * 0.5);
            }
        }
        n += LANES;
    }
    for n in n..end {
        let (mut sm, mut ss, mut sd) = (0.0f32, 0.0f32, 0.0f32);
        for t in 0..half {
            let (a, b) = (line[n - t], line[n + 1 + t - taps]);
            let (u, v) = (a + b, a - b);
            sm += fold.m[t] * u;
            if F == 4 {
                ss += fold.s[t] * u;
                sd += fold.d[t] * v;
            }
        }
        lanes[0] = lanes[0].max(sm.abs());
        if F == 4 {
            lanes[0] = lanes[0].max((ss.abs() + sd.abs()) * 0.5);
        }
    }
    lanes.iter().fold(0.0f32, |m, &v| m.max(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpolator_phases_mirror_each_other() {
        // What folding the phases relies on.
        for (rate, factor) in [(48000, 4), (96000, 2)] {
            let tp = TruePeak::new(rate, 1);
            assert_eq!(tp.factor, factor);
            let taps = tp.folded.taps;
            let design = |p: usize, t: usize| {
                let j = (t * factor + p) as f64;
                let w = 0.5 * (1.0 - (2.0 * std::f64::consts::PI * j / 48.0).cos());
                let x = (j - 24.0) * std::f64::consts::PI / factor as f64;
                w * x.sin() / x
            };
            for p in 1..factor {
                for t in 0..taps {
                    let (a, b) = (design(p, t), design(factor - p, taps - 1 - t));
                    assert!((a - b).abs() < 1e-12, "phase {p} tap {t}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn every_cpu_path_gives_the_same_bits() {
        // Loud and quiet stretches, so some windows are skipped; lengths
        // leave a tail after the eight-output runs.
        let line: Vec<f32> = (0..5000)
            .map(|n| {
                let level = if (n / 700) % 2 == 0 { 0.9 } else { 0.01 };
                level * ((n as f32 * 1.37).sin() + 0.5 * (n as f32 * 0.11).cos()) / 1.5
            })
            .collect();
        for rate in [48000, 96000] {
            let tp = TruePeak::new(rate, 1);
            let run = |isa: Isa| {
                let (start, taps) = (tp.folded.taps - 1, tp.folded.taps);
                let mut out = Vec::new();
                for end in [start + 1, start + 8, start + 13, line.len()] {
                    let peak = match tp.factor {
                        4 => interpolated_peak::<4>(isa, &line, start, end, &tp.folded),
                        _ => interpolated_peak::<2>(isa, &line, start, end, &tp.folded),
                    };
                    out.push(peak.to_bits());
                }
                let mut peak = 0.0f32;
                match tp.factor {
                    4 => scan::<4>(
                        isa,
                        &line[..line.len() - taps],
                        &tp.folded,
                        tp.bound,
                        &mut peak,
                    ),
                    _ => scan::<2>(
                        isa,
                        &line[..line.len() - taps],
                        &tp.folded,
                        tp.bound,
                        &mut peak,
                    ),
                }
                out.push(peak.to_bits());
                out
            };
            let portable = run(Isa::PORTABLE);
            for level in Level::ALL {
                match Isa::new(level) {
                    Some(isa) => assert_eq!(run(isa), portable, "{rate} Hz, {level:?}"),
                    None => eprintln!("skipped {level:?}: this CPU lacks it"),
                }
            }
        }
    }
}
