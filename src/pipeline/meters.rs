//! The meters every stream of a song feeds, block by block: levels,
//! loudness and the waveform envelope. One bundle, so the stem and master
//! stages feed the same meters the same way, and neither depends on the
//! other to do it.

use crate::error::StageError;
use crate::io::bext::{Bext, BextLoudness};
use crate::plan::SongPlan;
use crate::types::{Block, Frames, StreamSpec};
use crate::verify::Loudness;
use crate::verify::envelope::Envelope;
use crate::verify::{LoudnessMeter, StreamStats};

/// A stream's running measurements.
pub(super) struct Meters {
    pub(super) stats: StreamStats,
    pub(super) loudness: LoudnessMeter,
    pub(super) envelope: Envelope,
    /// Whether the loudness and envelope meters are fed (see
    /// [`Meters::levels_only`]).
    full: bool,
}

impl Meters {
    /// Empty meters for a stream of `spec` that will last `target` frames.
    pub(super) fn new(spec: StreamSpec, target: Frames) -> Meters {
        Meters {
            stats: StreamStats::default(),
            loudness: LoudnessMeter::new(spec.channels, spec.sample_rate),
            envelope: Envelope::new(target.0),
            full: true,
        }
    }

    /// Meters that feed only the levels the checks need (finite samples,
    /// frame count), for a stream measured in full later anyway: a staged
    /// stem, measured again as it is restaged. Its loudness and envelope
    /// stay empty.
    pub(super) fn levels_only(spec: StreamSpec, target: Frames) -> Meters {
        Meters {
            full: false,
            ..Meters::new(spec, target)
        }
    }

    /// As [`Meters::new`] without the true peak: for the unclipped mix of
    /// a two-pass song, of which only the loudness is used (the master's
    /// figures come from the second pass).
    pub(super) fn without_true_peak(spec: StreamSpec, target: Frames) -> Meters {
        Meters {
            loudness: LoudnessMeter::without_true_peak(spec.channels, spec.sample_rate),
            ..Meters::new(spec, target)
        }
    }

    /// Adds one block to every meter.
    pub(super) fn update(&mut self, block: &Block) {
        self.stats.update(block);
        self.update_rest(block);
    }

    /// Adds one block, refusing it before the loudness and envelope meters
    /// see it if it holds a NaN or an infinity.
    pub(super) fn update_finite(&mut self, block: &Block, channels: u16) -> Result<(), StageError> {
        self.stats.update(block);
        self.stats.check_finite(channels)?;
        self.update_rest(block);
        Ok(())
    }

    /// Feeds the loudness and envelope meters, unless levels only.
    fn update_rest(&mut self, block: &Block) {
        if self.full {
            self.loudness.update(block);
            self.envelope.update(block);
        }
    }
}

/// The `bext` chunk of `song`'s file `what` (a stem name, or "master"),
/// `None` when the song turns Broadcast WAV off.
pub(super) fn bext(song: &SongPlan, what: &str) -> Option<Bext> {
    song.delivery.bwf.then(|| Bext {
        description: within_bytes(format!("song {}: {what}", song.display_name()), 256),
        originator: "stemflow".into(),
        date: song.delivery.date.clone(),
        time: song.delivery.time.clone(),
    })
}

/// `text` cut to at most `max` bytes at a character boundary, so a long
/// title never leaves half a UTF-8 character in the fixed-size field.
fn within_bytes(mut text: String, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// The figures a `bext` chunk carries, from a file's loudness.
pub(super) fn bext_loudness(l: &Loudness) -> BextLoudness {
    BextLoudness {
        integrated: l.lufs,
        range: l.loudness_range,
        max_true_peak: l.true_peak_db,
        max_momentary: l.max_momentary,
        max_short_term: l.max_short_term,
    }
}
