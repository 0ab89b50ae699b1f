//! The biquad cascade of [`super::iir`] run straight on a block's
//! interleaved `f32` samples, every channel at once.
//!
//! Filtering channel by channel meant copying each channel out of the
//! block into `f64`, filtering, and copying it back: three passes with
//! strided, scalar loads. Here the channels of a frame sit in neighbouring
//! SIMD lanes instead — in stereo, the eight lanes of the side-by-side
//! kernel hold four chunks × two channels — so a block is read once and
//! written once. Every sample still goes through exactly the arithmetic of
//! [`super::iir::Cascade`] (the same zero-state run, the same correction in
//! the same order, the same chunk-to-chunk states), so the output bits are
//! those of the per-channel cascade, on every CPU and for any block split.

use super::iir::{CHUNK, LANES, Section, State, States, next_start, step, unit_responses};
use crate::cpu::{self, Isa};

/// A cascade of `S` biquad sections over `C` interleaved channels
/// (1 or 2), reading and writing `f32` and computing in `f64`.
#[derive(Clone, Debug)]
pub struct InterleavedCascade<const S: usize, const C: usize> {
    sections: [Section; S],
    /// The current chunk's zero-state run, one lane per channel.
    zs: [State<C>; S],
    /// The true state where the current chunk began, per channel.
    z0: [States<S>; C],
    /// The correction rows spread over the interleaved samples of a chunk:
    /// entry `p4·2S + r` holds row r's values for the four samples
    /// `4·p4..4·p4 + 4` (sample p is frame p / C), so the corrections of
    /// four neighbouring samples are four-lane multiply-adds.
    g: Vec<[f64; 4]>,
    /// `phi[s][j]`: the state at the end of a chunk from unit state (s, j).
    phi: [[States<S>; 2]; S],
    /// Zero-state outputs of the side-by-side chunks, laid out like the
    /// samples.
    scratch: Vec<f64>,
    /// Frames filtered so far.
    pos: u64,
    isa: Isa,
}

impl<const S: usize, const C: usize> InterleavedCascade<S, C> {
    /// Chunks run side by side: the lanes shared among the channels.
    const CHUNKS: usize = LANES / C;

    /// A cascade whose kernels use the best instruction set this CPU has.
    pub fn new(sections: [Section; S]) -> Self {
        Self::with_isa(sections, cpu::isa())
    }

    /// A cascade whose kernels use `isa` (any level gives the same bits).
    pub fn with_isa(sections: [Section; S], isa: Isa) -> Self {
        const { assert!((C == 1 || C == 2) && S <= 4) };
        let (rows, phi) = unit_responses(isa, &sections);
        let g = (0..CHUNK * C / 4)
            .flat_map(|p4| {
                let rows = &rows;
                (0..2 * S).map(move |r| std::array::from_fn(|i| rows[r][(4 * p4 + i) / C]))
            })
            .collect();
        InterleavedCascade {
            sections,
            zs: [State::ZERO; S],
            z0: [[[0.0; 2]; S]; C],
            g,
            phi,
            scratch: vec![0.0; LANES * CHUNK],
            pos: 0,
            isa,
        }
    }

