//! The interpolator's arithmetic: the folded filter, its kernels (AVX
//! and portable, bit for bit alike) and the parabolic refinement. Apart
//! from the interpolator's bookkeeping because this is the part that is
//! written for the machine.

use super::{CENTRAL_FROM, Planes, REFINE_MAX, TAPS, max_abs};
use crate::cpu::{self, Isa};

/// The interpolator's phases folded about their centres. The design is
/// symmetric — phase 1's taps mirror phase 3's, and phase 2 mirrors itself
/// — so with u_t = x[n−t] + x[n−T+1+t] and v_t the difference (t < T/2),
/// phase 2 is Σ m_t·u_t and phases 1 and 3 are (S ± D)/2 with
/// S = Σ s_t·u_t, D = Σ d_t·v_t. Half the multiplications of the plain sums.
pub(super) struct Folded {
    pub(super) m: Vec<f32>,
    pub(super) s: Vec<f32>,
    pub(super) d: Vec<f32>,
}

impl Folded {
    /// `coefs[p * TAPS + t]` as designed.
    pub(super) fn new(coefs: &[f32]) -> Folded {
        let phase = |p: usize| &coefs[p * TAPS..(p + 1) * TAPS];
        let half = TAPS / 2;
        let (mid, h) = (phase(2), phase(1));
        Folded {
            m: (0..half)
                .map(|t| (mid[t] + mid[TAPS - 1 - t]) / 2.0)
                .collect(),
            s: (0..half).map(|t| h[t] + h[TAPS - 1 - t]).collect(),
            d: (0..half).map(|t| h[t] - h[TAPS - 1 - t]).collect(),
        }
    }

    /// The most folded taps `0..from` can add to a point, per unit of the
    /// largest input: phase 2 weighs both inputs of a pair by m_t, phases
    /// 1 and 3 one by (s_t + d_t)/2 and the other by (s_t − d_t)/2.
    pub(super) fn tail(&self, from: usize) -> f64 {
        let (mut mid, mut side) = (0.0f64, 0.0f64);
        for t in 0..from {
            let (m, s, d) = (self.m[t] as f64, self.s[t] as f64, self.d[t] as f64);
            mid += 2.0 * m.abs();
            side += ((s + d).abs() + (s - d).abs()) / 2.0;
        }
        mid.max(side)
    }
}

