//! Biquad cascades fast enough to filter and meter every stem.
//!
//! A recursive filter is slow on one stream because each output waits for
//! the previous one. Linearity lifts that: over a chunk of [`CHUNK`] frames
//! the output is the chunk's zero-state response — which needs no earlier
//! output — plus the response to the state the chunk starts in, G[k]·Z0.
//! The zero-state responses of eight chunks run side by side in SIMD lanes;
//! then the start states follow chunk to chunk (Z_end = Z_zs + Φ·Z0) and the
//! corrections are added. Chunks sit at fixed multiples of [`CHUNK`] frames
//! and every frame is computed by the same arithmetic whichever path runs
//! it, so the output does not depend on how the stream is split into
//! blocks, nor on the CPU (`mul_add` is fused everywhere).

use crate::cpu::{self, Isa};

/// Frames per chunk.
pub const CHUNK: usize = 256;
/// Chunks computed side by side: two AVX registers' worth, so two
/// independent recursions hide each other's latency.
pub(super) const LANES: usize = 8;

/// One section's coefficients: numerator `b`, denominator
/// 1 + a[0]·z⁻¹ + a[1]·z⁻².
#[derive(Clone, Copy, Debug)]
pub struct Section {
    pub b: [f64; 3],
    pub a: [f64; 2],
}

/// Transposed-direct-form-II state of one section, in `L` lanes.
#[derive(Clone, Copy, Debug)]
pub(super) struct State<const L: usize> {
    pub(super) s1: [f64; L],
    pub(super) s2: [f64; L],
}

impl<const L: usize> State<L> {
    pub(super) const ZERO: Self = State {
        s1: [0.0; L],
        s2: [0.0; L],
    };
}

/// One transposed-direct-form-II step in every lane, fused multiply-adds
/// throughout.
#[inline(always)]
pub(super) fn step<const L: usize>(c: &Section, st: &mut State<L>, x: [f64; L]) -> [f64; L] {
    let mut y = [0.0; L];
    for l in 0..L {
        y[l] = c.b[0].mul_add(x[l], st.s1[l]);
        st.s1[l] = (-c.a[0]).mul_add(y[l], c.b[1].mul_add(x[l], st.s2[l]));
        st.s2[l] = (-c.a[1]).mul_add(y[l], c.b[2] * x[l]);
    }
    y
}

/// Every section's state: (s1, s2) per section.
pub(super) type States<const S: usize> = [[f64; 2]; S];

/// The correction k frames into a chunk that started in state `z`:
/// `Σ g[s][j][k]·z[s][j]`, in a fixed order.
#[inline(always)]
fn correction<const S: usize>(g: &[[f64; CHUNK]], k: usize, z: &States<S>) -> f64 {
    let g = &g[..2 * S];
    let mut acc = 0.0;
    for s in 0..S {
        for j in 0..2 {
            acc = g[2 * s + j][k].mul_add(z[s][j], acc);
        }
    }
    acc
}

/// A cascade of `S` biquad sections over one channel, in f64.
#[derive(Clone, Debug)]
pub struct Cascade<const S: usize> {
    sections: [Section; S],
    /// The current chunk's zero-state run (every state started at zero).
    zs: [State<1>; S],
    /// The true state where the current chunk began.
    z0: States<S>,
    /// `g[2s + j][k]`: the last section's output k frames into a chunk
    /// that starts from unit state (s, j) with no input (one row per
    /// state, so the corrections read memory in order).
    g: Vec<[f64; CHUNK]>,
    /// `phi[s][j]`: the state at the end of such a chunk.
    phi: [[States<S>; 2]; S],
    /// Frames filtered so far.
    pos: u64,
    /// The instruction set the kernels run with.
    isa: Isa,
}

impl<const S: usize> Cascade<S> {
    /// A cascade whose kernels use the best instruction set this CPU has.
    pub fn new(sections: [Section; S]) -> Cascade<S> {
        Cascade::with_isa(sections, cpu::isa())
    }

