//! A drum machine: kick on every beat, snare on beats 2 and 4 of each bar,
//! optional eighth-note hats. Bars restart at every section, so a section
//! of odd length does not shift the backbeat of the next one.

use std::f64::consts::PI;

use super::Signal;
use crate::seed::{mix64, uniform};

const KICK_LEN: f64 = 0.35;
const SNARE_LEN: f64 = 0.25;
const HAT_LEN: f64 = 0.06;
/// Linear release at the end of each voice, so no hit ends in a step.
const RELEASE: f64 = 0.01;

/// Drum pattern following a tempo and a section layout.
pub struct Drums {
    amp: f64,
    hats: bool,
    /// Frames per second (the tables carry it; the tests' formulas need it).
    #[cfg(test)]
    rate: f64,
    /// Frames per beat (fractional; hit positions are rounded).
    beat: f64,
    section_starts: Vec<u64>,
    snare_key: u64,
    hat_key: u64,
    /// Every hit of a voice is the same waveform (the noise aside), so
    /// each is tabulated once, by frames since the hit.
    kick: Vec<f64>,
    /// Snare: the noise's envelope and the tonal body.
    snare_noise: Vec<f64>,
    snare_body: Vec<f64>,
    hat: Vec<f64>,
    /// Per-frame sums of the beat voices and of the hats for one block.
    beats: Vec<f64>,
    hats_sum: Vec<f64>,
}

impl Drums {
    pub fn new(
        bpm: f64,
        rate: u32,
        section_starts: &[u64],
        amp: f64,
        hats: bool,
        key: u64,
    ) -> Drums {
        let rate = rate as f64;
        Drums {
            amp,
            hats,
            #[cfg(test)]
            rate,
            beat: 60.0 * rate / bpm,
            section_starts: section_starts.to_vec(),
            snare_key: mix64(key ^ 1),
            hat_key: mix64(key ^ 2),
            kick: tabulate(rate, KICK_LEN, |t| 0.6 * kick(t)),
            snare_noise: tabulate(rate, SNARE_LEN, |t| {
                0.25 * (-t / 0.06).exp() * release(t, SNARE_LEN)
            }),
            snare_body: tabulate(rate, SNARE_LEN, |t| {
                0.15 * (2.0 * PI * 185.0 * t).sin() * (-t / 0.09).exp() * release(t, SNARE_LEN)
            }),
            hat: tabulate(rate, HAT_LEN, |t| {
                0.3 * (-t / 0.012).exp() * release(t, HAT_LEN)
            }),
            beats: Vec::new(),
            hats_sum: Vec::new(),
        }
    }

    /// Frame where grid step `k` of `per_beat` steps per beat starts.
    fn start(&self, k: u64, per_beat: f64) -> u64 {
        (k as f64 * self.beat / per_beat).round() as u64
    }

    /// The grid step containing frame `n`.
    fn step_at(&self, n: u64, per_beat: f64) -> u64 {
        let mut k = (n as f64 * per_beat / self.beat).floor() as u64;
        while k > 0 && self.start(k, per_beat) > n {
            k -= 1;
        }
        while self.start(k + 1, per_beat) <= n {
            k += 1;
        }
        k
    }

    /// Position of beat `k` within its bar (0..4), bars counted from the
    /// start of the beat's section.
    fn bar_position(&self, k: u64) -> u64 {
        let section_start = self
            .section_starts
            .iter()
            .rev()
            .find(|&&s| s <= k)
            .copied()
            .unwrap_or(0);
        (k - section_start) % 4
    }
}

fn release(t: f64, len: f64) -> f64 {
    if t >= len {
        0.0
    } else {
        ((len - t) / RELEASE).min(1.0)
    }
}

fn kick(t: f64) -> f64 {
    // Pitch falls from 165 Hz to 45 Hz; phase is the integral of frequency.
    let phase = 2.0 * PI * (45.0 * t + 120.0 * 0.03 * (1.0 - (-t / 0.03).exp()));
    phase.sin() * (-t / 0.08).exp() * release(t, KICK_LEN)
}

