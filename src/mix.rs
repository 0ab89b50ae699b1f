//! The mixer and master bus (SPEC §1.7, §8): master = Σ gain·pan·stem,
//! then hard clip unless the song turns it off.

use crate::error::StageError;
use crate::plan::{Clip, MasterPlan, StemPlan};
use crate::types::{Block, Frames};

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
    r: std::collections::VecDeque<(usize, f64)>,
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
            r: std::collections::VecDeque::with_capacity(lookahead + 2),
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
}

impl crate::effects::Processor for Limiter {
    fn process(&mut self, block: &mut Block) {
        let ch = self.channels;
        let xlen = self.xlen;
        let mlen = self.m.len();
        for frame in block.frames_mut() {
            let i = self.n;
            let slot = i % xlen;
            for (c, v) in frame.iter().enumerate() {
                self.x[slot * ch + c] = *v as f64;
                self.x[(slot + xlen) * ch + c] = *v as f64;
            }
            // True peak around frame j = i − TP_HALF, whose neighbours up
            // to j + TP_HALF are now known (frames before 0 are silence,
            // and so are the ring's unwritten slots).
            let j = i as isize - TP_HALF as isize;
            let mut peak = 0.0f64;
            if j >= 0 {
                let j = j as usize;
                // Frames j − TP_HALF + 1 ..= j + TP_HALF, in order.
                let first = (j + xlen + 1 - TP_HALF) % xlen;
                let window = &self.x[first * ch..(first + 2 * TP_HALF) * ch];
                for c in 0..ch {
                    peak = peak.max(self.x_at(j, c).abs());
                    // The three phases side by side, each summed tap by
                    // tap in order.
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
            let need = if peak > self.ceiling {
                self.ceiling / peak
            } else {
                1.0
            };
            // Minimum need over the lookahead, then its running mean.
            while self.r.back().is_some_and(|&(_, r)| r >= need) {
                self.r.pop_back();
            }
            self.r.push_back((i, need));
            while self.r.front().is_some_and(|&(f, _)| f + self.rlen <= i) {
                self.r.pop_front();
            }
            let m = self.r.front().map_or(1.0, |&(_, r)| r);
            let slot = i % mlen;
            self.m_sum += m - self.m[slot];
            self.m[slot] = m;
            let target = self.m_sum / mlen as f64;
            self.gain = target.min(self.gain + (1.0 - self.gain) * self.release);
            // Output frame i − latency.
            let out = i as isize - self.latency() as isize;
            for (c, v) in frame.iter_mut().enumerate() {
                *v = if out >= 0 {
                    (self.x_at(out as usize, c) * self.gain) as f32
                } else {
                    0.0
                };
            }
            self.n += 1;
        }
    }
}

/// The master bus after the mix: gain, optional limiter, clip.
pub struct MasterBus {
    gain: crate::effects::Gain,
    limiter: Option<Limiter>,
    clip: Clip,
}

impl MasterBus {
    pub fn new(
        gain: f32,
        limit_db: Option<f64>,
        clip: Clip,
        spec: crate::types::StreamSpec,
    ) -> MasterBus {
        MasterBus {
            gain: crate::effects::Gain(gain),
            limiter: limit_db.map(|db| Limiter::new(db, spec.sample_rate, spec.channels)),
            clip,
        }
    }

    /// The bus `plan` asks for, run over a mix whose integrated loudness
    /// was measured as `measured_lufs`: the gain that brings it to the
    /// plan's loudness (if it names one), then the limiter and the clip.
    pub fn for_plan(
        plan: &MasterPlan,
        measured_lufs: Option<f64>,
        spec: crate::types::StreamSpec,
    ) -> Result<MasterBus, StageError> {
        let gain = match (plan.normalize_lufs, measured_lufs) {
            (None, _) => 1.0,
            (Some(want), Some(got)) => 10f64.powf((want - got) / 20.0),
            (Some(_), None) => {
                return Err(StageError::Invalid(
                    "cannot normalise the loudness of a silent master".into(),
                ));
            }
        };
        Ok(MasterBus::new(
            gain as f32,
            plan.limit_true_peak_db,
            plan.clip,
            spec,
        ))
    }

    /// Frames of delay the bus adds (the limiter's lookahead).
    pub fn latency(&self) -> usize {
        self.limiter.as_ref().map_or(0, Limiter::latency)
    }
}

impl crate::effects::Processor for MasterBus {
    fn process(&mut self, block: &mut Block) {
        self.gain.process(block);
        if let Some(l) = self.limiter.as_mut() {
            l.process(block);
        }
        if self.clip == Clip::Hard {
            block
                .samples_mut()
                .iter_mut()
                .for_each(|v| *v = v.clamp(-1.0, 1.0));
        }
    }
}

/// A [`MasterBus`] over a stream of known length with its latency taken
/// out: output frame i answers input frame i, and exactly `target` frames
/// come out, so the master still starts at sample 0. After the input,
/// silence flushes the limiter's lookahead. Counted per frame, so any block
/// split gives the same output.
pub struct CompensatedBus {
    bus: MasterBus,
    delay: u64,
    target: u64,
    /// Frames fed to the bus so far, flushing silence included.
    read: u64,
    /// Frames delivered so far.
    written: u64,
}

impl CompensatedBus {
    /// `bus` over a stream of `target` frames.
    pub fn new(bus: MasterBus, target: Frames) -> CompensatedBus {
        CompensatedBus {
            delay: bus.latency() as u64,
            bus,
            target: target.0,
            read: 0,
            written: 0,
        }
    }

    /// Whether all `target` frames have come out.
    pub fn done(&self) -> bool {
        self.written >= self.target
    }

    /// Frames of input the next block of `capacity` frames takes; the
    /// rest of that block will be flushing silence.
    pub fn input_frames(&self, capacity: usize) -> usize {
        self.target.saturating_sub(self.read).min(capacity as u64) as usize
    }

    /// Runs the next block. On entry `block` holds
    /// [`input_frames`](Self::input_frames) frames of input; on return, the
    /// frames that came out (none while the bus's latency is skipped).
    pub fn process(&mut self, block: &mut Block) {
        use crate::effects::Processor;
        let ch = block.channels();
        let input = block.frames();
        let frames = (self.target + self.delay - self.read).min(block.capacity() as u64) as usize;
        debug_assert_eq!(input, self.input_frames(block.capacity()));
        block.set_frames(frames);
        block.samples_mut()[input * ch..].fill(0.0);
        self.read += frames as u64;
        self.bus.process(block);
        // Drop the first `delay` frames: the bus's latency.
        let skip = self
            .delay
            .saturating_sub(self.read - frames as u64)
            .min(frames as u64) as usize;
        let keep = (frames - skip).min((self.target - self.written) as usize);
        if skip > 0 && keep > 0 {
            block
                .samples_mut()
                .copy_within(skip * ch..(skip + keep) * ch, 0);
        }
        block.set_frames(keep);
        self.written += keep as u64;
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
            fade_ms: 10.0,
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

    /// Runs a compensated bus over `input` (stereo) in blocks of `size`.
    fn compensated(input: &[f32], size: usize, limit_db: f64) -> Vec<f32> {
        let spec = crate::types::StreamSpec {
            sample_rate: 8000,
            channels: 2,
            format: crate::types::SampleFormat::Float,
        };
        let bus = MasterBus::new(1.0, Some(limit_db), Clip::None, spec);
        let mut bus = CompensatedBus::new(bus, Frames(input.len() as u64 / 2));
        let (mut block, mut fed, mut out) = (Block::new(2, size), 0, Vec::new());
        while !bus.done() {
            let n = bus.input_frames(size);
            block.set_frames(n);
            block
                .samples_mut()
                .copy_from_slice(&input[fed..fed + 2 * n]);
            fed += 2 * n;
            bus.process(&mut block);
            out.extend_from_slice(block.samples());
        }
        out
    }

    #[test]
    fn compensated_bus_keeps_time_and_length() {
        let input: Vec<f32> = (0..2 * 1000)
            .map(|i| ((i as f32) * 0.01).sin() * 0.5)
            .collect();
        // A ceiling far above the signal: the limiter only delays, and the
        // compensation undoes the delay exactly.
        assert_eq!(compensated(&input, 64, 20.0), input);
        // A ceiling that bites: same length, and any block split agrees.
        let limited = compensated(&input, 64, -12.0);
        assert_eq!(limited.len(), input.len());
        assert_eq!(compensated(&input, 7, -12.0), limited);
        assert_eq!(compensated(&input, 1000, -12.0), limited);
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
}
