//! The song's master: the stems mixed block by block (the first pass), and,
//! when the plan normalises or limits, a second pass of the master bus over
//! that mix. Normalising needs the whole mix's loudness before the first
//! sample can be scaled, so the first pass then writes the mix unclipped in
//! float beside the master, and the second reads it back. Delivery
//! versions are made from that unclipped mix too, so a song with any also
//! takes the second pass (with no gain and no limiter it writes the very
//! master one pass would).
//!
//! The master's pass/fail checks do not stop the song: their failure is
//! kept in the outcome beside the figures, so the song is still rendered
//! and reported whole (SPEC §10), and the caller fails it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::error::{AtStage, Stage, StageError, StageFailure};
use crate::io::AudioOut;
use crate::io::wav::FloatReader;
use crate::mix::{CompensatedBus, MasterBus, Mixer, StemGain};
use crate::plan::{Clip, Codec, SongPlan, StemFiles, VerifyLimits};
use crate::seed::stem_key;
use crate::types::{Block, Frames, SampleFormat, StreamSpec};
use crate::verify::envelope::Envelope;
use crate::verify::{self, CheckFailure, Levels, Loudness};

use super::meters::{Meters, bext, bext_loudness};

/// Names the master's dither seed (whatever its codec, so a FLAC master
/// holds the WAV master's samples).
const MASTER_FILE: &str = "master.wav";
/// The unclipped float mix a second pass (and every delivery version)
/// reads.
const PRE_FILE: &str = "master.pre.wav";

/// Where the unclipped float mix of a two-pass song is.
pub(super) fn pre_path(dir: &Path) -> std::path::PathBuf {
    dir.join(PRE_FILE)
}

/// What the master turned out as.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MasterOutcome {
    #[serde(flatten)]
    pub levels: Levels,
    pub clip_ratio: f64,
    #[serde(flatten)]
    pub loudness: Loudness,
    pub file: String,
    /// Waveform envelope for the overview picture.
    #[serde(skip)]
    pub envelope: Envelope,
    /// The check the master failed, if any.
    #[serde(skip)]
    pub failed: Option<CheckFailure>,
}

/// The master's file name in the song folder: `master.<codec extension>`.
fn master_name(song: &SongPlan) -> String {
    format!("master.{}", song.delivery.codec.extension())
}

/// Whether the plan's master bus runs as a second pass.
fn two_pass(song: &SongPlan) -> bool {
    song.master.normalize_lufs.is_some()
        || song.master.limit_true_peak_db.is_some()
        || !song.deliver.is_empty()
}

/// The first pass: the mixer, its meters and its file, owned by the song's
/// own thread. The scheduler hands it the stems' blocks.
pub(super) struct MixStage {
    mixer: Mixer,
    writer: AudioOut,
    meters: Meters,
    block: Block,
    target: Frames,
    /// Frames mixed so far.
    done: Frames,
    /// The master's limits, checked here unless a second pass follows.
    limits: Option<VerifyLimits>,
    /// The master's file name, for its figures.
    name: String,
}

impl MixStage {
    /// The mixer for `song`, writing into `dir`: the master itself, or
    /// the unclipped float mix when a second pass follows.
    pub(super) fn new(
        song: &SongPlan,
        dir: &Path,
        block_size: usize,
    ) -> Result<MixStage, StageFailure> {
        let spec = song.spec;
        let (path, codec, file_spec, clip, limits) = if two_pass(song) {
            let float = StreamSpec {
                format: SampleFormat::Float,
                ..spec
            };
            (dir.join(PRE_FILE), Codec::Wav, float, Clip::None, None)
        } else {
            let codec = song.delivery.codec;
            let (clip, limits) = (song.master.clip, Some(song.verify));
            (dir.join(master_name(song)), codec, spec, clip, limits)
        };
        let key = stem_key(song.seed, MASTER_FILE);
        let bext = match two_pass(song) {
            true => None,
            false => bext(song, "master"),
        };
        let writer = AudioOut::create(&path, codec, file_spec, (song.dither, key), bext.as_ref())
            .at(Stage::Write)?;
        // Post-fader stems arrive with their gain and pan applied.
        let post = song.delivery.stem_files == StemFiles::PostFader;
        let gains = song
            .stems
            .iter()
            .map(|s| match post {
                true => StemGain::unity(spec.channels),
                false => StemGain::new(s, spec.channels),
            })
            .collect();
        Ok(MixStage {
            mixer: Mixer::new(gains, clip, block_size, spec.channels),
            writer,
            meters: match two_pass(song) {
                true => Meters::without_true_peak(spec, song.target_frames()),
                false => Meters::new(spec, song.target_frames()),
            },
            block: Block::new(spec.channels, block_size),
            target: song.target_frames(),
            done: Frames(0),
            limits,
            name: master_name(song),
        })
    }

