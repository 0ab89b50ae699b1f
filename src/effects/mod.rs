//! Effects (SPEC §3): biquad filters, gain and echo. Each is a processor
//! that owns its state, so a stream split into any blocks gives the same
//! output as one long block.

use biquad::{Coefficients, ToHertz, Type};

use crate::error::StageError;
use crate::plan::{EffectSpec, FilterKind};
use crate::types::Block;

/// Something that transforms blocks in place, keeping its state between
/// calls.
pub trait Processor: Send {
    fn process(&mut self, block: &mut Block);
}

/// Q of each biquad section of an order-`order` Butterworth filter:
/// 1 / (2 cos θk) for the pole angles θk = (2k−1)π / (2·order).
pub fn butterworth_qs(order: u8) -> Vec<f64> {
    let n = order as f64;
    (1..=order / 2)
        .map(|k| 1.0 / (2.0 * ((2 * k - 1) as f64 * std::f64::consts::PI / (2.0 * n)).cos()))
        .collect()
}

pub mod iir;
pub mod interleaved;

use iir::Section;
use interleaved::InterleavedCascade;

/// A cascade over a block's interleaved samples, whatever its number of
/// sections and channels.
trait Engine: Send {
    fn process(&mut self, samples: &mut [f32]);
}

impl<const S: usize, const C: usize> Engine for InterleavedCascade<S, C> {
    fn process(&mut self, samples: &mut [f32]) {
        InterleavedCascade::process(self, samples)
    }
}

/// The cascade of one to four sections (Butterworth orders 2–8 and the
/// single-section filters) over `C` channels, sized at compile time for
/// speed.
fn engine<const C: usize>(sections: &[Section]) -> Box<dyn Engine> {
    match *sections {
        [a] => Box::new(InterleavedCascade::<1, C>::new([a])),
        [a, b] => Box::new(InterleavedCascade::<2, C>::new([a, b])),
        [a, b, c] => Box::new(InterleavedCascade::<3, C>::new([a, b, c])),
        [a, b, c, d] => Box::new(InterleavedCascade::<4, C>::new([a, b, c, d])),
        _ => unreachable!("filters have one to four sections"),
    }
}

/// A cascade of biquad sections (designed by the `biquad` crate), one
/// state per channel, computed in f64 by [`InterleavedCascade`] on the
/// block's samples in place.
pub struct BiquadCascade {
    engine: Box<dyn Engine>,
}

impl BiquadCascade {
    /// Builds the filter a plan describes.
    pub fn new(kind: FilterKind, rate: u32, channels: u16) -> Result<BiquadCascade, StageError> {
        let fs = (rate as f64).hz();
        let design = |t: Type<f64>, f: f64, q: f64| {
            Coefficients::<f64>::from_params(t, fs, f.hz(), q)
                .map_err(|e| StageError::Invalid(format!("filter at {f} Hz: {e:?}")))
        };
        // RBJ shelves take Q = 1/√2 for the steepest slope without overshoot.
        let shelf_q = std::f64::consts::FRAC_1_SQRT_2;
        let coefs: Vec<Coefficients<f64>> = match kind {
            FilterKind::Lowpass { cutoff, order } => butterworth_qs(order)
                .into_iter()
                .map(|q| design(Type::LowPass, cutoff, q))
                .collect::<Result<_, _>>()?,
            FilterKind::Highpass { cutoff, order } => butterworth_qs(order)
                .into_iter()
                .map(|q| design(Type::HighPass, cutoff, q))
                .collect::<Result<_, _>>()?,
            FilterKind::Bandpass { freq, q } => vec![design(Type::BandPass, freq, q)?],
            FilterKind::Notch { freq, q } => vec![design(Type::Notch, freq, q)?],
            FilterKind::Peak { freq, q, gain_db } => {
                vec![design(Type::PeakingEQ(gain_db), freq, q)?]
            }
            FilterKind::Lowshelf { freq, gain_db } => {
                vec![design(Type::LowShelf(gain_db), freq, shelf_q)?]
            }
            FilterKind::Highshelf { freq, gain_db } => {
                vec![design(Type::HighShelf(gain_db), freq, shelf_q)?]
            }
        };
        let sections: Vec<Section> = coefs
            .iter()
            .map(|c| Section {
                b: [c.b0, c.b1, c.b2],
                a: [c.a1, c.a2],
            })
            .collect();
        let engine = match channels {
            1 => engine::<1>(&sections),
            2 => engine::<2>(&sections),
            _ => {
                return Err(StageError::Invalid(format!(
                    "filters take 1 or 2 channels, not {channels}"
                )));
            }
        };
        Ok(BiquadCascade { engine })
    }
}

