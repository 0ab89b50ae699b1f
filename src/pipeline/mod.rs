//! Wires one song's processors together: a worker per stem (source →
//! alignment → effects → checks → stem file) feeding the mixer (mix → master
//! bus → checks → master file) through bounded channels of recycled blocks.
//!
//! This module moves blocks and errors around; the audio maths lives in the
//! processors it calls. `stem` builds and runs one stem's chain, `master`
//! the mix and the master's second pass, `schedule` shares them out over
//! the song's threads, and `meters` is what stems and master both measure.
//! The files import one way only (this file → schedule → stem and master →
//! meters), so each stage reads on its own.

mod master;
mod meters;
mod schedule;
mod stem;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::align::AlignInfo;
use crate::arrange::PlacementInfo;
use crate::error::{SongError, Stage, StageError};
use crate::plan::SongPlan;
use crate::types::Frames;
use crate::verify::envelope::Envelope;
use crate::verify::{Levels, Loudness};

pub use master::MasterOutcome;
pub use schedule::CHANNEL_CAPACITY;

use master::MixStage;
use schedule::Failure;
use stem::StemFigures;

/// How to render.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    /// Frames per block; never changes the output.
    pub block_size: usize,
    /// Threads this song may keep busy. With 1, the stems and the mixer
    /// take turns on the calling thread; with more, every stem gets a
    /// thread of its own. Never changes the output.
    pub threads: usize,
}

/// What one stem turned out as.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StemOutcome {
    pub name: String,
    #[serde(flatten)]
    pub align: AlignInfo,
    #[serde(flatten)]
    pub levels: Levels,
    #[serde(flatten)]
    pub loudness: Loudness,
    pub file: String,
    /// Where a placed stem plays (SPEC §9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementInfo>,
}

/// A rendered song's measurements (files are in the song folder).
#[derive(Clone, Debug)]
pub struct SongOutcome {
    pub stems: Vec<StemOutcome>,
    pub master: MasterOutcome,
    /// Waveform envelopes of the stems, for the overview picture.
    pub stem_envelopes: Vec<Envelope>,
}

/// Renders `song` into `dir` (which must exist): `stems/<name>.wav` and
/// `master.wav`. `interrupt` stops it early; `progress` is told the master
/// frames written so far.
pub fn render_song(
    song: &SongPlan,
    dir: &Path,
    opts: RenderOptions,
    interrupt: &AtomicBool,
    progress: &(dyn Fn(Frames) + Sync),
) -> Result<SongOutcome, SongError> {
    let block_size = opts.block_size.max(1);
    let workers = stem::build_all(song, dir, block_size, opts.threads)?;
    let aligns: Vec<(AlignInfo, Option<PlacementInfo>)> = workers
        .iter()
        .zip(&song.stems)
        .map(|(w, stem)| (w.align_info().clone(), w.placement_info(stem)))
        .collect();
    let mix = MixStage::new(song, dir, block_size).map_err(|f| f.in_song(&song.id, None))?;
    let failure = Failure::new(&song.id, interrupt);
    let (mixed, figures) =
        schedule::run(workers, mix, opts.threads, block_size, &failure, progress);
    if let Some(e) = failure.into_error() {
        return Err(e);
    }
    let cancelled = || SongError::new(&song.id, Stage::Mix, StageError::Cancelled);
    if interrupt.load(Ordering::Relaxed) {
        return Err(cancelled());
    }
    let mixed = mixed.ok_or_else(cancelled)?;
    let master = master::finish(song, dir, mixed, block_size, interrupt)
        .map_err(|f| f.in_song(&song.id, None))?;
    // Every worker that returned no figures recorded why (handled above),
    // unless it was cancelled: then the song as a whole was cancelled.
    let figures: Option<Vec<StemFigures>> = figures.into_iter().collect();
    let figures = figures.ok_or_else(cancelled)?;
    Ok(outcome(song, aligns, figures, master))
}

/// The song's outcome from what its stems and master measured.
fn outcome(
    song: &SongPlan,
    aligns: Vec<(AlignInfo, Option<PlacementInfo>)>,
    figures: Vec<StemFigures>,
    master: MasterOutcome,
) -> SongOutcome {
    let (stems, stem_envelopes) = song
        .stems
        .iter()
        .zip(aligns)
        .zip(figures)
        .map(
            |((stem, (align, placement)), (levels, loudness, envelope))| {
                let outcome = StemOutcome {
                    name: stem.name.clone(),
                    align,
                    levels,
                    loudness,
                    file: format!("stems/{}.wav", stem.name),
                    placement,
                };
                (outcome, envelope)
            },
        )
        .unzip();
    SongOutcome {
        stems,
        master,
        stem_envelopes,
    }
}