    /// A cascade whose kernels use `isa` (any level gives the same bits;
    /// tests force each one).
    pub fn with_isa(sections: [Section; S], isa: Isa) -> Cascade<S> {
        let (g, phi) = unit_responses(isa, &sections);
        Cascade {
            sections,
            zs: [State::ZERO; S],
            z0: [[0.0; 2]; S],
            g,
            phi,
            pos: 0,
            isa,
        }
    }

    /// Filters `buf` in place: the stream's next frames.
    pub fn process(&mut self, buf: &mut [f64]) {
        cpu::dispatch!(
            self.isa,
            avx_fma: self.process_avx_fma(buf),
            portable: self.process_portable(buf),
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx,fma")]
    fn process_avx_fma(&mut self, buf: &mut [f64]) {
        self.process_portable(buf)
    }

    #[inline(always)]
    fn process_portable(&mut self, buf: &mut [f64]) {
        let mut i = 0;
        while i < buf.len() {
            let offset = (self.pos % CHUNK as u64) as usize;
            if offset == 0 && buf.len() - i >= LANES * CHUNK {
                self.chunks_side_by_side(&mut buf[i..i + LANES * CHUNK]);
                i += LANES * CHUNK;
                continue;
            }
            let n = (CHUNK - offset).min(buf.len() - i);
            self.run_serial(&mut buf[i..i + n], offset);
            i += n;
        }
    }

    /// Frames `offset..` of the current chunk, one at a time.
    #[inline(always)]
    fn run_serial(&mut self, buf: &mut [f64], offset: usize) {
        let mut zs = self.zs;
        for (k, v) in buf.iter_mut().enumerate() {
            let mut x = [*v];
            for (c, st) in self.sections.iter().zip(zs.iter_mut()) {
                x = step(c, st, x);
            }
            *v = x[0] + correction(&self.g, offset + k, &self.z0);
        }
        self.zs = zs;
        self.pos += buf.len() as u64;
        if offset + buf.len() == CHUNK {
            self.end_chunk(zs.map(|st| [st.s1[0], st.s2[0]]));
        }
    }

    /// `LANES` whole chunks: zero-state responses side by side, then the
    /// states chained and the corrections added.
    #[inline(always)]
    fn chunks_side_by_side(&mut self, buf: &mut [f64]) {
        let st = zero_state(self.isa, &self.sections, buf);
        for (l, chunk) in buf.chunks_exact_mut(CHUNK).enumerate() {
            let chunk: &mut [f64; CHUNK] = chunk.try_into().expect("whole chunk");
            for (k, v) in chunk.iter_mut().enumerate() {
                *v += correction(&self.g, k, &self.z0);
            }
            self.end_chunk(st.map(|st| [st.s1[l], st.s2[l]]));
        }
        self.pos += buf.len() as u64;
    }

    /// Closes a chunk whose zero-state run ended in state `end`: the next
    /// chunk starts from end + Φ·z0.
    #[inline(always)]
    fn end_chunk(&mut self, end: States<S>) {
        self.z0 = next_start(&self.phi, end, &self.z0);
        self.zs = [State::ZERO; S];
    }
}

/// The state the next chunk starts in, when the current one started in
/// `z0` and its zero-state run ended in `end`: end + Φ·z0, in a fixed
/// order.
#[inline(always)]
pub(super) fn next_start<const S: usize>(
    phi: &[[States<S>; 2]; S],
    end: States<S>,
    z0: &States<S>,
) -> States<S> {
    let mut z = end;
    for (s, zs) in z.iter_mut().enumerate() {
        for (j, v) in zs.iter_mut().enumerate() {
            for (phi, z0) in phi.iter().zip(z0) {
                for (phi, z0) in phi.iter().zip(z0) {
                    *v = phi[s][j].mul_add(*z0, *v);
                }
            }
            // Far below f32 resolution: zero it before it turns
            // denormal and slow.
            if v.abs() < 1e-30 {
                *v = 0.0;
            }
        }
    }
    z
}

/// Correction rows and end states of a chunk starting from each unit state
/// (see [`Cascade`]'s `g` and `phi`).
#[allow(clippy::type_complexity)]
pub(super) fn unit_responses<const S: usize>(
    isa: Isa,
    sections: &[Section; S],
) -> (Vec<[f64; CHUNK]>, [[States<S>; 2]; S]) {
    cpu::dispatch!(
        isa,
        avx_fma: unit_responses_avx_fma(sections),
        portable: unit_responses_portable(sections),
    )
}

/// [`unit_responses_portable`] compiled for FMA: the same bits, sooner.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
#[allow(clippy::type_complexity)]
fn unit_responses_avx_fma<const S: usize>(
    sections: &[Section; S],
) -> (Vec<[f64; CHUNK]>, [[States<S>; 2]; S]) {
    unit_responses_portable(sections)
}

#[allow(clippy::type_complexity)]
#[inline(always)]
fn unit_responses_portable<const S: usize>(
    sections: &[Section; S],
) -> (Vec<[f64; CHUNK]>, [[States<S>; 2]; S]) {
    let mut g = vec![[0.0; CHUNK]; 2 * S];
    let mut phi = [[[[0.0; 2]; S]; 2]; S];
    for s0 in 0..S {
        for j0 in 0..2 {
            let mut st = [State::<1>::ZERO; S];
            if j0 == 0 {
                st[s0].s1[0] = 1.0;
            } else {
                st[s0].s2[0] = 1.0;
            }
            for gk in g[2 * s0 + j0].iter_mut() {
                let mut x = [0.0];
                for (c, st) in sections.iter().zip(st.iter_mut()) {
                    x = step(c, st, x);
                }
                *gk = x[0];
            }
            phi[s0][j0] = st.map(|st| [st.s1[0], st.s2[0]]);
        }
    }
    (g, phi)
}

/// The zero-state responses of `LANES` consecutive chunks of `buf`, in
/// place, one chunk per lane; returns the lanes' end states.
#[inline(always)]
fn zero_state<const S: usize>(
    isa: Isa,
    sections: &[Section; S],
    buf: &mut [f64],
) -> [State<LANES>; S] {
    cpu::dispatch!(
        isa,
        avx_fma: zero_state_avx_fma(sections, buf),
        portable: zero_state_portable(sections, buf),
    )
}

fn zero_state_portable<const S: usize>(
    sections: &[Section; S],
    buf: &mut [f64],
) -> [State<LANES>; S] {
    let mut st = [State::<LANES>::ZERO; S];
    for k in 0..CHUNK {
        let mut x = [0.0; LANES];
        for l in 0..LANES {
            x[l] = buf[l * CHUNK + k];
        }
        for s in 0..S {
            x = step(&sections[s], &mut st[s], x);
        }
        for l in 0..LANES {
            buf[l * CHUNK + k] = x[l];
        }
    }
    st
}

/// [`zero_state_portable`] with the eight lanes in two AVX registers: the
/// same operations (fnmadd(a, y, c) = fma(−a, y, c) exactly), the same
/// bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
fn zero_state_avx_fma<const S: usize>(
    sections: &[Section; S],
    buf: &mut [f64],
) -> [State<LANES>; S] {
    use std::arch::x86_64::*;
    const { assert!(LANES == 8) };
    let zero = _mm256_setzero_pd();
    // Lanes 0–3 and 4–7 of each state.
    let (mut s1, mut s2) = ([[zero; 2]; S], [[zero; 2]; S]);
    let coefs: [[__m256d; 5]; S] = std::array::from_fn(|s| {
        let c = &sections[s];
        [c.b[0], c.b[1], c.b[2], c.a[0], c.a[1]].map(|v| _mm256_set1_pd(v))
    });
    for k in 0..CHUNK {
        let at = |l: usize| buf[l * CHUNK + k];
        let mut x = [
            _mm256_set_pd(at(3), at(2), at(1), at(0)),
            _mm256_set_pd(at(7), at(6), at(5), at(4)),
        ];
        for s in 0..S {
            let [b0, b1, b2, a1, a2] = coefs[s];
            for h in 0..2 {
                let y = _mm256_fmadd_pd(b0, x[h], s1[s][h]);
                s1[s][h] = _mm256_fnmadd_pd(a1, y, _mm256_fmadd_pd(b1, x[h], s2[s][h]));
                s2[s][h] = _mm256_fnmadd_pd(a2, y, _mm256_mul_pd(b2, x[h]));
                x[h] = y;
            }
        }
        let mut out = [0.0f64; LANES];
        // SAFETY: `out` holds eight f64; unaligned stores are allowed.
        unsafe {
            _mm256_storeu_pd(out.as_mut_ptr(), x[0]);
            _mm256_storeu_pd(out.as_mut_ptr().add(4), x[1]);
        }
        for (l, v) in out.into_iter().enumerate() {
            buf[l * CHUNK + k] = v;
        }
    }
    let lanes = |v: [__m256d; 2]| {
        let mut out = [0.0f64; LANES];
        // SAFETY: as above.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook recursion, one frame at a time.
    fn direct(sections: &[Section], x: &[f64]) -> Vec<f64> {
        let mut h = vec![[0.0f64; 4]; sections.len()];
        x.iter()
            .map(|&v| {
                let mut v = v;
                for (c, h) in sections.iter().zip(h.iter_mut()) {
                    let y =
                        c.b[0] * v + c.b[1] * h[0] + c.b[2] * h[1] - c.a[0] * h[2] - c.a[1] * h[3];
                    *h = [v, h[0], y, h[2]];
                    v = y;
                }
                v
            })
            .collect()
    }

    fn signal(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64 * 0.37).sin() + ((i * 7919) % 13) as f64 / 13.0 - 0.5) * 0.7)
            .collect()
    }

