//! The master bus of a song's second pass: normalisation gain, the
//! true-peak limiter, then the clip. In that order because the gain is what
//! moves the peaks, so the limiter must see them after it, and the clip is
//! the last word: whatever the limiter lets through, a hard-clipped master
//! stays within full scale.

use super::limiter::Limiter;
use crate::effects::{Gain, Processor};
use crate::plan::Clip;
use crate::types::{Block, StreamSpec};

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
