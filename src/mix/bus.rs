//! The master bus of a song's second pass: normalisation gain, the
//! true-peak limiter, then the clip. In that order because the gain is what
//! moves the peaks, so the limiter must see them after it, and the clip is
//! the last word: whatever the limiter lets through, a hard-clipped master
//! stays within full scale.

use super::limiter::Limiter;
use crate::effects::{Gain, Processor};
use crate::error::StageError;
use crate::plan::{Clip, MasterPlan};
use crate::types::{Block, Frames, StreamSpec};

/// The master bus after the mix: gain, optional limiter, clip.
pub struct MasterBus {
    gain: Gain,
    limiter: Option<Limiter>,
    clip: Clip,
}

impl MasterBus {
    /// A bus applying `gain`, limiting true peaks under `limit_db` dBTP if
    /// given, then clipping as `clip` says.
    pub fn new(gain: f32, limit_db: Option<f64>, clip: Clip, spec: StreamSpec) -> MasterBus {
        MasterBus {
            gain: Gain(gain),
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
        let gain = normalisation_gain(plan, measured_lufs)?;
        Ok(MasterBus::new(
            gain,
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

impl Processor for MasterBus {
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

/// The gain that brings a mix measured at `measured_lufs` to the plan's
/// loudness (1 when it names none), as the bus applies it: post-fader stem
/// files take the same factor so they still sum to the master.
pub fn normalisation_gain(
    plan: &MasterPlan,
    measured_lufs: Option<f64>,
) -> Result<f32, StageError> {
    match plan.normalize_lufs {
        None => Ok(1.0),
        Some(want) => gain_to(want, measured_lufs),
    }
}

/// The gain that brings a mix measured at `measured_lufs` to `want` LUFS;
/// silence has no loudness to move.
pub fn gain_to(want: f64, measured_lufs: Option<f64>) -> Result<f32, StageError> {
    match measured_lufs {
        Some(got) => Ok(10f64.powf((want - got) / 20.0) as f32),
        None => Err(StageError::Invalid(
            "cannot normalise the loudness of a silent master".into(),
        )),
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
}
