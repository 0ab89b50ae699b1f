//! One stem's chain: source and alignment, effects, meters and checks, the
//! stem file. A worker owns all of it, so it can run on any thread, or on
//! the mixer's own thread when the song has only one.

use std::path::{Path, PathBuf};

use crate::align::{AlignInfo, AlignSettings, Aligner, Grid};
use crate::effects::{EffectChain, Processor};
use crate::error::{AtStage, SongError, Stage, StageError, StageFailure};
use crate::io::wav::WavOut;
use crate::plan::{SongPlan, StemPlan};
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
    aligner: Aligner,
    effects: EffectChain,
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
        let src = source::open(song, &stem.name, &stem.source).at(Stage::Source)?;
        let settings = AlignSettings {
            mode: stem.align,
            rhythmic: stem.rhythmic,
            target,
            sample_rate: spec.sample_rate,
            crossfade_ms: stem.crossfade_ms,
            fade_ms: stem.fade_ms,
            grid: stem.rhythmic.then_some(Grid {
                bar_seconds: song.meter.bar_seconds(song.bpm),
                loop_bars: stem.loop_bars,
            }),
        };
        let aligner = Aligner::new(src, spec.channels, block_size, settings).at(Stage::Align)?;
        let effects =
            EffectChain::new(&stem.effects, spec.sample_rate, spec.channels).at(Stage::Effects)?;
        let path = dir.join(format!("{}.wav", stem.name));
        let writer = WavOut::create(&path, spec, song.dither, stem_key(song.seed, &stem.name))
            .at(Stage::Write)?;
        Ok(StemWorker {
            name: stem.name.clone(),
            spec,
            target,
            aligner,
            effects,
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
        self.aligner.info()
    }

    /// Produces the stem's next block into `block`: source and alignment,
    /// effects, checks, file. `false` once the stem has delivered all of
    /// its frames.
    pub(super) fn produce(&mut self, block: &mut Block) -> Result<bool, StageFailure> {
        if self.aligner.read(block).at(Stage::Source)? == 0 {
            return Ok(false);
        }
        self.effects.process(block);
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