    /// Channels per frame.
    pub(super) fn channels(&self) -> u16 {
        self.block.channels() as u16
    }

    /// Frames in the next master block; 0 once the master is complete.
    pub(super) fn next_frames(&self) -> usize {
        (self.target.0 - self.done.0).min(self.block.capacity() as u64) as usize
    }

    /// Starts a master block of `frames` frames.
    pub(super) fn begin(&mut self, frames: usize) {
        self.mixer.begin(frames, self.block.channels());
        self.block.set_frames(frames);
    }

    /// Adds stem number `index`'s block to the current master block.
    pub(super) fn add(&mut self, index: usize, block: &Block) {
        self.mixer.add(index, block);
    }

    /// Completes the current master block: measures and writes it.
    /// Returns the frames mixed so far.
    pub(super) fn end_block(&mut self) -> Result<Frames, StageFailure> {
        self.mixer.finish(&mut self.block);
        self.meters.update(&self.block);
        self.writer.write(&self.block).at(Stage::Write)?;
        self.done.0 += self.block.frames() as u64;
        Ok(self.done)
    }

    /// Checks the mix and closes its file.
    pub(super) fn finish(self) -> Result<MasterOutcome, StageFailure> {
        let channels = self.channels();
        let failed = check(&self.meters, channels, self.target, self.limits.as_ref())?;
        let mut writer = self.writer;
        writer.set_loudness(bext_loudness(&self.meters.loudness.loudness()));
        writer.finish().at(Stage::Write)?;
        Ok(measured(self.meters, self.name, failed))
    }
}

/// Completes the master after the mix (`first`): runs the second pass if
/// the plan asks for one, then re-reads the master's header. The unclipped
/// mix stays for the delivery versions: [`pre_path`] is the caller's to
/// remove.
pub(super) fn finish(
    song: &SongPlan,
    dir: &Path,
    first: MasterOutcome,
    block_size: usize,
    interrupt: &AtomicBool,
) -> Result<MasterOutcome, StageFailure> {
    let master_path = dir.join(master_name(song));
    let master = if two_pass(song) {
        second_pass(
            song,
            &pre_path(dir),
            &master_path,
            &first,
            block_size,
            interrupt,
        )?
    } else {
        first
    };
    verify::check_header(&master_path, song.spec, song.target_frames()).at(Stage::Verify)?;
    Ok(master)
}

