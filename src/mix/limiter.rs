//! The master's true-peak limiter. It measures each stretch between two
//! samples with the loudness meter's own true-peak interpolator (so the
//! figure it limits is the figure the report gives, accurate to 0.15 dB of
//! an oversampled reference up to 0.45·fs), and aims 0.3 dB under the
//! ceiling: the detector may read up to 0.15 dB low, and a gain that moves
//! within the lookahead reshapes the peaks between samples a little (full-
//! band noise came within 0.02 dB of the ceiling with a 0.2 dB margin).

use std::collections::VecDeque;

use crate::effects::Processor;
use crate::types::Block;
use crate::verify::TruePeakInterpolator;

/// How far under the ceiling the limiter aims, dB.
const MARGIN_DB: f64 = 0.3;

/// A true-peak-aware lookahead limiter. Every output frame is the input
/// `latency()` frames earlier times a gain that is already down when a
/// peak arrives: the gain is the minimum of the needed reductions over the
/// lookahead, averaged over the same length (so it still covers the peak)
/// and released exponentially. The peaks are computed per frame and the
/// gain frame by frame, so any block split gives the same output.
pub struct Limiter {
    ceiling: f64,
    lookahead: usize,
    channels: usize,
    release: f64,
    interpolator: TruePeakInterpolator,
    /// Per channel: the last `HISTORY` inputs, then the block's.
    lines: Vec<Vec<f32>>,
    /// Per frame of the block: the true peak over the channels of the
    /// stretch `DELAY` frames before it, and one channel's.
    peaks: Vec<f32>,
    channel_peaks: Vec<f32>,
    /// The last `latency() + 1` input frames, a ring.
    x: Vec<f64>,
    /// Frames in `x`.
    xlen: usize,
    /// The lookahead window of needed gains, as a monotonic queue of
    /// (frame, need) with increasing needs: its front is the window's
    /// minimum, each frame entering and leaving it once.
    r: VecDeque<(usize, f64)>,
    /// Frames in the needed-gain window.
    rlen: usize,
    /// Lookahead minima of the last `lookahead` frames (their sum is in
    /// `run`).
    m: Vec<f64>,
    run: Running,
}

/// The scalars the limiter carries from frame to frame. A block's loop
/// works on a local copy, so they stay in registers: kept in the struct,
/// every frame stored and reloaded them through memory (the compiler
/// cannot tell the ring writes from them), which set the loop's pace.
#[derive(Clone, Copy)]
struct Running {
    /// Frames pushed so far.
    n: usize,
    /// Where frame n goes in `x` (n mod `xlen`, kept by stepping: a
    /// division per frame was the limiter's largest cost).
    x_slot: usize,
    /// Frame n's slot in `m` (n mod `lookahead`, stepped).
    m_slot: usize,
    /// Σ `m`.
    m_sum: f64,
    gain: f64,
}

impl Limiter {
    /// A limiter holding true peaks under `ceiling_db` dBTP.
    pub fn new(ceiling_db: f64, rate: u32, channels: u16) -> Limiter {
        let lookahead = ((rate as f64 * 0.002).round() as usize).max(1);
        let ch = channels as usize;
        let xlen = lookahead + TruePeakInterpolator::DELAY + 1;
        Limiter {
            ceiling: 10f64.powf((ceiling_db - MARGIN_DB) / 20.0),
            lookahead,
            channels: ch,
            release: 1.0 - (-1.0 / (0.1 * rate as f64)).exp(),
            interpolator: TruePeakInterpolator::new(),
            lines: vec![vec![0.0; TruePeakInterpolator::HISTORY]; ch],
            peaks: Vec::new(),
            channel_peaks: Vec::new(),
            x: vec![0.0; xlen * ch],
            xlen,
            r: VecDeque::with_capacity(lookahead + 2),
            rlen: lookahead + 1,
            m: vec![1.0; lookahead],
            run: Running {
                n: 0,
                x_slot: 0,
                m_slot: 0,
                m_sum: lookahead as f64,
                gain: 1.0,
            },
        }
    }

    /// Frames between an input frame and its output.
    pub fn latency(&self) -> usize {
        self.lookahead + TruePeakInterpolator::DELAY
    }

    /// Writes `frame`, input frame `run.n`, into the ring.
    fn store(&mut self, run: &Running, frame: &[f32]) {
        let at = run.x_slot * self.channels;
        for (x, v) in self.x[at..at + frame.len()].iter_mut().zip(frame) {
            *x = *v as f64;
        }
    }

    /// Fills `peaks` with the block's per-frame true peaks over the
    /// channels: for input frame n, the stretch after frame n − DELAY
    /// (frames before 0 are silence).
    fn block_peaks(&mut self, block: &Block) {
        let frames = block.frames();
        self.peaks.clear();
        self.peaks.resize(frames, 0.0);
        self.channel_peaks.resize(frames, 0.0);
        let history = TruePeakInterpolator::HISTORY;
        for (c, line) in self.lines.iter_mut().enumerate() {
            block.channel_into(c, line, |v| v);
            // Peaks under the ceiling all need no gain: only those that
            // may pass it are interpolated.
            let (end, ceiling) = (line.len(), self.ceiling);
            self.interpolator
                .peaks_over(line, history, end, ceiling, &mut self.channel_peaks);
            for (p, q) in self.peaks.iter_mut().zip(&self.channel_peaks) {
                *p = p.max(*q);
            }
            line.drain(..line.len() - history);
        }
    }

    /// Moves the gain on by frame n, whose true peak is `peak`: the minimum
    /// need over the lookahead, then its running mean, then the release.
    fn update_gain(&mut self, run: &mut Running, peak: f64) {
        let i = run.n;
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
        let slot = run.m_slot;
        run.m_sum += m - self.m[slot];
        self.m[slot] = m;
        run.m_slot = if slot + 1 == mlen { 0 } else { slot + 1 };
        let target = run.m_sum / mlen as f64;
        run.gain = target.min(run.gain + (1.0 - run.gain) * self.release);
    }

    /// Writes output frame n − latency (silence before the first) into
    /// `frame`, and steps the ring on to frame n + 1's slot.
    fn output(&self, run: &mut Running, frame: &mut [f32]) {
        // `xlen` is latency + 1, so frame n − latency sits in the slot
        // after frame n's: the one frame n + 1 will take.
        let next = if run.x_slot + 1 == self.xlen {
            0
        } else {
            run.x_slot + 1
        };
        if run.n >= self.latency() {
            let at = next * self.channels;
            let x = &self.x[at..at + frame.len()];
            for (v, x) in frame.iter_mut().zip(x) {
                *v = (x * run.gain) as f32;
            }
        } else {
            frame.fill(0.0);
        }
        run.x_slot = next;
    }
}

impl Processor for Limiter {
    fn process(&mut self, block: &mut Block) {
        self.block_peaks(block);
        let mut run = self.run;
        for (i, frame) in block.frames_mut().enumerate() {
            self.store(&run, frame);
            self.update_gain(&mut run, self.peaks[i] as f64);
            self.output(&mut run, frame);
            run.n += 1;
        }
        self.run = run;
    }
}