/// The kernel: the four oversampled points of each input `start − 1..end`
/// of `line` (the sample n − DELAY, then the points ¼, ½, ¾ after it)
/// into `planes`, closed by the sample after the last; then into `out`,
/// for each input `start..end`, the largest of its four points refined by
/// their neighbours. AVX doubles the lanes where the CPU has it; without
/// FMA contraction every lane rounds as SSE2 does, and a quotient is exact
/// in any lane: same bits.
pub(super) fn kernel(
    isa: Isa,
    line: &[f32],
    start: usize,
    end: usize,
    fold: &Folded,
    planes: &mut Planes,
    out: &mut [f32],
) {
    cpu::dispatch!(
        isa,
        avx: kernel_avx(line, start, end, fold, planes, out),
        portable: kernel_portable(line, start, end, fold, planes, out),
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn kernel_avx(
    line: &[f32],
    start: usize,
    end: usize,
    fold: &Folded,
    planes: &mut Planes,
    out: &mut [f32],
) {
    // The compiler turns the portable lanes into shuffles and stack
    // spills; written out, sixteen inputs run as two independent vector
    // chains. Each lane still does the portable sums in the same order.
    let done = avx::oversample16::<0>(line, start - 1, end, fold, planes);
    oversample_from::<0>(line, start - 1, done, end, fold, planes);
    finish(line, start, end, planes, out)
}

#[inline(always)]
fn kernel_portable(
    line: &[f32],
    start: usize,
    end: usize,
    fold: &Folded,
    planes: &mut Planes,
    out: &mut [f32],
) {
    oversample_from::<0>(line, start - 1, start - 1, end, fold, planes);
    finish(line, start, end, planes, out)
}

/// The largest |point| of phases 1 to 3 of inputs `start..end` of `line`
/// as the central taps alone (folded taps from [`CENTRAL_FROM`]) give
/// them: the cheap estimate [`TruePeakInterpolator::may_exceed`] bounds.
pub(super) fn central_peak(
    isa: Isa,
    line: &[f32],
    start: usize,
    end: usize,
    fold: &Folded,
    planes: &mut Planes,
) -> f32 {
    cpu::dispatch!(
        isa,
        avx: central_peak_avx(line, start, end, fold, planes),
        portable: {
            oversample_from::<CENTRAL_FROM>(line, start, start, end, fold, planes);
            phases_peak(planes, end - start)
        },
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn central_peak_avx(
    line: &[f32],
    start: usize,
    end: usize,
    fold: &Folded,
    planes: &mut Planes,
) -> f32 {
    let done = avx::oversample16::<CENTRAL_FROM>(line, start, end, fold, planes);
    oversample_from::<CENTRAL_FROM>(line, start, done, end, fold, planes);
    phases_peak(planes, end - start)
}

/// The largest |point| of phases 1 to 3 in the first `len` of the planes.
#[inline(always)]
pub(super) fn phases_peak(planes: &Planes, len: usize) -> f32 {
    planes[1..]
        .iter()
        .map(|p| max_abs(&p[..len]))
        .fold(0.0f32, f32::max)
}

/// Closes the planes with the sample after the last input and writes each
/// input's refined peak into `out`.
#[inline(always)]
fn finish(line: &[f32], start: usize, end: usize, planes: &mut Planes, out: &mut [f32]) {
    let len = end - start;
    planes[0][len + 1] = line[end - TAPS / 2];
    // Input start + j's points are at j + 1 of each plane; the point
    // before phase 0 is phase 3 of the input before, the one after
    // phase 3 is phase 0 of the input after.
    let [p0, p1, p2, p3] = planes;
    let (x, x_next, x_prev) = (&p0[1..], &p0[2..], &p3[..]);
    let (q1, q2, q3) = (&p1[1..], &p2[1..], &p3[1..]);
    for (j, o) in out[..len].iter_mut().enumerate() {
        let r0 = refine(x_prev[j], x[j], q1[j]);
        let r1 = refine(x[j], q1[j], q2[j]);
        let r2 = refine(q1[j], q2[j], q3[j]);
        let r3 = refine(q2[j], q3[j], x_next[j]);
        *o = r0.max(r1).max(r2).max(r3);
    }
}

/// Writes the four oversampled points of each input `from..end` of
/// `line` into `planes` (input `first + i` at index i), summing the folded
/// taps `FROM..` (0: the whole filter; a constant, so each loop is
/// compiled for its length).
#[inline(always)]
pub(super) fn oversample_from<const FROM: usize>(
    line: &[f32],
    first: usize,
    from: usize,
    end: usize,
    fold: &Folded,
    planes: &mut Planes,
) {
    const LANES: usize = 8;
    let half = TAPS / 2;
    let mut n = from;
    // Eight inputs at once, each summed over the taps in the same order
    // as one input at a time below, so with the same rounding.
    while n + LANES <= end {
        let (mut sm, mut ss, mut sd) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
        for t in FROM..half {
            let a: &[f32; LANES] = line[n - t..n - t + LANES].try_into().expect("8 lanes");
            let back = n + 1 + t - TAPS;
            let b: &[f32; LANES] = line[back..back + LANES].try_into().expect("8 lanes");
            for k in 0..LANES {
                let (u, v) = (a[k] + b[k], a[k] - b[k]);
                sm[k] += fold.m[t] * u;
                ss[k] += fold.s[t] * u;
                sd[k] += fold.d[t] * v;
            }
        }
        let at = n - first;
        for k in 0..LANES {
            planes[0][at + k] = line[n + k - half];
            planes[1][at + k] = (ss[k] + sd[k]) * 0.5;
            planes[2][at + k] = sm[k];
            planes[3][at + k] = (ss[k] - sd[k]) * 0.5;
        }
        n += LANES;
    }
    for n in n..end {
        let (mut sm, mut ss, mut sd) = (0.0f32, 0.0f32, 0.0f32);
        for t in FROM..half {
            let (a, b) = (line[n - t], line[n + 1 + t - TAPS]);
            let (u, v) = (a + b, a - b);
            sm += fold.m[t] * u;
            ss += fold.s[t] * u;
            sd += fold.d[t] * v;
        }
        let at = n - first;
        planes[0][at] = line[n - half];
        planes[1][at] = (ss + sd) * 0.5;
        planes[2][at] = sm;
        planes[3][at] = (ss - sd) * 0.5;
    }
}

/// The AVX oversampler: the portable sums, sixteen inputs at a time.
#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{Folded, Planes, TAPS};
    use std::arch::x86_64::*;

    /// Oversamples inputs `first..` of `line` in runs of sixteen while a
    /// whole run fits before `end`; returns the first input not done.
    /// Per lane: u = a + b, v = a − b, then each sum += coefficient × u
    /// (or v), tap by tap from `FROM`, unfused: the portable rounding.
    #[target_feature(enable = "avx")]
    pub(super) fn oversample16<const FROM: usize>(
        line: &[f32],
        first: usize,
        end: usize,
        fold: &Folded,
        planes: &mut Planes,
    ) -> usize {
        const RUN: usize = 16;
        let half = TAPS / 2;
        let (m, s, d) = (&fold.m[..half], &fold.s[..half], &fold.d[..half]);
        let mut n = first;
        // The taps reach back TAPS − 1 inputs and the run forward RUN − 1.
        // and every plane holds a point per input first..end.
        assert!(first + 1 >= TAPS && end <= line.len());
        assert!(planes.iter().all(|p| p.len() >= end - first));
        while n + RUN <= end {
            let at = n - first;
            // SAFETY: every load reads line[n − t ..][..16],
            // line[n + 1 + t − TAPS ..][..16] or line[n − TAPS / 2 ..][..16],
            // inside `line` by the first assert (t < TAPS / 2,
            // n + 16 ≤ end ≤ len); every store writes planes[p][at..at + 16],
            // inside by the second (at + 16 ≤ end − first).
            unsafe {
                let (mut sm0, mut ss0, mut sd0) = (
                    _mm256_setzero_ps(),
                    _mm256_setzero_ps(),
                    _mm256_setzero_ps(),
                );
                let (mut sm1, mut ss1, mut sd1) = (
                    _mm256_setzero_ps(),
                    _mm256_setzero_ps(),
                    _mm256_setzero_ps(),
                );
                let base = line.as_ptr();
                for t in FROM..half {
                    let pa = base.add(n - t);
                    let pb = base.add(n + 1 + t - TAPS);
                    let (cm, cs, cd) = (
                        _mm256_set1_ps(*m.get_unchecked(t)),
                        _mm256_set1_ps(*s.get_unchecked(t)),
                        _mm256_set1_ps(*d.get_unchecked(t)),
                    );
                    let (a0, b0) = (_mm256_loadu_ps(pa), _mm256_loadu_ps(pb));
                    let (a1, b1) = (_mm256_loadu_ps(pa.add(8)), _mm256_loadu_ps(pb.add(8)));
                    let (u0, v0) = (_mm256_add_ps(a0, b0), _mm256_sub_ps(a0, b0));
                    let (u1, v1) = (_mm256_add_ps(a1, b1), _mm256_sub_ps(a1, b1));
                    sm0 = _mm256_add_ps(sm0, _mm256_mul_ps(cm, u0));
                    ss0 = _mm256_add_ps(ss0, _mm256_mul_ps(cs, u0));
                    sd0 = _mm256_add_ps(sd0, _mm256_mul_ps(cd, v0));
                    sm1 = _mm256_add_ps(sm1, _mm256_mul_ps(cm, u1));
                    ss1 = _mm256_add_ps(ss1, _mm256_mul_ps(cs, u1));
                    sd1 = _mm256_add_ps(sd1, _mm256_mul_ps(cd, v1));
                }
                let h = _mm256_set1_ps(0.5);
                for (k, (sm, ss, sd)) in [(sm0, ss0, sd0), (sm1, ss1, sd1)].into_iter().enumerate()
                {
                    let o = at + 8 * k;
                    let x = _mm256_loadu_ps(base.add(n + 8 * k - half));
                    _mm256_storeu_ps(planes[0].as_mut_ptr().add(o), x);
                    let p1 = _mm256_mul_ps(_mm256_add_ps(ss, sd), h);
                    _mm256_storeu_ps(planes[1].as_mut_ptr().add(o), p1);
                    _mm256_storeu_ps(planes[2].as_mut_ptr().add(o), sm);
                    let p3 = _mm256_mul_ps(_mm256_sub_ps(ss, sd), h);
                    _mm256_storeu_ps(planes[3].as_mut_ptr().add(o), p3);
                }
            }
            n += RUN;
        }
        n
    }
}

/// The peak of the parabola through three consecutive oversampled points
/// when |b| is a local maximum (capped at [`REFINE_MAX`] × |b|), else |b|.
#[inline(always)]
pub(super) fn refine(a: f32, b: f32, c: f32) -> f32 {
    let (a, b, c) = (a.abs(), b.abs(), c.abs());
    let den = 2.0 * b - a - c;
    // Both sides computed, then one chosen: lanes without branches.
    let lift = (a - c) * (a - c) / (8.0 * den);
    let top = (b + lift).min(b * REFINE_MAX);
    if b >= a && b >= c && den > 0.0 {
        top
    } else {
        b
    }
}