/// The second pass: reads the unclipped float mix, runs the master bus
/// (normalisation gain, true-peak limiter, clip) with its latency taken
/// out, and writes the master in its final format, measuring it again.
/// Two threads share the work — the bus (its limiter runs the true-peak
/// interpolator on every sample) on one, the meters and the writer on the
/// other — handing blocks over in order, so the bytes are those of one
/// thread doing both.
fn second_pass(
    song: &SongPlan,
    pre: &Path,
    out: &Path,
    first: &MasterOutcome,
    block_size: usize,
    interrupt: &AtomicBool,
) -> Result<MasterOutcome, StageFailure> {
    let spec = song.spec;
    let target = song.target_frames();
    let bus = MasterBus::for_plan(&song.master, first.loudness.lufs, spec).at(Stage::Mix)?;
    let bus = CompensatedBus::new(bus, target);
    let reader = FloatReader::open(pre).at(Stage::Mix)?;
    let key = stem_key(song.seed, MASTER_FILE);
    let bext = bext(song, "master");
    let codec = song.delivery.codec;
    let mut writer =
        AudioOut::create(out, codec, spec, (song.dither, key), bext.as_ref()).at(Stage::Write)?;
    let mut meters = Meters::new(spec, target);
    // Blocks go to the writer full and come back empty: no allocation
    // per block, and at most `IN_FLIGHT` blocks of memory.
    const IN_FLIGHT: usize = 4;
    let (full_tx, full_rx) = bounded::<Block>(IN_FLIGHT);
    let (empty_tx, empty_rx) = bounded::<Block>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let _ = empty_tx.send(Block::new(spec.channels, block_size));
    }
    std::thread::scope(|scope| {
        let bus_thread = scope.spawn(move || run_bus(bus, reader, &empty_rx, &full_tx, interrupt));
        let mut written = Ok(());
        for block in full_rx.iter() {
            meters.update(&block);
            written = writer.write(&block).at(Stage::Write);
            // On a write error, stop taking blocks: the bus thread ends
            // when its channel closes.
            if written.is_err() {
                break;
            }
            // Refused only once the bus thread is done: the block is not
            // needed then.
            let _ = empty_tx.send(block);
        }
        // Either end may have stopped early: close both channels so the
        // bus thread cannot wait on a block that will never come.
        drop(full_rx);
        drop(empty_tx);
        let bused = bus_thread
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        written.and(bused)
    })?;
    writer.set_loudness(bext_loudness(&meters.loudness.loudness()));
    writer.finish().at(Stage::Write)?;
    let failed = check(&meters, spec.channels, target, Some(&song.verify))?;
    Ok(measured(meters, master_name(song), failed))
}

/// The bus thread of the second pass: fills each empty block from the
/// float mix, runs the bus over it and sends it on, until the bus is done
/// or the writer has gone.
fn run_bus(
    mut bus: CompensatedBus,
    mut reader: FloatReader,
    empty: &Receiver<Block>,
    full: &Sender<Block>,
    interrupt: &AtomicBool,
) -> Result<(), StageFailure> {
    let mut spare = None;
    while !bus.done() {
        if interrupt.load(Ordering::Relaxed) {
            return Err(StageFailure::cancelled(Stage::Mix));
        }
        let Some(mut block) = spare.take().or_else(|| empty.recv().ok()) else {
            return Ok(());
        };
        block.set_frames(bus.input_frames(block.capacity()));
        reader.read_exact(block.samples_mut()).at(Stage::Mix)?;
        bus.process(&mut block);
        if block.frames() == 0 {
            // Nothing out yet (the limiter's latency): fill it again.
            spare = Some(block);
        } else if full.send(block).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// The master's checks: finite samples and `target` frames (an error: the
/// file is unusable), then `limits` when given (SPEC §8), whose failure is
/// returned for the outcome to keep.
fn check(
    meters: &Meters,
    channels: u16,
    target: Frames,
    limits: Option<&VerifyLimits>,
) -> Result<Option<CheckFailure>, StageFailure> {
    let whole = |e: StageError| StageFailure {
        stage: Stage::Verify,
        error: e,
    };
    meters.stats.check_finite(channels).map_err(whole)?;
    meters.stats.check_frames(target).map_err(whole)?;
    let loudness = meters.loudness.loudness();
    Ok(limits.and_then(|l| verify::check_master(&meters.stats, &loudness, l).err()))
}

/// The master's figures from its meters; `name` is its file, `failed` the
/// check it failed.
fn measured(meters: Meters, name: String, failed: Option<CheckFailure>) -> MasterOutcome {
    MasterOutcome {
        levels: meters.stats.summary(),
        clip_ratio: meters.stats.clip_ratio(),
        loudness: meters.loudness.loudness(),
        file: name,
        envelope: meters.envelope,
        failed,
    }
}