/// A voice's waveform at frames 0, 1, … since its hit, for as long as it
/// sounds.
fn tabulate(rate: f64, len: f64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    (0..)
        .map(|d| d as f64 / rate)
        .take_while(|&t| t < len)
        .map(f)
        .collect()
}

impl Drums {
    /// Calls `hit(k, d0, out)` for every hit of grid `per_beat` that sounds
    /// in frames `start..start + len`: `k` the grid step, `d0` the frames
    /// since the hit at the first frame of `out`, `out` the stretch of
    /// frames (as indices from `start`) it covers. Latest hit first, for
    /// every frame whatever the block.
    fn for_each_hit(
        &self,
        start: u64,
        len: usize,
        per_beat: f64,
        longest: usize,
        mut hit: impl FnMut(u64, usize, std::ops::Range<usize>),
    ) {
        let end = start + len as u64;
        let mut k = self.step_at(end - 1, per_beat);
        loop {
            let at = self.start(k, per_beat);
            if at + (longest as u64) <= start {
                break;
            }
            let from = at.max(start);
            let to = (at + longest as u64).min(end);
            if from < to {
                hit(
                    k,
                    (from - at) as usize,
                    (from - start) as usize..(to - start) as usize,
                );
            }
            if k == 0 {
                break;
            }
            k -= 1;
        }
    }
}

impl Signal for Drums {
    fn render(&mut self, start: u64, out: &mut [f32]) {
        if out.is_empty() {
            return;
        }
        let mut beats = std::mem::take(&mut self.beats);
        let mut hats = std::mem::take(&mut self.hats_sum);
        beats.clear();
        beats.resize(out.len(), 0.0);
        hats.clear();
        if self.hats {
            hats.resize(out.len(), 0.0);
        }
        self.for_each_hit(start, out.len(), 1.0, self.kick.len(), |k, d0, frames| {
            let kick = &self.kick[d0..d0 + frames.len()];
            for (b, &v) in beats[frames.clone()].iter_mut().zip(kick) {
                *b += v;
            }
            if self.bar_position(k) % 2 == 1 {
                // Its noise is a function of the absolute frame.
                let n0 = start + frames.start as u64;
                let len = frames.len().min(self.snare_noise.len().saturating_sub(d0));
                for (i, b) in beats[frames.start..frames.start + len]
                    .iter_mut()
                    .enumerate()
                {
                    let d = d0 + i;
                    *b += uniform(self.snare_key, n0 + i as u64) * self.snare_noise[d]
                        + self.snare_body[d];
                }
            }
        });
        if self.hats {
            self.for_each_hit(start, out.len(), 2.0, self.hat.len(), |_, d0, frames| {
                let n0 = start + frames.start as u64;
                for (i, h) in hats[frames].iter_mut().enumerate() {
                    *h += uniform(self.hat_key, n0 + i as u64) * self.hat[d0 + i];
                }
            });
        }
        if self.hats {
            for ((o, b), h) in out.iter_mut().zip(&beats).zip(&hats) {
                *o = (self.amp * (b + h)) as f32;
            }
        } else {
            for (o, b) in out.iter_mut().zip(&beats) {
                *o = (self.amp * b) as f32;
            }
        }
        self.beats = beats;
        self.hats_sum = hats;
    }

