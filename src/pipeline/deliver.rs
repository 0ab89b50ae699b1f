//! Delivery versions (SPEC §10): each `[[songs.deliver]]` entry is one more
//! master, `deliver/<name>.<ext>`, made in one streaming pass from the
//! unclipped float mix the master's second pass also reads: resampled to
//! the version's rate, gained to its loudness, limited under its true-peak
//! ceiling, clipped as the master is, dithered and encoded by its writer.
//!
//! Why from the unclipped mix and not from the master: a version at another
//! loudness or ceiling must not inherit the master's limiting or clipping,
//! and resampling a clipped master would turn its flat tops into overshoot.
//! The mix's integrated loudness is known from the first pass, so the gain
//! is fixed before the first sample, as the master's own normalisation is.
//!
//! The gain is set once from the mix's loudness, which the chain keeps
//! unless its limiter has to pull peaks down (or the resampler drops
//! content above the new Nyquist): then the measured loudness falls short
//! of the target, and the pass runs again from the mix with the gain
//! corrected by the shortfall (at most [`MAX_CORRECTIONS`] times, only
//! while it is more than [`LOUDNESS_SLACK`] away), so a limited version
//! still lands on its target.
//!
//! Each version is measured, checked and reported like the master; its
//! checks (its own loudness target within the song's tolerance, its own
//! ceiling, the song's clip ratio) are kept in the outcome, not raised, so
//! a failing song is still rendered whole.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{AtStage, SongError, Stage, StageError, StageFailure};
use crate::io::AudioOut;
use crate::io::wav::FloatReader;
use crate::mix::{CompensatedBus, MasterBus, bus};
use crate::plan::{Codec, DeliverPlan, SongPlan, VerifyLimits};
use crate::seed::stem_key;
use crate::source::{Resampled, Source};
use crate::types::{Block, Frames};
use crate::verify::{self, CheckFailure, Levels, Loudness};

use super::meters::{Meters, bext, bext_loudness};

/// Passes run again at most, after the first, to correct the loudness.
const MAX_CORRECTIONS: usize = 2;
/// Distance from the target that needs no correction, LU.
const LOUDNESS_SLACK: f64 = 0.05;

/// What one delivery version turned out as.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeliverOutcome {
    pub name: String,
    pub file: String,
    pub sample_rate: u32,
    pub format: &'static str,
    pub codec: Codec,
    /// The loudness the version was gained to, if it names one.
    pub normalize_lufs: Option<f64>,
    /// The ceiling of its limiter, if it has one.
    pub limit_true_peak_db: Option<f64>,
    /// The gain applied to the unclipped mix before the limiter, dB.
    pub gain_db: f64,
    #[serde(flatten)]
    pub levels: Levels,
    pub clip_ratio: f64,
    #[serde(flatten)]
    pub loudness: Loudness,
    /// The check the version failed, if any.
    #[serde(skip)]
    pub failed: Option<CheckFailure>,
}

/// Renders every version of `song` into `dir/deliver/` from the unclipped
/// mix at `pre`, whose integrated loudness is `mix_lufs`; one after the
/// other, each streaming, so memory stays flat.
pub(super) fn render_all(
    song: &SongPlan,
    dir: &Path,
    (pre, mix_lufs): (&Path, Option<f64>),
    block_size: usize,
    interrupt: &AtomicBool,
) -> Result<Vec<DeliverOutcome>, SongError> {
    if song.deliver.is_empty() {
        return Ok(Vec::new());
    }
    let folder = dir.join("deliver");
    std::fs::create_dir_all(&folder)
        .map_err(|e| SongError::new(&song.id, Stage::Write, StageError::io(&folder, e)))?;
    song.deliver
        .iter()
        .map(|v| {
            let pass = Pass {
                song,
                version: v,
                path: dir.join(v.file()),
            };
            pass.run_to_target(pre, mix_lufs, block_size, interrupt)
                .map_err(|f| f.in_song(&song.id, None))
        })
        .collect()
}

/// One version's pass.
struct Pass<'a> {
    song: &'a SongPlan,
    version: &'a DeliverPlan,
    path: PathBuf,
}

