//! One stem's chain: source and alignment, effects, meters and checks, the
//! stem file. A worker owns all of it, so it can run on any thread, or on
//! the mixer's own thread when the song has only one.

use std::path::{Path, PathBuf};

use crate::align::{AlignInfo, AlignSettings, Aligner, Grid};
use crate::arrange::{Arranger, Feed, Gate, PlacementInfo};
use crate::effects::{EffectChain, Processor};
use crate::error::{AtStage, SongError, Stage, StageError, StageFailure};
use crate::io::wav::WavOut;
use crate::plan::{Restart, SongPlan, SourceSpec, StemPlan};
use crate::seed::stem_key;
use crate::source;
use crate::types::{Block, Frames, StreamSpec};
use crate::verify::envelope::Envelope;
use crate::verify::{self, Levels, Loudness};

use super::meters::Meters;

/// A finished stem's levels, loudness and envelope.
pub(super) type StemFigures = (Levels, Loudness, Envelope);

/// One stem's chain, owned by the thread that renders it.
pub(super) struct StemWorker {
    name: String,
    spec: StreamSpec,
    target: Frames,
    feed: Feed,
    effects: EffectChain,
    /// The placement envelope, after the effects; `None` for a stem that
    /// plays the whole song unfaded.
    gate: Option<Gate>,
    meters: Meters,
    writer: WavOut,
    path: PathBuf,
}

impl StemWorker {
    /// Opens `stem`'s source and builds its processors and its file in
    /// `dir`.
    fn new(
        song: &SongPlan,
        stem: &StemPlan,
        dir: &Path,
        block_size: usize,
    ) -> Result<StemWorker, StageFailure> {
        let spec = song.spec;
        let target = song.target_frames();
        let feed = feed(song, stem, block_size)?;
        let effects =
            EffectChain::new(&stem.effects, spec.sample_rate, spec.channels).at(Stage::Effects)?;
        let path = dir.join(format!("{}.wav", stem.name));
        let writer = WavOut::create(&path, spec, song.dither, stem_key(song.seed, &stem.name))
            .at(Stage::Write)?;
        Ok(StemWorker {
            name: stem.name.clone(),
            spec,
            target,
            feed,
            effects,
            gate: gate(song, stem),
            meters: Meters::new(spec, target),
            writer,
            path,
        })
    }

    /// The stem's name, for errors.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// What alignment decided.
    pub(super) fn align_info(&self) -> &AlignInfo {
        self.feed.info()
    }

    /// Where the stem plays, when it is placed.
    pub(super) fn placement_info(&self, stem: &StemPlan) -> Option<PlacementInfo> {
        let restart = stem.placement.as_ref()?.restart;
        self.gate.as_ref().map(|g| g.info(restart))
    }

    /// Produces the stem's next block into `block`: source and alignment,
    /// effects, checks, file. `false` once the stem has delivered all of
    /// its frames.
    pub(super) fn produce(&mut self, block: &mut Block) -> Result<bool, StageFailure> {
        if self.feed.read(block)? == 0 {
            return Ok(false);
        }
        self.effects.process(block);
        if let Some(gate) = &mut self.gate {
            gate.process(block);
        }
        self.meters
            .update_finite(block, self.spec.channels)
            .at(Stage::Verify)?;
        self.writer.write(block).at(Stage::Write)?;
        Ok(true)
    }

    /// Closes the stem file and checks it; returns the stem's figures.
    pub(super) fn finish(self) -> Result<StemFigures, StageFailure> {
        let Meters {
            stats,
            loudness,
            envelope,
        } = self.meters;
        stats.check_frames(self.target).at(Stage::Verify)?;
        self.writer.finish().at(Stage::Write)?;
        verify::check_header(&self.path, self.spec, self.target).at(Stage::Verify)?;
        Ok((stats.summary(), loudness.loudness(), envelope))
    }
}

/// The settings that align `stem` to `target` frames (the song, or one
/// region of it).
fn align_settings(song: &SongPlan, stem: &StemPlan, target: Frames) -> AlignSettings {
    AlignSettings {
        mode: stem.align,
        rhythmic: stem.rhythmic,
        target,
        sample_rate: song.spec.sample_rate,
        crossfade_ms: stem.crossfade_ms,
        fade_ms: stem.fade_ms,
        grid: stem.rhythmic.then_some(Grid {
            bar_seconds: song.meter.bar_seconds(song.bpm),
            loop_bars: stem.loop_bars,
        }),
    }
}

/// Opens `source` (the stem's, or a region's variant of it) aligned to
/// `target` frames.
fn open_aligned(
    song: &SongPlan,
    stem: &StemPlan,
    source: &SourceSpec,
    target: Frames,
    block_size: usize,
) -> Result<Aligner, StageFailure> {
    let src = source::open(song, &stem.name, source).at(Stage::Source)?;
    let settings = align_settings(song, stem, target);
    Aligner::new(src, song.spec.channels, block_size, settings).at(Stage::Align)
}

/// The stem's aligned audio on the song's timeline: one aligner for the
/// song, or (`restart = "region"`) one per region, each opened when its
/// region starts.
fn feed(song: &SongPlan, stem: &StemPlan, block_size: usize) -> Result<Feed, StageFailure> {
    let target = song.target_frames();
    let Some(p) = stem
        .placement
        .as_ref()
        .filter(|p| p.restart == Restart::Region)
    else {
        return open_aligned(song, stem, &stem.source, target, block_size).map(Feed::Whole);
    };
    let rate = song.spec.sample_rate;
    let (song_own, stem_own) = (song.clone(), stem.clone());
    let open = Box::new(move |len: Frames| {
        // A generator without a `length` is made to the region's length.
        let source = stem_own.source.with_default_length(len.seconds(rate));
        open_aligned(&song_own, &stem_own, &source, len, block_size)
    });
    let regions = p.regions_in(target.0);
    Arranger::new(regions, target, song.spec.channels, block_size, open).map(Feed::Regions)
}

/// The stem's placement envelope, if it has one.
fn gate(song: &SongPlan, stem: &StemPlan) -> Option<Gate> {
    let p = stem.placement.as_ref()?;
    let frames = |ms: f64| Frames::from_seconds(ms / 1000.0, song.spec.sample_rate).0;
    Some(Gate::new(
        p.regions_in(song.target_frames().0),
        frames(p.fade_in_ms),
        frames(p.fade_out_ms),
    ))
}

/// Creates `dir/stems` and builds every stem's worker in it. Opening
/// sources and planning seams reads audio: with `threads` to spare, every
/// stem does it at once. The first failure in stem order is reported,
/// whatever finished first.
pub(super) fn build_all(
    song: &SongPlan,
    dir: &Path,
    block_size: usize,
    threads: usize,
) -> Result<Vec<StemWorker>, SongError> {
    let stems_dir = dir.join("stems");
    std::fs::create_dir_all(&stems_dir)
        .map_err(|e| SongError::new(&song.id, Stage::Output, StageError::io(&stems_dir, e)))?;
    let build = |stem: &StemPlan| StemWorker::new(song, stem, &stems_dir, block_size);
    let built: Vec<_> = if threads > 1 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = song
                .stems
                .iter()
                .map(|stem| scope.spawn(move || build(stem)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    } else {
        song.stems.iter().map(build).collect()
    };
    song.stems
        .iter()
        .zip(built)
        .map(|(stem, result)| result.map_err(|f| f.in_song(&song.id, Some(&stem.name))))
        .collect()
}
