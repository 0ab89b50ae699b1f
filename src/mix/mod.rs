//! The mix (SPEC §1.7, §8, §10): master = Σ gain·pan·stem, then the master
//! bus.
//!
//! A song without loudness options mixes in one pass: the [`Mixer`] sums the
//! stems and hard-clips the sum itself (unless the song turns clipping off).
//! Normalising or limiting needs the whole mix's loudness first, so such a
//! song's mixer writes the sum unclipped and a second pass runs it through
//! the [`MasterBus`] ([`bus`]): the normalisation gain, the true-peak
//! [`limiter::Limiter`], then the clip.

use crate::cpu::{self, Isa};
use crate::effects::Processor;
use crate::plan::{Clip, StemPlan};
use crate::types::Block;

pub mod bus;
pub mod limiter;

pub use bus::{CompensatedBus, MasterBus};

/// Per-channel gain of one stem in the mix.
#[derive(Clone, Debug)]
pub struct StemGain(Vec<f64>);

impl StemGain {
    /// Linear gain, with the constant-power pan law in stereo:
    /// left = cos((pan+1)·π/4), right = sin((pan+1)·π/4).
    pub fn new(stem: &StemPlan, channels: u16) -> StemGain {
        if channels == 2 {
            let theta = (stem.pan + 1.0) * std::f64::consts::FRAC_PI_4;
            StemGain(vec![stem.gain * theta.cos(), stem.gain * theta.sin()])
        } else {
            StemGain(vec![stem.gain; channels as usize])
        }
    }

    /// Gain 1 on every channel: how the mixer adds a stem that already
    /// went through its [`Fader`].
    pub fn unity(channels: u16) -> StemGain {
        StemGain(vec![1.0; channels as usize])
    }
}

/// A stem's gain and pan applied to the stem itself, for post-fader stem
/// files (SPEC §10). Each sample becomes exactly what the mixer would have
/// added for it (the f64 product rounded once to f32), so a mixer adding
/// faded stems at unity gain sums the very samples the stem files hold.
pub struct Fader(StemGain, Isa);

impl Fader {
    /// The fader of `stem` in a song of `channels` channels.
    pub fn new(stem: &StemPlan, channels: u16) -> Fader {
        Fader(StemGain::new(stem, channels), crate::cpu::isa())
    }
}

impl Processor for Fader {
    fn process(&mut self, block: &mut Block) {
        let ch = block.channels();
        let g = &self.0.0;
        match (ch, &g[..]) {
            (1, &[g]) => return scale(self.1, block.samples_mut(), [g; 4]),
            (2, &[g0, g1]) => return scale(self.1, block.samples_mut(), [g0, g1, g0, g1]),
            _ => {}
        }
        for frame in block.samples_mut().chunks_exact_mut(ch) {
            for (v, g) in frame.iter_mut().zip(g) {
                *v = (g * *v as f64) as f32;
            }
        }
    }
}

/// Sums stems into a master block.
pub struct Mixer {
    gains: Vec<StemGain>,
    clip: Clip,
    /// f64 accumulator, reused for every block.
    acc: Vec<f64>,
    isa: Isa,
}

impl Mixer {
    pub fn new(gains: Vec<StemGain>, clip: Clip, block_size: usize, channels: u16) -> Mixer {
        Mixer {
            gains,
            clip,
            acc: vec![0.0; block_size * channels as usize],
            isa: crate::cpu::isa(),
        }
    }

    /// Starts a new master block of `frames` frames.
    pub fn begin(&mut self, frames: usize, channels: usize) {
        self.acc[..frames * channels].fill(0.0);
    }

    /// Adds stem number `index`'s block.
    pub fn add(&mut self, index: usize, block: &Block) {
        let ch = block.channels();
        let g = &self.gains[index].0;
        let acc = &mut self.acc[..block.samples().len()];
        match (ch, &g[..]) {
            (1, &[g]) => add_scaled(self.isa, acc, block.samples(), [g; 4]),
            (2, &[g0, g1]) => add_scaled(self.isa, acc, block.samples(), [g0, g1, g0, g1]),
            _ => {
                for (a, v) in acc
                    .chunks_exact_mut(ch)
                    .zip(block.samples().chunks_exact(ch))
                {
                    for ((a, v), g) in a.iter_mut().zip(v).zip(g) {
                        *a += g * *v as f64;
                    }
                }
            }
        }
    }