impl Processor for BiquadCascade {
    fn process(&mut self, block: &mut Block) {
        self.engine.process(block.samples_mut());
    }
}

/// A fixed linear gain.
pub struct Gain(pub f32);

impl Processor for Gain {
    fn process(&mut self, block: &mut Block) {
        block.samples_mut().iter_mut().for_each(|v| *v *= self.0);
    }
}

/// Feed-forward multi-tap echo: out = x + Σ decayⁱ · x[n − i·delay],
/// i = 1..=taps, over a ring buffer of the last `taps·delay` input frames.
pub struct Echo {
    delay: usize,
    gains: Vec<f32>,
    ring: Vec<f32>,
    /// Ring slot (in frames) of the current input frame.
    write: usize,
    channels: usize,
}

impl Echo {
    pub fn new(delay_ms: f64, decay: f64, taps: u32, rate: u32, channels: u16) -> Echo {
        let delay = ((delay_ms / 1000.0 * rate as f64).round() as usize).max(1);
        let frames = delay * taps as usize;
        Echo {
            delay,
            gains: (1..=taps).map(|i| decay.powi(i as i32) as f32).collect(),
            ring: vec![0.0; frames * channels as usize],
            write: 0,
            channels: channels as usize,
        }
    }
}

impl Processor for Echo {
    fn process(&mut self, block: &mut Block) {
        let ch = self.channels;
        let len = self.ring.len() / ch;
        for frame in block.frames_mut() {
            for (c, v) in frame.iter_mut().enumerate() {
                let x = *v;
                let mut y = x;
                for (i, g) in self.gains.iter().enumerate() {
                    let back = (i + 1) * self.delay;
                    let slot = (self.write + len - back) % len;
                    y += g * self.ring[slot * ch + c];
                }
                self.ring[self.write * ch + c] = x;
                *v = y;
            }
            self.write = (self.write + 1) % len;
        }
    }
}

/// A stem's effects in order.
pub struct EffectChain {
    stages: Vec<Box<dyn Processor>>,
}

impl EffectChain {
    /// Builds the chain a stem plan lists.
    pub fn new(specs: &[EffectSpec], rate: u32, channels: u16) -> Result<EffectChain, StageError> {
        let mut stages: Vec<Box<dyn Processor>> = Vec::new();
        for spec in specs {
            stages.push(match *spec {
                EffectSpec::Filter(kind) => Box::new(BiquadCascade::new(kind, rate, channels)?),
                EffectSpec::Gain { db } => Box::new(Gain(10f64.powf(db / 20.0) as f32)),
                EffectSpec::Echo {
                    delay_ms,
                    decay,
                    taps,
                } => Box::new(Echo::new(delay_ms, decay, taps, rate, channels)),
            });
        }
        Ok(EffectChain { stages })
    }

    /// Estimated CPU time per frame, in the units of the sources' costs
    /// (a stem's metering and writing per frame): about 0.1 an effect
    /// (a 4th-order low-pass measured 0.15, a gain less).
    pub fn cost(&self) -> f32 {
        0.1 * self.stages.len() as f32
    }
}

impl Processor for EffectChain {
    fn process(&mut self, block: &mut Block) {
        for stage in &mut self.stages {
            stage.process(block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::approx_constant)] // tabulated to four places on purpose
    fn butterworth_section_qs_match_the_textbook_values() {
        // Values from the pole angles of the analog Butterworth prototype,
        // as tabulated in e.g. Williams & Taylor, Electronic Filter Design
        // Handbook, table 11-x (Q of each 2nd-order section).
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        assert!(close(&butterworth_qs(2), &[0.7071]));
        assert!(close(&butterworth_qs(4), &[0.5412, 1.3066]));
        assert!(close(&butterworth_qs(6), &[0.5176, 0.7071, 1.9319]));
        assert!(close(&butterworth_qs(8), &[0.5098, 0.6013, 0.9000, 2.5629]));
    }

    fn impulse_response(p: &mut dyn Processor, n: usize, block: usize) -> Vec<f32> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < n {
            let len = block.min(n - pos);
            let mut b = Block::new(1, len);
            if pos == 0 {
                b.samples_mut()[0] = 1.0;
            }
            p.process(&mut b);
            out.extend_from_slice(b.samples());
            pos += len;
        }
        out
    }