    fn run<const S: usize>(sections: [Section; S], x: &[f64], block: usize) -> Vec<f64> {
        let mut c = Cascade::new(sections);
        let mut out = x.to_vec();
        for b in out.chunks_mut(block) {
            c.process(b);
        }
        out
    }

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

    #[test]
    fn equals_the_direct_recursion() {
        // Rounding differs from the recursion's (a 38 Hz high-pass at 48 kHz
        // magnifies it most) but stays far below f32 resolution and does
        // not build up over a long stream.
        let x = signal(400_000);
        let want = direct(&sections(), &x);
        let got = run(sections(), &x, 4096);
        for (n, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-10, "n={n}: {a} vs {b}");
        }
        let one = run([sections()[1]], &x, 4096);
        let want = direct(&sections()[1..], &x);
        assert!(one.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-10));
    }

    fn bits<'a>(v: impl IntoIterator<Item = &'a f64>) -> Vec<u64> {
        v.into_iter().map(|y| y.to_bits()).collect()
    }

    #[test]
    fn every_cpu_path_gives_the_same_bits() {
        // Blocks of 4096 take the chunks-side-by-side kernel, blocks of
        // 1000 only the serial one.
        let x = signal(50_000);
        let portable = Cascade::with_isa(sections(), Isa::PORTABLE);
        for level in cpu::Level::ALL {
            let Some(isa) = Isa::new(level) else {
                eprintln!("skipped {level:?}: this CPU lacks it");
                continue;
            };
            let fast = Cascade::with_isa(sections(), isa);
            assert_eq!(
                bits(fast.g.iter().flatten()),
                bits(portable.g.iter().flatten())
            );
            let phi = |c: &Cascade<2>| bits(c.phi.iter().flatten().flatten().flatten());
            assert_eq!(phi(&fast), phi(&portable), "{level:?}");
            for block in [4096, 1000] {
                let (mut fast, mut portable) = (fast.clone(), portable.clone());
                let (mut a, mut b) = (x.clone(), x.clone());
                for (ca, cb) in a.chunks_mut(block).zip(b.chunks_mut(block)) {
                    fast.process(ca);
                    portable.process(cb);
                }
                assert_eq!(bits(&a), bits(&b), "{level:?}, block {block}");
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_block_size() {
        let x = signal(10_000);
        let reference = run(sections(), &x, 4096);
        for block in [1, 7, 64, 255, 256, 1000, 1024, 5000] {
            assert_eq!(run(sections(), &x, block), reference, "block {block}");
        }
    }
}
