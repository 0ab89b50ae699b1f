//! Periodic tones. Sine is computed directly; square, saw and triangle come
//! from a one-cycle table summed from their harmonics below Nyquist, so they
//! are band-limited and cost the same as a sine.

use std::f64::consts::PI;

use super::Signal;
use crate::plan::Wave;

/// Table length: enough resolution for linear interpolation to stay far
/// below the harmonics' own level.
const TABLE: usize = 8192;

/// Frames between the points where a sine's phase is computed afresh.
const ANCHOR: u64 = 1024;

/// A tone of fixed frequency starting at phase 0.
pub struct Tone {
    amp: f64,
    /// Cycles per frame.
    step: f64,
    table: Option<Vec<f32>>,
    /// For sines: amp·sin and amp·cos of the phase advance over k frames,
    /// k < ANCHOR. Frame a·ANCHOR + k is then amp·sin(θa + φk), one
    /// angle-sum away from the phase θa of its anchor — as exact as the
    /// formula (no error builds up) but with two sines per 1024 frames.
    rotation: Vec<(f64, f64)>,
}

impl Tone {
    pub fn new(wave: Wave, freq: f64, amp: f64, rate: u32) -> Tone {
        let harmonics = ((rate as f64 / 2.0) / freq).ceil() as usize - 1;
        let harmonics = harmonics.clamp(1, TABLE / 2 - 1);
        let table = match wave {
            Wave::Sine => None,
            Wave::Square => Some(table(harmonics, |k| {
                if k % 2 == 1 {
                    4.0 / (PI * k as f64)
                } else {
                    0.0
                }
            })),
            Wave::Saw => Some(table(harmonics, |k| {
                let sign = if k % 2 == 1 { 1.0 } else { -1.0 };
                sign * 2.0 / (PI * k as f64)
            })),
            Wave::Triangle => Some(table(harmonics, |k| {
                if k % 2 == 1 {
                    let sign = if (k / 2) % 2 == 0 { 1.0 } else { -1.0 };
                    sign * 8.0 / (PI * PI * (k * k) as f64)
                } else {
                    0.0
                }
            })),
        };
        let step = freq / rate as f64;
        let rotation = match table {
            Some(_) => Vec::new(),
            None => (0..ANCHOR)
                .map(|k| {
                    let phi = 2.0 * PI * cycles_to_phase(k as f64 * step);
                    (amp * phi.sin(), amp * phi.cos())
                })
                .collect(),
        };
        Tone {
            amp,
            step,
            table,
            rotation,
        }
    }
}

/// One cycle of Σ coef(k)·sin(2πk·i/TABLE) for k = 1..=harmonics.
fn table(harmonics: usize, coef: impl Fn(usize) -> f64) -> Vec<f32> {
    let mut t = vec![0.0f64; TABLE + 1];
    for k in 1..=harmonics {
        let c = coef(k);
        if c == 0.0 {
            continue;
        }
        for (i, v) in t.iter_mut().enumerate() {
            *v += c * (2.0 * PI * k as f64 * i as f64 / TABLE as f64).sin();
        }
    }
    t.into_iter().map(|v| v as f32).collect()
}

/// The fractional part of a cycle count: the phase in [0, 1).
fn cycles_to_phase(cycles: f64) -> f64 {
    cycles - cycles.floor()
}

impl Signal for Tone {
    fn render(&mut self, start: u64, out: &mut [f32]) {
        if self.table.is_none() {
            self.render_sine(start, out);
            return;
        }
        for (i, o) in out.iter_mut().enumerate() {
            // Phase from the absolute frame index: exact for any block
            // split, and reduced to [0, 1) before sin for accuracy.
            let phase = cycles_to_phase((start + i as u64) as f64 * self.step);
            if let Some(t) = &self.table {
                let x = phase * TABLE as f64;
                let j = x as usize;
                let frac = (x - j as f64) as f32;
                *o = (self.amp as f32) * (t[j] + (t[j + 1] - t[j]) * frac);
            }
        }
    }

    fn cost(&self) -> f32 {
        super::cost::TONE
    }
}

impl Tone {
    /// Sine frames `start..`, anchor by anchor.
    fn render_sine(&self, start: u64, out: &mut [f32]) {
        let mut i = 0;
        while i < out.len() {
            let n = start + i as u64;
            let anchor = n - n % ANCHOR;
            let k = (n - anchor) as usize;
            let len = (ANCHOR as usize - k).min(out.len() - i);
            // Phase from the absolute frame index: exact for any block
            // split, and reduced to [0, 1) before sin for accuracy.
            let theta = 2.0 * PI * cycles_to_phase(anchor as f64 * self.step);
            let (s, c) = theta.sin_cos();
            for (o, &(rs, rc)) in out[i..i + len].iter_mut().zip(&self.rotation[k..k + len]) {
                *o = (s * rc + c * rs) as f32;
            }
            i += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_equals_the_formula() {
        let mut t = Tone::new(Wave::Sine, 440.0, 0.8, 48000);
        let mut out = vec![0.0; 48000];
        t.render(0, &mut out);
        for (n, v) in out.iter().enumerate() {
            let want = 0.8 * (2.0 * PI * 440.0 * n as f64 / 48000.0).sin();
            assert!((*v as f64 - want).abs() < 1e-6, "n={n}: {v} vs {want}");
        }
        // Far into a long track the phase is still right, across anchors
        // and whatever the split into calls.
        let far = 48000u64 * 3600 * 5 + 17;
        for (start, len) in [(far, 3000), (far + 1000, 1), (far + 1023, 2), (997, 2049)] {
            let mut out = vec![0.0f32; len];
            t.render(start, &mut out);
            for (i, v) in out.iter().enumerate() {
                let n = start + i as u64;
                let want = 0.8 * (2.0 * PI * 440.0 * n as f64 / 48000.0).sin();
                assert!((*v as f64 - want).abs() < 1e-6, "n={n}: {v} vs {want}");
            }
        }
    }

    #[test]
    fn square_is_band_limited_and_near_unit_amplitude() {
        // 1 kHz square at 48 kHz: harmonics up to 23 kHz only.
        let mut t = Tone::new(Wave::Square, 1000.0, 1.0, 48000);
        let mut out = vec![0.0; 48];
        t.render(0, &mut out);
        // Quarter period is the plateau: about 1 (Gibbs ripple aside).
        assert!((out[12] - 1.0).abs() < 0.15, "{}", out[12]);
        assert!((out[36] + 1.0).abs() < 0.15, "{}", out[36]);
        // Energy of a unit square is 1; the band-limited one is slightly less.
        let ms: f32 = out.iter().map(|v| v * v).sum::<f32>() / 48.0;
        assert!((0.9..1.0).contains(&ms), "{ms}");
    }

    #[test]
    fn triangle_matches_its_closed_form_closely() {
        let mut t = Tone::new(Wave::Triangle, 100.0, 1.0, 48000);
        let mut out = vec![0.0; 480];
        t.render(0, &mut out);
        // Ideal triangle with sine phase: rises to 1 at a quarter period.
        for (n, v) in out.iter().enumerate() {
            let p = n as f64 / 480.0;
            let ideal = if p < 0.25 {
                4.0 * p
            } else if p < 0.75 {
                2.0 - 4.0 * p
            } else {
                4.0 * p - 4.0
            };
            assert!((*v as f64 - ideal).abs() < 0.01, "n={n}");
        }
    }
}