    /// Writes the bus output (clipped if configured) into `master`.
    pub fn finish(&mut self, master: &mut Block) {
        let n = master.samples().len();
        for (o, a) in master.samples_mut().iter_mut().zip(&self.acc[..n]) {
            *o = match self.clip {
                Clip::Hard => a.clamp(-1.0, 1.0) as f32,
                Clip::None => *a as f32,
            };
        }
    }
}

/// `acc[i] += gains[i % 4] · samples[i]` in f64: a mono gain repeated, or
/// a stereo pair twice, so four neighbouring samples are one vector
/// operation. Multiply then add, never fused: every path rounds alike.
fn add_scaled(isa: Isa, acc: &mut [f64], samples: &[f32], gains: [f64; 4]) {
    cpu::dispatch!(
        isa,
        avx: add_scaled_avx(acc, samples, gains),
        portable: add_scaled_portable(acc, samples, gains),
    )
}

/// [`add_scaled_portable`] four samples at a time in AVX registers: the
/// same exact widening, multiply and add per sample.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn add_scaled_avx(acc: &mut [f64], samples: &[f32], gains: [f64; 4]) {
    use std::arch::x86_64::*;
    let n = acc.len().min(samples.len());
    let n4 = n / 4;
    // SAFETY: every access is below `4 * n4 <= n`, within both slices;
    // unaligned loads and stores are allowed.
    unsafe {
        let g = _mm256_loadu_pd(gains.as_ptr());
        let (a, v) = (acc.as_mut_ptr(), samples.as_ptr());
        for j in 0..n4 {
            let x = _mm256_cvtps_pd(_mm_loadu_ps(v.add(4 * j)));
            let sum = _mm256_add_pd(_mm256_loadu_pd(a.add(4 * j)), _mm256_mul_pd(g, x));
            _mm256_storeu_pd(a.add(4 * j), sum);
        }
    }
    add_scaled_portable(&mut acc[4 * n4..n], &samples[4 * n4..n], gains);
}

#[inline(always)]
fn add_scaled_portable(acc: &mut [f64], samples: &[f32], gains: [f64; 4]) {
    for (i, (a, v)) in acc.iter_mut().zip(samples).enumerate() {
        *a += gains[i % 4] * f64::from(*v);
    }
}

/// `samples[i] = gains[i % 4] · samples[i]`, the product in f64 rounded
/// once to f32: what [`Mixer::add`] adds for each sample.
fn scale(isa: Isa, samples: &mut [f32], gains: [f64; 4]) {
    cpu::dispatch!(
        isa,
        avx: scale_avx(samples, gains),
        portable: scale_portable(samples, gains),
    )
}

/// [`scale_portable`] four samples at a time: the same exact widening,
/// product and rounding (to nearest, as `as f32`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn scale_avx(samples: &mut [f32], gains: [f64; 4]) {
    use std::arch::x86_64::*;
    let n4 = samples.len() / 4;
    // SAFETY: every access is below `4 * n4`, within the slice; unaligned
    // loads and stores are allowed.
    unsafe {
        let g = _mm256_loadu_pd(gains.as_ptr());
        let v = samples.as_mut_ptr();
        for j in 0..n4 {
            let x = _mm256_cvtps_pd(_mm_loadu_ps(v.add(4 * j)));
            _mm_storeu_ps(v.add(4 * j), _mm256_cvtpd_ps(_mm256_mul_pd(g, x)));
        }
    }
    scale_portable(&mut samples[4 * n4..], gains);
}

