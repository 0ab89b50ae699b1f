//! The master's true-peak limiter. It estimates each frame's true peak with
//! its own short 4× interpolator, because the gain must react frame by
//! frame within a fixed lookahead (the loudness meter keeps only a running
//! maximum), and aims 0.2 dB under the ceiling because the two estimates
//! differ slightly.

use std::collections::VecDeque;

use crate::effects::Processor;
use crate::types::Block;

/// Taps each side of the true-peak interpolator.
const TP_HALF: usize = 8;

/// A true-peak-aware lookahead limiter (ITU-R BS.1770 style 4× oversampled
/// peak estimate). Every output frame is the input `latency()` frames
/// earlier times a gain that is already down when a peak arrives: the gain
/// is the minimum of the needed reductions over the lookahead, averaged
/// over the same length (so it still covers the peak) and released
/// exponentially. Computed per frame, so any block split gives the same
/// output.
pub struct Limiter {
    ceiling: f64,
    lookahead: usize,
    channels: usize,
    release: f64,
    /// Interpolation kernels for the 3 fractional phases (¼, ½, ¾), tap
    /// by tap (`kernels[t][p]`, a fourth zero lane for SIMD).
    kernels: [[f64; 4]; 2 * TP_HALF],
    /// Last `lookahead + 2·TP_HALF` input frames, written twice (at slot
    /// s and s + len) so any window of them is contiguous.
    x: Vec<f64>,
    /// Frames in `x` (each held twice).
    xlen: usize,
    /// The lookahead window of needed gains, as a monotonic queue of
    /// (frame, need) with increasing needs: its front is the window's
    /// minimum, each frame entering and leaving it once.
    r: VecDeque<(usize, f64)>,
    /// Frames in the needed-gain window.
    rlen: usize,
    /// Lookahead minima of the last `lookahead` frames and their sum.
    m: Vec<f64>,
    m_sum: f64,
    /// Frames pushed so far.
    n: usize,
    gain: f64,
}

impl Limiter {
    /// A limiter holding true peaks under `ceiling_db` dBTP.
    pub fn new(ceiling_db: f64, rate: u32, channels: u16) -> Limiter {
        let lookahead = ((rate as f64 * 0.002).round() as usize).max(1);
        let mut kernels = [[0.0; 4]; 2 * TP_HALF];
        for p in 0..3 {
            let frac = (p + 1) as f64 / 4.0;
            for (t, c) in kernels.iter_mut().map(|k| &mut k[p]).enumerate() {
                // Tap t weighs x[j − TP_HALF + 1 + t] for a point at j + frac.
                let d = t as f64 - (TP_HALF as f64 - 1.0) - frac;
                let sinc = if d == 0.0 {
                    1.0
                } else {
                    (std::f64::consts::PI * d).sin() / (std::f64::consts::PI * d)
                };
                let w = 0.5 + 0.5 * (std::f64::consts::PI * d / TP_HALF as f64).cos();
                *c = sinc * w;
            }
        }
        let ch = channels as usize;
        Limiter {
            // Aim 0.2 dB under the ceiling: the meter's own interpolator
            // differs slightly from this one.
            ceiling: 10f64.powf((ceiling_db - 0.2) / 20.0),
            lookahead,
            channels: ch,
            release: 1.0 - (-1.0 / (0.1 * rate as f64)).exp(),
            kernels,
            x: vec![0.0; 2 * (lookahead + 2 * TP_HALF) * ch],
            xlen: lookahead + 2 * TP_HALF,
            r: VecDeque::with_capacity(lookahead + 2),
            rlen: lookahead + 1,
            m: vec![1.0; lookahead],
            m_sum: lookahead as f64,
            n: 0,
            gain: 1.0,
        }
    }

    /// Frames between an input frame and its output.
    pub fn latency(&self) -> usize {
        self.lookahead + TP_HALF
    }

    fn x_at(&self, abs: usize, c: usize) -> f64 {
        self.x[(abs % self.xlen) * self.channels + c]
    }

    /// Writes `frame`, input frame `n`, into the ring (both copies).
    fn store(&mut self, frame: &[f32]) {
        let ch = self.channels;
        let slot = self.n % self.xlen;
        for (c, v) in frame.iter().enumerate() {
            self.x[slot * ch + c] = *v as f64;
            self.x[(slot + self.xlen) * ch + c] = *v as f64;
        }
    }

    /// True peak around frame j = n − TP_HALF, whose neighbours up to
    /// j + TP_HALF are now known (frames before 0 are silence, and so are
    /// the ring's unwritten slots).
    fn true_peak(&self) -> f64 {
        let (ch, xlen) = (self.channels, self.xlen);
        let j = self.n as isize - TP_HALF as isize;
        let mut peak = 0.0f64;
        if j >= 0 {
            let j = j as usize;
            // Frames j − TP_HALF + 1 ..= j + TP_HALF, in order.
            let first = (j + xlen + 1 - TP_HALF) % xlen;
            let window = &self.x[first * ch..(first + 2 * TP_HALF) * ch];
            for c in 0..ch {
                peak = peak.max(self.x_at(j, c).abs());
                // The three phases side by side, each summed tap by tap in
                // order.
                let mut acc = [0.0f64; 4];
                for (w, x) in self.kernels.iter().zip(window[c..].iter().step_by(ch)) {
                    for p in 0..4 {
                        acc[p] += w[p] * x;
                    }
                }
                for a in &acc[..3] {
                    peak = peak.max(a.abs());
                }
            }
        }
        peak
    }

    /// Moves the gain on by frame n, whose true peak is `peak`: the minimum
    /// need over the lookahead, then its running mean, then the release.
    fn update_gain(&mut self, peak: f64) {
        let i = self.n;
        let need = if peak > self.ceiling {
            self.ceiling / peak
        } else {
            1.0
        };
        while self.r.back().is_some_and(|&(_, r)| r >= need) {
            self.r.pop_back();
        }
        self.r.push_back((i, need));
        while self.r.front().is_some_and(|&(f, _)| f + self.rlen <= i) {
            self.r.pop_front();
        }
        let m = self.r.front().map_or(1.0, |&(_, r)| r);
        let mlen = self.m.len();
        let slot = i % mlen;
        self.m_sum += m - self.m[slot];
        self.m[slot] = m;
        let target = self.m_sum / mlen as f64;
        self.gain = target.min(self.gain + (1.0 - self.gain) * self.release);
    }

    /// Writes output frame n − latency (silence before the first) into
    /// `frame`.
    fn output(&self, frame: &mut [f32]) {
        let out = self.n as isize - self.latency() as isize;
        for (c, v) in frame.iter_mut().enumerate() {
            *v = if out >= 0 {
                (self.x_at(out as usize, c) * self.gain) as f32
            } else {
                0.0
            };
        }
    }
}

impl Processor for Limiter {
    fn process(&mut self, block: &mut Block) {
        for frame in block.frames_mut() {
            self.store(frame);
            let peak = self.true_peak();
            self.update_gain(peak);
            self.output(frame);
            self.n += 1;
        }
    }
}
