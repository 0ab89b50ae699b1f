//! Periodic tones. Sine is computed directly; square, saw and triangle come
//! from a one-cycle table summed from their harmonics below Nyquist, so they
//! are band-limited and cost the same as a sine.

use std::f64::consts::PI;

use super::Signal;
use crate::plan::Wave;

/// Table length: enough resolution for linear interpolation to stay far
/// below the harmonics' own level.
const TABLE: usize = 8192;

/// A tone of fixed frequency starting at phase 0.
pub struct Tone {
    amp: f64,
    /// Cycles per frame.
    step: f64,
    table: Option<Vec<f32>>,
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
        Tone {
            amp,
            step: freq / rate as f64,
            table,
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

impl Signal for Tone {
    fn render(&mut self, start: u64, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            // Phase from the absolute frame index: exact for any block
            // split, and reduced to [0, 1) before sin for accuracy.
            let cycles = (start + i as u64) as f64 * self.step;
            let phase = cycles - cycles.floor();
            *o = match &self.table {
                None => (self.amp * (2.0 * PI * phase).sin()) as f32,
                Some(t) => {
                    let x = phase * TABLE as f64;
                    let j = x as usize;
                    let frac = (x - j as f64) as f32;
                    (self.amp as f32) * (t[j] + (t[j + 1] - t[j]) * frac)
                }
            };
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
        // Far into a long track the phase is still right.
        let n = 48000u64 * 3600 * 5 + 17;
        let mut one = [0.0f32];
        t.render(n, &mut one);
        let want = 0.8 * (2.0 * PI * 440.0 * n as f64 / 48000.0).sin();
        assert!((one[0] as f64 - want).abs() < 1e-4);
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
