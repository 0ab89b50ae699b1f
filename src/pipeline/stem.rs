//! One stem's chain: source and alignment, effects, meters and checks, the
//! stem file. A worker owns all of it, so it can run on any thread, or on
//! the mixer's own thread when the song has only one.

use std::path::{Path, PathBuf};

use crate::align::{AlignInfo, AlignSettings, Aligner, Grid};
use crate::arrange::{Arranger, Feed, Gate, PlacementInfo};
use crate::effects::{EffectChain, Processor};
use crate::error::{AtStage, SongError, Stage, StageError, StageFailure};
use crate::io::AudioOut;
use crate::io::wav::FloatReader;
use crate::mix::Fader;
use crate::plan::{Codec, Restart, SongPlan, SourceSpec, StemFiles, StemPlan};
use crate::seed::stem_key;
use crate::source;
use crate::types::{Block, Frames, SampleFormat, StreamSpec};
use crate::verify::envelope::Envelope;
use crate::verify::{self, Levels, Loudness};

use super::meters::{Meters, bext, bext_loudness};

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
    /// Gain and pan, for post-fader stem files.
    fader: Option<Fader>,
    meters: Meters,
    writer: AudioOut,
    path: PathBuf,
    /// What the file holds: the song's format, or float for a stem staged
    /// until the normalisation gain is known.
    file_spec: StreamSpec,
}

/// Where post-fader stems of a normalised song wait, in float, for the
/// normalisation gain: a folder apart, so no stem name can collide.
pub(super) const STAGED_DIR: &str = ".prenorm";

/// Whether `song`'s stem files are written by [`restage`] after the master
/// pass (post-fader and normalised), rather than by the workers.
pub(super) fn staged(song: &SongPlan) -> bool {
    song.delivery.stem_files == StemFiles::PostFader && song.master.normalize_lufs.is_some()
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
        let post = song.delivery.stem_files == StemFiles::PostFader;
        let (path, codec, file_spec, bext) = if staged(song) {
            let float = StreamSpec {
                format: SampleFormat::Float,
                ..spec
            };
            (staged_path(dir, &stem.name), Codec::Wav, float, None)
        } else {
            let (path, codec) = (stem_path(song, dir, &stem.name), song.delivery.codec);
            (
                path,
                codec,
                spec,
                bext(song, &format!("stem {}", stem.name)),
            )
        };
        let key = stem_key(song.seed, &stem.name);
        let writer = AudioOut::create(&path, codec, file_spec, (song.dither, key), bext.as_ref())
            .at(Stage::Write)?;
        Ok(StemWorker {
            name: stem.name.clone(),
            spec,
            target,
            feed,
            effects,
            gate: gate(song, stem),
            fader: post.then(|| Fader::new(stem, spec.channels)),
            // A staged stem is measured when it is restaged.
            meters: match staged(song) {
                true => Meters::levels_only(spec, target),
                false => Meters::new(spec, target),
            },
            writer,
            path,
            file_spec,
        })
    }

    /// The stem's name, for errors.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Estimated CPU time per frame of the whole chain, in units of its
    /// meters and file (1.0; see [`source::cost`]): what the scheduler
    /// balances the song's threads by.
    pub(super) fn cost(&self) -> f32 {
        1.0 + self.feed.cost() + self.effects.cost()
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
        if let Some(fader) = self.fader.as_mut() {
            fader.process(block);
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
            ..
        } = self.meters;
        stats.check_frames(self.target).at(Stage::Verify)?;
        let mut writer = self.writer;
        writer.set_loudness(bext_loudness(&loudness.loudness()));
        writer.finish().at(Stage::Write)?;
        verify::check_header(&self.path, self.file_spec, self.target).at(Stage::Verify)?;
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
    let src = source::fit_tempo(src, song, stem).at(Stage::Source)?;
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

/// Stem `name`'s file in `dir` (the song's `stems`), named for the codec.
fn stem_path(song: &SongPlan, dir: &Path, name: &str) -> PathBuf {
    dir.join(stem_file_name(song, name))
}

/// Stem `name`'s file name: `<name>.<codec extension>`.
pub(super) fn stem_file_name(song: &SongPlan, name: &str) -> String {
    format!("{name}.{}", song.delivery.codec.extension())
}

/// The staged float file of stem `name` (`dir` is the song's `stems`).
fn staged_path(dir: &Path, name: &str) -> PathBuf {
    dir.with_file_name(STAGED_DIR).join(format!("{name}.wav"))
}

/// Writes stem `stem`'s final file from its staged float file, scaled by
/// the master's normalisation `gain` exactly as the master bus scales the
/// mix, and measures it; removes the staged file.
pub(super) fn restage(
    song: &SongPlan,
    stem: &StemPlan,
    dir: &Path,
    gain: f32,
    block_size: usize,
    interrupt: &std::sync::atomic::AtomicBool,
) -> Result<StemFigures, StageFailure> {
    let (spec, target) = (song.spec, song.target_frames());
    let stems = dir.join("stems");
    let staged = staged_path(&stems, &stem.name);
    let path = stem_path(song, &stems, &stem.name);
    let mut reader = FloatReader::open(&staged).at(Stage::Write)?;
    let key = stem_key(song.seed, &stem.name);
    let (codec, bext) = (
        song.delivery.codec,
        bext(song, &format!("stem {}", stem.name)),
    );
    let mut writer =
        AudioOut::create(&path, codec, spec, (song.dither, key), bext.as_ref()).at(Stage::Write)?;
    let mut meters = Meters::new(spec, target);
    let mut block = Block::new(spec.channels, block_size);
    let mut gain = crate::effects::Gain(gain);
    let mut left = target.0;
    while left > 0 {
        if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StageFailure::cancelled(Stage::Write));
        }
        block.set_frames(left.min(block_size as u64) as usize);
        reader.read_exact(block.samples_mut()).at(Stage::Write)?;
        gain.process(&mut block);
        meters
            .update_finite(&block, spec.channels)
            .at(Stage::Verify)?;
        writer.write(&block).at(Stage::Write)?;
        left -= block.frames() as u64;
    }
    writer.set_loudness(bext_loudness(&meters.loudness.loudness()));
    writer.finish().at(Stage::Write)?;
    let _ = std::fs::remove_file(&staged);
    verify::check_header(&path, spec, target).at(Stage::Verify)?;
    let Meters {
        stats,
        loudness,
        envelope,
        ..
    } = meters;
    Ok((stats.summary(), loudness.loudness(), envelope))
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
    let mut folders = vec![stems_dir.clone()];
    if staged(song) {
        folders.push(dir.join(STAGED_DIR));
    }
    for folder in folders {
        std::fs::create_dir_all(&folder)
            .map_err(|e| SongError::new(&song.id, Stage::Output, StageError::io(&folder, e)))?;
    }
    let build = |stem: &StemPlan| StemWorker::new(song, stem, &stems_dir, block_size);
    let at_once = if threads > 1 { song.stems.len() } else { 1 };
    let built = crate::parallel::map_ordered(&song.stems, at_once, build);
    song.stems
        .iter()
        .zip(built)
        .map(|(stem, result)| result.map_err(|f| f.in_song(&song.id, Some(&stem.name))))
        .collect()
}
