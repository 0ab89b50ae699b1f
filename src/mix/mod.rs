//! The mix (SPEC §1.7, §8, §10): master = Σ gain·pan·stem, then the master
//! bus.
//!
//! A song without loudness options mixes in one pass: the [`Mixer`] sums the
//! stems and hard-clips the sum itself (unless the song turns clipping off).
//! Normalising or limiting needs the whole mix's loudness first, so such a
//! song's mixer writes the sum unclipped and a second pass runs it through
//! the [`MasterBus`] ([`bus`]): the normalisation gain, the true-peak
//! [`limiter::Limiter`], then the clip.

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
pub struct Fader(StemGain);

impl Fader {
    /// The fader of `stem` in a song of `channels` channels.
    pub fn new(stem: &StemPlan, channels: u16) -> Fader {
        Fader(StemGain::new(stem, channels))
    }
}

impl Processor for Fader {
    fn process(&mut self, block: &mut Block) {
        let ch = block.channels();
        let g = &self.0.0;
        if let (2, &[g0, g1]) = (ch, &g[..]) {
            // Stereo spelled out, as in [`Mixer::add`].
            for frame in block.samples_mut().chunks_exact_mut(2) {
                frame[0] = (g0 * frame[0] as f64) as f32;
                frame[1] = (g1 * frame[1] as f64) as f32;
            }
            return;
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
}

impl Mixer {
    pub fn new(gains: Vec<StemGain>, clip: Clip, block_size: usize, channels: u16) -> Mixer {
        Mixer {
            gains,
            clip,
            acc: vec![0.0; block_size * channels as usize],
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
        if ch == 1 {
            let g = g[0];
            for (a, v) in acc.iter_mut().zip(block.samples()) {
                *a += g * *v as f64;
            }
        } else if let (2, &[g0, g1]) = (ch, &g[..]) {
            // Stereo spelled out: the generic loop below does not
            // vectorise, and this is every stem's every sample.
            for (a, v) in acc.chunks_exact_mut(2).zip(block.samples().chunks_exact(2)) {
                a[0] += g0 * v[0] as f64;
                a[1] += g1 * v[1] as f64;
            }
        } else {
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
