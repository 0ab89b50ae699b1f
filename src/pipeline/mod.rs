//! Wires one song's processors together: a worker per stem (source →
//! alignment → effects → checks → stem file) feeding the mixer (mix → master
//! bus → checks → master file) through bounded channels of recycled blocks;
//! then the delivery versions, each a pass over the unclipped mix.
//!
//! This module moves blocks and errors around; the audio maths lives in the
//! processors it calls. `stem` builds and runs one stem's chain, `master`
//! the mix and the master's second pass, `deliver` the delivery versions,
//! `schedule` shares them out over the song's threads, and `meters` is
//! what stems, master and versions all measure. The files import one way
//! only (this file → schedule → stem and master; deliver → meters), so
//! each stage reads on its own.
//!
//! A song's pass/fail checks do not stop its render: a failing song is
//! rendered and measured whole, and [`SongOutcome::failure`] says why it
//! fails, so its report has the figures that failed (SPEC §10).

mod deliver;
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

pub use deliver::DeliverOutcome;
pub use master::MasterOutcome;

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
    /// The tempo its source was stretched from (SPEC §9), when it was:
    /// an engineer reading the report sees what was done to the take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_bpm: Option<f64>,
    /// Its pitch shift in semitones, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transpose: Option<f64>,
}

/// A rendered song's measurements (files are in the song folder).
#[derive(Clone, Debug)]
pub struct SongOutcome {
    pub stems: Vec<StemOutcome>,
    pub master: MasterOutcome,
    /// Waveform envelopes of the stems, for the overview picture.
    pub stem_envelopes: Vec<Envelope>,
    /// The delivery versions, in manifest order.
    pub deliver: Vec<DeliverOutcome>,
}

impl SongOutcome {
    /// The first check of song `id` that failed (the master's, then each
    /// version's), as the song's error; `None` when it passed.
    pub fn failure(&self, id: &str) -> Option<SongError> {
        std::iter::once(&self.master.failed)
            .chain(self.deliver.iter().map(|d| &d.failed))
            .flatten()
            .next()
            .map(|f| SongError::new(id, Stage::Verify, f.clone().into()))
    }
}

/// Renders `song` into `dir` (which must exist): `stems/<name>.<ext>`,
/// `master.<ext>` (`wav` or `flac`) and `deliver/<name>.<ext>`. A failed
/// check is in the outcome ([`SongOutcome::failure`]), not an error.
/// `interrupt` stops it early; `progress` is told the master frames
/// written so far.
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
    let mix_lufs = mixed.loudness.lufs;
    let gain = crate::mix::bus::normalisation_gain(&song.master, mix_lufs);
    // The staged stems need only the gain, the master and its versions
    // only the mix: with a thread to spare they run side by side.
    let restage = move || match stem::staged(song) {
        // Without the gain the master fails too, and its error comes first.
        true => gain
            .map_err(|e| SongError::new(&song.id, Stage::Mix, e))
            .and_then(|gain| restage_all(song, dir, gain, block_size, interrupt))
            .map(Some),
        false => Ok(None),
    };
    let finish = || finish_master(song, dir, (mixed, mix_lufs), block_size, interrupt);
    let (done, restaged) = match opts.threads > 1 {
        true => std::thread::scope(|scope| {
            let staged = scope.spawn(restage);
            let done = finish();
            let staged = staged.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (done, staged)
        }),
        false => match finish() {
            Ok(done) => (Ok(done), restage()),
            Err(e) => (Err(e), Ok(None)),
        },
    };
    let (master, versions) = done?;
    // Every worker that returned no figures recorded why (handled above),
    // unless it was cancelled: then the song as a whole was cancelled.
    let figures: Option<Vec<StemFigures>> = figures.into_iter().collect();
    let mut figures = figures.ok_or_else(cancelled)?;
    if let Some(restaged) = restaged? {
        figures = restaged;
    }
    Ok(outcome(song, aligns, figures, (master, versions)))
}

/// The master's second pass, if any, then the delivery versions from the
/// unclipped mix (`mix_lufs` its loudness), which is then removed.
fn finish_master(
    song: &SongPlan,
    dir: &Path,
    (mixed, mix_lufs): (MasterOutcome, Option<f64>),
    block_size: usize,
    interrupt: &AtomicBool,
) -> Result<(MasterOutcome, Vec<DeliverOutcome>), SongError> {
    let master = master::finish(song, dir, mixed, block_size, interrupt)
        .map_err(|f| f.in_song(&song.id, None))?;
    let pre = master::pre_path(dir);
    let versions = deliver::render_all(song, dir, (&pre, mix_lufs), block_size, interrupt);
    let _ = std::fs::remove_file(&pre);
    Ok((master, versions?))
}

/// Writes every staged post-fader stem with the normalisation `gain`, one
/// after the other (each streams: memory stays flat), then drops the
/// staging folder.
fn restage_all(
    song: &SongPlan,
    dir: &Path,
    gain: f32,
    block_size: usize,
    interrupt: &AtomicBool,
) -> Result<Vec<StemFigures>, SongError> {
    let figures = song
        .stems
        .iter()
        .map(|s| {
            stem::restage(song, s, dir, gain, block_size, interrupt)
                .map_err(|f| f.in_song(&song.id, Some(&s.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let _ = std::fs::remove_dir_all(dir.join(stem::STAGED_DIR));
    Ok(figures)
}

/// The song's outcome from what its stems and master measured.
fn outcome(
    song: &SongPlan,
    aligns: Vec<(AlignInfo, Option<PlacementInfo>)>,
    figures: Vec<StemFigures>,
    (master, deliver): (MasterOutcome, Vec<DeliverOutcome>),
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
                    file: format!("stems/{}", stem::stem_file_name(song, &stem.name)),
                    placement,
                    source_bpm: stem.source_bpm,
                    transpose: (stem.transpose != 0.0).then_some(stem.transpose),
                };
                (outcome, envelope)
            },
        )
        .unzip();
    SongOutcome {
        stems,
        master,
        stem_envelopes,
        deliver,
    }
}