    fn cost(&self) -> f32 {
        super::cost::DRUMS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(d: &mut Drums, frames: usize) -> Vec<f32> {
        let mut out = vec![0.0; frames];
        d.render(0, &mut out);
        out
    }

    impl Drums {
        /// Sum of the voices of grid `per_beat` that sound at frame `n`.
        fn voices(
            &self,
            n: u64,
            per_beat: f64,
            longest: f64,
            mut voice: impl FnMut(u64, f64) -> f64,
        ) -> f64 {
            let mut k = self.step_at(n, per_beat);
            let mut sum = 0.0;
            loop {
                let t = (n - self.start(k, per_beat)) as f64 / self.rate;
                if t >= longest {
                    break;
                }
                sum += voice(k, t);
                if k == 0 {
                    break;
                }
                k -= 1;
            }
            sum
        }

        /// Frame `n` straight from the voice formulas: what the tables
        /// must reproduce.
        fn formula(&self, n: u64) -> f64 {
            let mut v = self.voices(n, 1.0, KICK_LEN.max(SNARE_LEN), |k, t| {
                let mut s = 0.6 * kick(t);
                if self.bar_position(k) % 2 == 1 && t < SNARE_LEN {
                    let noise = uniform(self.snare_key, n);
                    s += (0.25 * noise * (-t / 0.06).exp()
                        + 0.15 * (2.0 * PI * 185.0 * t).sin() * (-t / 0.09).exp())
                        * release(t, SNARE_LEN);
                }
                s
            });
            if self.hats {
                v += self.voices(n, 2.0, HAT_LEN, |_, t| {
                    0.3 * uniform(self.hat_key, n) * (-t / 0.012).exp() * release(t, HAT_LEN)
                });
            }
            self.amp * v
        }
    }

    #[test]
    fn tabulated_hits_equal_the_formulas() {
        let mut d = Drums::new(97.0, 44100, &[0, 5], 0.8, true, 9);
        let x = render(&mut d, 200_000);
        for (n, v) in x.iter().enumerate() {
            let want = d.formula(n as u64);
            assert!((*v as f64 - want).abs() < 1e-6, "n={n}: {v} vs {want}");
        }
    }

    fn energy(x: &[f32]) -> f64 {
        x.iter().map(|v| (*v as f64).powi(2)).sum()
    }

    #[test]
    fn kick_on_every_beat_snare_on_two_and_four() {
        // 120 bpm at 8 kHz: a beat is 4000 frames.
        let mut d = Drums::new(120.0, 8000, &[], 1.0, false, 3);
        let x = render(&mut d, 16_000);
        for beat in 0..4 {
            let s = beat * 4000;
            // Each hit starts at its beat: silence just before (past the release).
            assert!(
                energy(&x[s + 3000..s + 4000]) < 1e-9,
                "gap before beat {}",
                beat + 1
            );
            assert!(energy(&x[s..s + 400]) > 1.0, "hit on beat {beat}");
        }
        // Beats 1 and 3 (index 0, 2) are the kick alone, identical; beats
        // 2 and 4 add the snare on top of that same kick.
        assert_eq!(&x[0..2000], &x[8000..10000]);
        let residual: Vec<f32> = (0..2000).map(|i| x[4000 + i] - x[i]).collect();
        assert!(energy(&residual) > 1.0, "snare on beat 2");
        let residual: Vec<f32> = (0..2000).map(|i| x[12000 + i] - x[i]).collect();
        assert!(energy(&residual) > 1.0, "snare on beat 4");
    }

    #[test]
    fn bars_restart_at_each_section() {
        // A 3-beat section, then a new one: the new section's first beat is
        // a downbeat (no snare), though globally it is beat 4.
        let mut a = Drums::new(120.0, 8000, &[0, 3], 1.0, false, 3);
        assert_eq!(a.bar_position(3), 0);
        assert_eq!(a.bar_position(4), 1);
        let x = render(&mut a, 16_000);
        let y = render(&mut Drums::new(120.0, 8000, &[], 1.0, false, 3), 4000);
        assert_eq!(
            &x[12_000..13_000],
            &y[..1000],
            "beat 3 is a plain kick like beat 0"
        );
    }

    #[test]
    fn split_rendering_is_identical() {
        let mut d = Drums::new(97.0, 44100, &[0, 5], 0.8, true, 9);
        let whole = render(&mut d, 100_000);
        let mut parts = vec![0.0; 100_000];
        for (i, chunk) in parts.chunks_mut(777).enumerate() {
            d.render(i as u64 * 777, chunk);
        }
        assert_eq!(whole, parts);
    }
}