impl Pass<'_> {
    /// Runs the pass with the gain from the mix's loudness `mix_lufs`, and
    /// again with the gain corrected while the version misses its target.
    fn run_to_target(
        &self,
        pre: &Path,
        mix_lufs: Option<f64>,
        block_size: usize,
        interrupt: &AtomicBool,
    ) -> Result<DeliverOutcome, StageFailure> {
        let (song, v) = (self.song, self.version);
        let mut gain = match v.normalize_lufs {
            Some(want) => bus::gain_to(want, mix_lufs),
            None => bus::normalisation_gain(&song.master, mix_lufs),
        }
        .at(Stage::Mix)?;
        let mut outcome = self.run(pre, gain, block_size, interrupt)?;
        for _ in 0..MAX_CORRECTIONS {
            let (Some(want), Some(got)) = (v.normalize_lufs, outcome.loudness.lufs) else {
                break;
            };
            if (want - got).abs() <= LOUDNESS_SLACK {
                break;
            }
            gain *= bus::gain_to(want, Some(got)).at(Stage::Mix)?;
            outcome = self.run(pre, gain, block_size, interrupt)?;
        }
        Ok(outcome)
    }

    /// Streams the mix at `pre` through the version's chain, `gain` first,
    /// into its file.
    fn run(
        &self,
        pre: &Path,
        gain: f32,
        block_size: usize,
        interrupt: &AtomicBool,
    ) -> Result<DeliverOutcome, StageFailure> {
        let (song, v) = (self.song, self.version);
        let mut source = self.source(pre).at(Stage::Mix)?;
        let frames = source.len();
        let chain = MasterBus::new(gain, v.limit_true_peak_db, song.master.clip, v.spec);
        let mut chain = CompensatedBus::new(chain, frames);
        let key = stem_key(song.seed, &v.file());
        let bext = bext(song, &format!("deliver {}", v.name));
        let mut writer =
            AudioOut::create(&self.path, v.codec, v.spec, (v.dither, key), bext.as_ref())
                .at(Stage::Write)?;
        let mut meters = Meters::new(v.spec, frames);
        let mut block = Block::new(v.spec.channels, block_size);
        while !chain.done() {
            if interrupt.load(Ordering::Relaxed) {
                return Err(StageFailure::cancelled(Stage::Mix));
            }
            // The source gives exactly the frames the chain asks for: both
            // count down the same length.
            source.read(&mut block).at(Stage::Mix)?;
            chain.process(&mut block);
            if block.frames() > 0 {
                meters
                    .update_finite(&block, v.spec.channels)
                    .at(Stage::Verify)?;
                writer.write(&block).at(Stage::Write)?;
            }
        }
        writer.set_loudness(bext_loudness(&meters.loudness.loudness()));
        writer.finish().at(Stage::Write)?;
        meters.stats.check_frames(frames).at(Stage::Verify)?;
        verify::check_header(&self.path, v.spec, frames).at(Stage::Verify)?;
        Ok(self.outcome(meters, gain))
    }

    /// The unclipped mix at the version's rate: exactly round(T·r/R)
    /// frames, the resampler's delay taken out.
    fn source(&self, pre: &Path) -> Result<Box<dyn Source>, StageError> {
        let (spec, rate) = (self.song.spec, self.version.spec.sample_rate);
        let mix = Box::new(MixFile::open(
            pre,
            self.song.target_frames(),
            spec.channels,
        )?);
        if rate == spec.sample_rate {
            return Ok(mix);
        }
        let resampled = Resampled::new(mix, spec.sample_rate, rate, spec.channels)?;
        Ok(Box::new(resampled))
    }

    /// The version's figures and the checks it failed: its own loudness
    /// target (within the song's tolerance) and ceiling, the song's clip
    /// ratio.
    fn outcome(&self, meters: Meters, gain: f32) -> DeliverOutcome {
        let (song, v) = (self.song, self.version);
        let limits = VerifyLimits {
            min_rms: 0.0,
            target_lufs: v.normalize_lufs,
            max_true_peak_db: v.limit_true_peak_db,
            ..song.verify
        };
        let loudness = meters.loudness.loudness();
        let what = format!("delivery version {:?}", v.name);
        let failed = verify::check_stream(&what, &meters.stats, &loudness, &limits).err();
        DeliverOutcome {
            name: v.name.clone(),
            file: v.file(),
            sample_rate: v.spec.sample_rate,
            format: v.spec.format.name(),
            codec: v.codec,
            normalize_lufs: v.normalize_lufs,
            limit_true_peak_db: v.limit_true_peak_db,
            gain_db: verify::to_db(gain as f64).map_or(0.0, |g| (g * 1000.0).round() / 1000.0),
            levels: meters.stats.summary(),
            clip_ratio: meters.stats.clip_ratio(),
            loudness,
            failed,
        }
    }
}

/// The unclipped float mix file as a [`Source`], so the resampler can pull
/// from it as it pulls from any source.
struct MixFile {
    path: PathBuf,
    reader: FloatReader,
    len: Frames,
    channels: usize,
    pos: u64,
}

impl MixFile {
    /// The mix at `path`: `len` frames of `channels` channels.
    fn open(path: &Path, len: Frames, channels: u16) -> Result<MixFile, StageError> {
        Ok(MixFile {
            path: path.to_path_buf(),
            reader: FloatReader::open(path)?,
            len,
            channels: channels as usize,
            pos: 0,
        })
    }
}

impl Source for MixFile {
    fn len(&self) -> Frames {
        self.len
    }

    /// Forward by reading, backward by reopening: the passes only ever
    /// read straight through, so this need not be fast.
    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        let pos = pos.0.min(self.len.0);
        if pos < self.pos {
            self.reader = FloatReader::open(&self.path)?;
            self.pos = 0;
        }
        let mut scratch = vec![0.0; 4096 * self.channels];
        while self.pos < pos {
            let n = (pos - self.pos).min(4096) as usize;
            self.reader.read_exact(&mut scratch[..n * self.channels])?;
            self.pos += n as u64;
        }
        Ok(())
    }

    fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let n = (self.len.0 - self.pos).min(block.capacity() as u64) as usize;
        block.set_frames(n);
        self.reader.read_exact(block.samples_mut())?;
        self.pos += n as u64;
        Ok(n)
    }
}