#[inline(always)]
fn scale_portable(samples: &mut [f32], gains: [f64; 4]) {
    for (i, v) in samples.iter_mut().enumerate() {
        *v = (gains[i % 4] * f64::from(*v)) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AlignMode, SourceSpec};

    fn stem(gain: f64, pan: f64) -> StemPlan {
        StemPlan {
            name: "x".into(),
            source: SourceSpec::Silence { length: None },
            align: AlignMode::Auto,
            rhythmic: false,
            gain,
            pan,
            effects: vec![],
            crossfade_ms: 50.0,
            loop_bars: None,
            placement: None,
            fade_ms: 10.0,
            source_bpm: None,
            transpose: 0.0,
        }
    }

    #[test]
    fn pan_law_is_constant_power() {
        for pan in [-1.0, -0.3, 0.0, 0.5, 1.0] {
            let g = StemGain::new(&stem(1.0, pan), 2).0;
            assert!((g[0] * g[0] + g[1] * g[1] - 1.0).abs() < 1e-12);
        }
        let hard_left = StemGain::new(&stem(0.5, -1.0), 2).0;
        assert!((hard_left[0] - 0.5).abs() < 1e-12 && hard_left[1].abs() < 1e-12);
    }

    #[test]
    fn sums_with_gains_and_clips() {
        let mut m = Mixer::new(
            vec![
                StemGain::new(&stem(0.5, 0.0), 1),
                StemGain::new(&stem(2.0, 0.0), 1),
            ],
            Clip::Hard,
            4,
            1,
        );
        let mut a = Block::new(1, 3);
        a.samples_mut().copy_from_slice(&[1.0, -1.0, 0.2]);
        let mut b = Block::new(1, 3);
        b.samples_mut().copy_from_slice(&[0.1, -0.5, 0.3]);
        m.begin(3, 1);
        m.add(0, &a);
        m.add(1, &b);
        let mut out = Block::new(1, 3);
        m.finish(&mut out);
        let want = |a: f32, b: f32| (0.5 * a as f64 + 2.0 * b as f64).clamp(-1.0, 1.0) as f32;
        assert_eq!(out.samples(), &[want(1.0, 0.1), -1.0, want(0.2, 0.3)][..]);
    }

    #[test]
    fn stereo_sums_are_the_formula_on_every_cpu_path() {
        // 7 frames: two vectors of two frames and a remainder.
        let samples: Vec<f32> = (0..14).map(|i| (i as f32 * 0.37).sin()).collect();
        let (g0, g1) = (0.3, 0.7);
        let mut want: Vec<f64> = (0..14).map(|i| i as f64 * 0.01).collect();
        for (i, (a, v)) in want.iter_mut().zip(&samples).enumerate() {
            *a += [g0, g1][i % 2] * *v as f64;
        }
        for level in cpu::Level::ALL {
            let Some(isa) = Isa::new(level) else {
                continue;
            };
            let mut acc: Vec<f64> = (0..14).map(|i| i as f64 * 0.01).collect();
            add_scaled(isa, &mut acc, &samples, [g0, g1, g0, g1]);
            assert_eq!(acc, want, "{level:?}");
            let mut faded = samples.clone();
            scale(isa, &mut faded, [g0, g1, g0, g1]);
            let want: Vec<f32> = (0..14)
                .map(|i| ([g0, g1][i % 2] * samples[i] as f64) as f32)
                .collect();
            assert_eq!(faded, want, "{level:?}");
        }
        // And through the mixer and the fader: a faded stem adds at unity
        // exactly what the gains would have added.
        let mut b = Block::new(2, 7);
        b.samples_mut().copy_from_slice(&samples);
        let mut m = Mixer::new(vec![StemGain::new(&stem(0.5, 0.3), 2)], Clip::None, 7, 2);
        m.begin(7, 2);
        m.add(0, &b);
        let mut out = Block::new(2, 7);
        m.finish(&mut out);
        Fader::new(&stem(0.5, 0.3), 2).process(&mut b);
        assert_eq!(out.samples(), b.samples());
    }

    #[test]
    fn fader_applies_gain_and_the_pan_law_per_channel() {
        let mut b = Block::new(2, 2);
        b.samples_mut().copy_from_slice(&[1.0, 1.0, -0.5, 0.25]);
        Fader::new(&stem(0.5, 0.5), 2).process(&mut b);
        let theta = 1.5 * std::f64::consts::FRAC_PI_4;
        let (l, r) = (0.5 * theta.cos(), 0.5 * theta.sin());
        let want = [l as f32, r as f32, (-0.5 * l) as f32, (0.25 * r) as f32];
        assert_eq!(b.samples(), &want[..]);
    }
}