    /// Filters `samples` in place: the stream's next frames, `C` samples
    /// each.
    pub fn process(&mut self, samples: &mut [f32]) {
        cpu::dispatch!(
            self.isa,
            avx_fma: self.process_avx_fma(samples),
            portable: self.process_portable(samples),
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx,fma")]
    fn process_avx_fma(&mut self, samples: &mut [f32]) {
        self.process_portable(samples)
    }

    #[inline(always)]
    fn process_portable(&mut self, samples: &mut [f32]) {
        let frames = samples.len() / C;
        let run = Self::CHUNKS * CHUNK;
        let mut i = 0;
        while i < frames {
            let offset = (self.pos % CHUNK as u64) as usize;
            if offset == 0 && frames - i >= run {
                self.chunks_side_by_side(&mut samples[i * C..(i + run) * C]);
                i += run;
                continue;
            }
            let n = (CHUNK - offset).min(frames - i);
            self.run_serial(&mut samples[i * C..(i + n) * C], offset);
            i += n;
        }
    }

    /// The correction of sample `p` of a chunk (frame p / C, channel
    /// p % C), as [`super::iir`] computes it: Σ g·z in row order.
    #[inline(always)]
    fn correction(&self, p: usize) -> f64 {
        let g = &self.g[(p / 4) * 2 * S..][..2 * S];
        let z = &self.z0[p % C];
        let mut acc = 0.0;
        for s in 0..S {
            for j in 0..2 {
                acc = g[2 * s + j][p % 4].mul_add(z[s][j], acc);
            }
        }
        acc
    }

    /// Frames `offset..` of the current chunk, one at a time (channels
    /// side by side).
    #[inline(always)]
    fn run_serial(&mut self, samples: &mut [f32], offset: usize) {
        let mut zs = self.zs;
        for (k, frame) in samples.chunks_exact_mut(C).enumerate() {
            let mut x: [f64; C] = std::array::from_fn(|c| f64::from(frame[c]));
            for (sec, st) in self.sections.iter().zip(zs.iter_mut()) {
                x = step(sec, st, x);
            }
            for (c, v) in frame.iter_mut().enumerate() {
                *v = (x[c] + self.correction((offset + k) * C + c)) as f32;
            }
        }
        self.zs = zs;
        self.pos += (samples.len() / C) as u64;
        if offset + samples.len() / C == CHUNK {
            for c in 0..C {
                let end = zs.map(|st| [st.s1[c], st.s2[c]]);
                self.z0[c] = next_start(&self.phi, end, &self.z0[c]);
            }
            self.zs = [State::ZERO; S];
        }
    }

    /// [`Self::CHUNKS`] whole chunks: the zero-state runs side by side,
    /// then chunk by chunk the corrections added and the states chained.
    #[inline(always)]
    fn chunks_side_by_side(&mut self, samples: &mut [f32]) {
        let st = zero_state::<S, C>(self.isa, &self.sections, samples, &mut self.scratch);
        let len = CHUNK * C;
        for q in 0..Self::CHUNKS {
            let zs = &self.scratch[q * len..(q + 1) * len];
            let out = &mut samples[q * len..(q + 1) * len];
            add_corrections::<S, C>(self.isa, &self.g, &self.z0, zs, out);
            for c in 0..C {
                let end = st.map(|st| [st.s1[q * C + c], st.s2[q * C + c]]);
                self.z0[c] = next_start(&self.phi, end, &self.z0[c]);
            }
        }
        self.zs = [State::ZERO; S];
        self.pos += (samples.len() / C) as u64;
    }
}

/// One chunk's output: its zero-state run `zs` plus the corrections from
/// the start states `z0`, rounded to `f32` into `out`. Four samples at a
/// time, each with [`InterleavedCascade::correction`]'s arithmetic.
#[inline(always)]
fn add_corrections<const S: usize, const C: usize>(
    isa: Isa,
    g: &[[f64; 4]],
    z0: &[States<S>; C],
    zs: &[f64],
    out: &mut [f32],
) {
    // Row r's start-state value for each of four neighbouring samples.
    let mut z = [[0.0; 4]; 8];
    for (r, z) in z.iter_mut().enumerate().take(2 * S) {
        for (i, z) in z.iter_mut().enumerate() {
            *z = z0[i % C][r / 2][r % 2];
        }
    }
    let n4 = out.len() / 4;
    let (g, zs, out) = (&g[..n4 * 2 * S], &zs[..n4 * 4], &mut out[..n4 * 4]);
    cpu::dispatch!(
        isa,
        avx_fma: add_corrections_avx_fma::<S>(g, &z, zs, out),
        portable: {
            for p4 in 0..n4 {
                let mut acc = [0.0; 4];
                for r in 0..2 * S {
                    let g = g[p4 * 2 * S + r];
                    for i in 0..4 {
                        acc[i] = g[i].mul_add(z[r][i], acc[i]);
                    }
                }
                for i in 0..4 {
                    out[p4 * 4 + i] = (zs[p4 * 4 + i] + acc[i]) as f32;
                }
            }
        },
    )
}

/// The portable loop of [`add_corrections`] in AVX registers: per lane the
/// same fused multiply-adds in the same order, the same sum and the same
/// rounding to `f32` (to nearest, as `as f32`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
fn add_corrections_avx_fma<const S: usize>(
    g: &[[f64; 4]],
    z: &[[f64; 4]; 8],
    zs: &[f64],
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let n4 = out.len() / 4;
    assert!(g.len() >= n4 * 2 * S && zs.len() >= n4 * 4 && S <= 4);
    // SAFETY: every load and store below is within the lengths asserted
    // above; unaligned accesses are allowed.
    unsafe {
        let zv: [__m256d; 8] = [0, 1, 2, 3, 4, 5, 6, 7].map(|r| _mm256_loadu_pd(z[r].as_ptr()));
        for p4 in 0..n4 {
            let row = g.as_ptr().add(p4 * 2 * S).cast::<f64>();
            let mut acc = _mm256_setzero_pd();
            for (r, zv) in zv.iter().enumerate().take(2 * S) {
                acc = _mm256_fmadd_pd(_mm256_loadu_pd(row.add(4 * r)), *zv, acc);
            }
            let y = _mm256_add_pd(_mm256_loadu_pd(zs.as_ptr().add(4 * p4)), acc);
            _mm_storeu_ps(out.as_mut_ptr().add(4 * p4), _mm256_cvtpd_ps(y));
        }
    }
}

/// The zero-state runs of [`InterleavedCascade::CHUNKS`] consecutive
/// chunks of `samples` into `scratch` (same layout, `f64`); lane
/// `q·C + c` is channel c of chunk q. Returns the lanes' end states.
#[inline(always)]
fn zero_state<const S: usize, const C: usize>(
    isa: Isa,
    sections: &[Section; S],
    samples: &[f32],
    scratch: &mut [f64],
) -> [State<LANES>; S] {
    cpu::dispatch!(
        isa,
        avx_fma: zero_state_avx_fma::<S, C>(sections, samples, scratch),
        portable: zero_state_portable::<S, C>(sections, samples, scratch),
    )
}

/// Index in the samples of lane `l` (chunk l / C, channel l % C) at frame
/// `k` of its chunk.
#[inline(always)]
fn at<const C: usize>(l: usize, k: usize) -> usize {
    ((l / C) * CHUNK + k) * C + l % C
}

fn zero_state_portable<const S: usize, const C: usize>(
    sections: &[Section; S],
    samples: &[f32],
    scratch: &mut [f64],
) -> [State<LANES>; S] {
    let mut st = [State::<LANES>::ZERO; S];
    for k in 0..CHUNK {
        let mut x: [f64; LANES] = std::array::from_fn(|l| f64::from(samples[at::<C>(l, k)]));
        for s in 0..S {
            x = step(&sections[s], &mut st[s], x);
        }
        for (l, v) in x.into_iter().enumerate() {
            scratch[at::<C>(l, k)] = v;
        }
    }
    st
}

/// [`zero_state_portable`] with the eight lanes in two AVX registers, as
/// [`super::iir`]'s kernel: the same operations, the same bits. In stereo each
/// half-register is one frame of a chunk, loaded as one 64-bit pair.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
fn zero_state_avx_fma<const S: usize, const C: usize>(
    sections: &[Section; S],
    samples: &[f32],
    scratch: &mut [f64],
) -> [State<LANES>; S] {
    use std::arch::x86_64::*;
    const { assert!(LANES == 8) };
    assert!(samples.len() >= LANES * CHUNK && scratch.len() >= LANES * CHUNK);
    let zero = _mm256_setzero_pd();
    let (mut s1, mut s2) = ([[zero; 2]; S], [[zero; 2]; S]);
    let coefs: [[__m256d; 5]; S] = std::array::from_fn(|s| {
        let c = &sections[s];
        [c.b[0], c.b[1], c.b[2], c.a[0], c.a[1]].map(|v| _mm256_set1_pd(v))
    });
    for k in 0..CHUNK {
        let mut x = [load4::<C>(samples, 0, k), load4::<C>(samples, 1, k)];
        for s in 0..S {
            let [b0, b1, b2, a1, a2] = coefs[s];
            for h in 0..2 {
                let y = _mm256_fmadd_pd(b0, x[h], s1[s][h]);
                s1[s][h] = _mm256_fnmadd_pd(a1, y, _mm256_fmadd_pd(b1, x[h], s2[s][h]));
                s2[s][h] = _mm256_fnmadd_pd(a2, y, _mm256_mul_pd(b2, x[h]));
                x[h] = y;
            }
        }
        store4::<C>(scratch, 0, k, x[0]);
        store4::<C>(scratch, 1, k, x[1]);
    }
    let lanes = |v: [__m256d; 2]| {
        let mut out = [0.0f64; LANES];
        // SAFETY: `out` holds eight f64; unaligned stores are allowed.
        unsafe {
            _mm256_storeu_pd(out.as_mut_ptr(), v[0]);
            _mm256_storeu_pd(out.as_mut_ptr().add(4), v[1]);
        }
        out
    };
    std::array::from_fn(|s| State {
        s1: lanes(s1[s]),
        s2: lanes(s2[s]),
    })
}

/// Lanes `4h..4h + 4` at frame `k`, widened to `f64`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
fn load4<const C: usize>(samples: &[f32], h: usize, k: usize) -> std::arch::x86_64::__m256d {
    use std::arch::x86_64::*;
    let l = 4 * h;
    let v = if C == 2 {
        // Two chunks' (left, right) pairs, each contiguous.
        let (a, b) = (at::<C>(l, k), at::<C>(l + 2, k));
        _mm_set_ps(samples[b + 1], samples[b], samples[a + 1], samples[a])
    } else {
        let (a, b, c, d) = (at::<C>(l, k), at::<C>(l + 1, k), at::<C>(l + 2, k), at::<C>(l + 3, k));
        _mm_set_ps(samples[d], samples[c], samples[b], samples[a])
    };
    _mm256_cvtps_pd(v)
}

/// Stores lanes `4h..4h + 4` at frame `k` where [`load4`] read them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
fn store4<const C: usize>(scratch: &mut [f64], h: usize, k: usize, x: std::arch::x86_64::__m256d) {
    use std::arch::x86_64::*;
    let l = 4 * h;
    let (lo, hi) = (_mm256_castpd256_pd128(x), _mm256_extractf128_pd::<1>(x));
    if C == 2 {
        let (a, b) = (at::<C>(l, k), at::<C>(l + 2, k));
        // SAFETY: each slice holds two f64; unaligned stores are allowed.
        unsafe {
            _mm_storeu_pd(scratch[a..a + 2].as_mut_ptr(), lo);
            _mm_storeu_pd(scratch[b..b + 2].as_mut_ptr(), hi);
        }
    } else {
        let mut out = [0.0f64; 4];
        // SAFETY: `out` holds four f64; unaligned stores are allowed.
        unsafe {
            _mm_storeu_pd(out.as_mut_ptr(), lo);
            _mm_storeu_pd(out.as_mut_ptr().add(2), hi);
        }
        for (i, v) in out.into_iter().enumerate() {
            scratch[at::<C>(l + i, k)] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::iir::Cascade;

    /// A 38 Hz high-pass (slow poles) and an 8 kHz low-pass at 48 kHz.
    fn sections() -> [Section; 2] {
        let design = |f: f64, q: f64, high: bool| {
            let w = 2.0 * std::f64::consts::PI * f / 48000.0;
            let alpha = w.sin() / (2.0 * q);
            let a0 = 1.0 + alpha;
            let cw = w.cos();
            let b = if high {
                [(1.0 + cw) / 2.0, -(1.0 + cw), (1.0 + cw) / 2.0]
            } else {
                [(1.0 - cw) / 2.0, 1.0 - cw, (1.0 - cw) / 2.0]
            };
            Section {
                b: b.map(|v| v / a0),
                a: [-2.0 * cw / a0, (1.0 - alpha) / a0],
            }
        };
        [design(38.0, 0.5, true), design(8000.0, 1.3066, false)]
    }

    /// `channels` different signals, interleaved.
    fn signal(frames: usize, channels: usize) -> Vec<f32> {
        (0..frames * channels)
            .map(|i| {
                let (n, c) = ((i / channels) as f64, (i % channels) as f64);
                (((n * (0.37 + c * 0.11)).sin() + ((i * 7919) % 13) as f64 / 13.0 - 0.5) * 0.7)
                    as f32
            })
            .collect()
    }

    /// The reference: each channel alone through [`Cascade`] in f64.
    fn per_channel(x: &[f32], channels: usize, block: usize) -> Vec<f32> {
        let mut out = x.to_vec();
        for c in 0..channels {
            let mut f = Cascade::new(sections());
            let mut line: Vec<f64> = x.iter().skip(c).step_by(channels).map(|&v| v.into()).collect();
            for b in line.chunks_mut(block) {
                f.process(b);
            }
            for (o, y) in out.iter_mut().skip(c).step_by(channels).zip(line) {
                *o = y as f32;
            }
        }
        out
    }

    fn run<const C: usize>(isa: Isa, x: &[f32], block: usize) -> Vec<f32> {
        let mut f = InterleavedCascade::<2, C>::with_isa(sections(), isa);
        let mut out = x.to_vec();
        for b in out.chunks_mut(block * C) {
            f.process(b);
        }
        out
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|y| y.to_bits()).collect()
    }

    #[test]
    fn equals_the_per_channel_cascade_bit_for_bit_on_every_cpu_path() {
        // 30 000 frames: whole side-by-side runs, serial chunks and a
        // partial last chunk, for blocks that do and do not line up.
        let (mono, stereo) = (signal(30_000, 1), signal(30_000, 2));
        let (want1, want2) = (per_channel(&mono, 1, 4096), per_channel(&stereo, 2, 4096));
        for level in cpu::Level::ALL {
            let Some(isa) = Isa::new(level) else {
                eprintln!("skipped {level:?}: this CPU lacks it");
                continue;
            };
            for block in [1, 255, 1000, 1024, 4096, 30_000] {
                assert_eq!(bits(&run::<1>(isa, &mono, block)), bits(&want1), "{level:?} {block}");
                assert_eq!(bits(&run::<2>(isa, &stereo, block)), bits(&want2), "{level:?} {block}");
            }
        }
    }
}