    /// |H(f)| from an impulse response by direct evaluation of its DTFT.
    fn magnitude(h: &[f32], f: f64, rate: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * f / rate;
        let (mut re, mut im) = (0.0, 0.0);
        for (n, v) in h.iter().enumerate() {
            re += *v as f64 * (w * n as f64).cos();
            im -= *v as f64 * (w * n as f64).sin();
        }
        (re * re + im * im).sqrt()
    }

    #[test]
    fn butterworth_magnitude_matches_the_bilinear_formula() {
        // A Butterworth filter designed by the bilinear transform with the
        // cutoff pre-warped has |H|² = 1 / (1 + (tan(πf/fs) / tan(πfc/fs))^(2N))
        // for the low-pass and the same with the ratio inverted for the
        // high-pass (Oppenheim & Schafer, Discrete-Time Signal Processing,
        // §7.1.3). That formula is the independent truth here.
        let rate = 48000.0;
        let fc = 8000.0;
        let warp = |f: f64| (std::f64::consts::PI * f / rate).tan();
        for order in [2u8, 4, 6, 8] {
            for high in [false, true] {
                let kind = if high {
                    FilterKind::Highpass { cutoff: fc, order }
                } else {
                    FilterKind::Lowpass { cutoff: fc, order }
                };
                let mut f = BiquadCascade::new(kind, 48000, 1).unwrap();
                let h = impulse_response(&mut f, 4096, 333);
                for freq in [100.0, 2000.0, 6000.0, 8000.0, 10000.0, 16000.0] {
                    let ratio = warp(freq) / warp(fc);
                    let ratio = if high { 1.0 / ratio } else { ratio };
                    let want = 1.0 / (1.0 + ratio.powi(2 * order as i32)).sqrt();
                    let got = magnitude(&h, freq, rate);
                    assert!(
                        (got - want).abs() < 1e-4,
                        "order {order} high={high} at {freq} Hz: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn lowpass_order4_impulse_response_starts_as_computed_by_hand() {
        // Direct-form recursion of the two RBJ sections with Q = 0.5412 and
        // 1.3066 at fc = fs/4 (where cos ω = 0, so b = (1−0)/2/a0 …): the
        // first sample is b0₁·b0₂, with b0 = (1 − cos ω)/2 / (1 + α).
        let qs = butterworth_qs(4);
        let b0 = |q: f64| {
            let alpha = (std::f64::consts::FRAC_PI_2).sin() / (2.0 * q);
            0.5 / (1.0 + alpha)
        };
        let mut f = BiquadCascade::new(
            FilterKind::Lowpass {
                cutoff: 12000.0,
                order: 4,
            },
            48000,
            1,
        )
        .unwrap();
        let h = impulse_response(&mut f, 8, 8);
        let want = b0(qs[0]) * b0(qs[1]);
        assert!((h[0] as f64 - want).abs() < 1e-7, "{} vs {want}", h[0]);
    }

    #[test]
    fn echo_adds_decaying_copies() {
        let mut e = Echo::new(1.0, 0.5, 3, 1000, 1);
        let h = impulse_response(&mut e, 6, 1);
        assert_eq!(h, vec![1.0, 0.5, 0.25, 0.125, 0.0, 0.0]);
        let mut e = Echo::new(2.0, -0.5, 2, 1000, 2);
        let mut b = Block::new(2, 6);
        b.samples_mut()[1] = 1.0; // impulse on the right channel only
        e.process(&mut b);
        assert_eq!(
            b.samples(),
            &[0.0, 1.0, 0.0, 0.0, 0.0, -0.5, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0][..]
        );
    }

    #[test]
    fn filter_state_carries_across_blocks() {
        let kind = FilterKind::Peak {
            freq: 1000.0,
            q: 2.0,
            gain_db: 6.0,
        };
        let mut a = BiquadCascade::new(kind, 48000, 1).unwrap();
        let mut b = BiquadCascade::new(kind, 48000, 1).unwrap();
        assert_eq!(
            impulse_response(&mut a, 1000, 1000),
            impulse_response(&mut b, 1000, 7)
        );
    }
}
