//! Wires one song's processors together: a thread per stem (source →
//! alignment → effects → checks → stem file) feeding the mixer (mix → master
//! bus → checks → master file) through bounded channels of recycled blocks.
//!
//! This module moves blocks and errors around; the audio maths lives in the
//! processors it calls.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::align::{AlignInfo, AlignSettings, Aligner};
use crate::effects::{EffectChain, Processor};
use crate::error::{SongError, Stage, StageError};
use crate::io::wav::{FloatReader, WavOut};
use crate::mix::{MasterBus, Mixer, StemGain};
use crate::plan::{Clip, SongPlan, StemPlan, VerifyLimits};
use crate::seed::stem_key;
use crate::source;
use crate::types::{Block, Frames, SampleFormat, StreamSpec};
use crate::verify::envelope::Envelope;
use crate::verify::{self, Levels, Loudness, LoudnessMeter, StreamStats};

/// Blocks in flight per stem channel; one more circulates in each worker.
pub const CHANNEL_CAPACITY: usize = 2;

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
}

/// A rendered song's measurements (files are in the song folder).
#[derive(Clone, Debug)]
pub struct SongOutcome {
    pub stems: Vec<StemOutcome>,
    pub master: MasterOutcome,
    /// Waveform envelopes of the stems, for the overview picture.
    pub stem_envelopes: Vec<Envelope>,
}

/// One stem's chain, owned by its worker thread.
struct StemWorker {
    name: String,
    aligner: Aligner,
    effects: EffectChain,
    stats: StreamStats,
    loudness: LoudnessMeter,
    envelope: Envelope,
    writer: WavOut,
    path: PathBuf,
}

impl StemWorker {
    /// Produces the stem's next block into `block`: source and alignment,
    /// effects, checks, file. `false` once the stem has delivered all of
    /// its frames.
    fn produce(&mut self, block: &mut Block, channels: u16) -> Result<bool, (Stage, StageError)> {
        if self.aligner.read(block).map_err(|e| (Stage::Source, e))? == 0 {
            return Ok(false);
        }
        self.effects.process(block);
        self.stats.update(block);
        self.stats
            .check_finite(channels)
            .map_err(|e| (Stage::Verify, e))?;
        self.loudness.update(block);
        self.envelope.update(block);
        self.writer.write(block).map_err(|e| (Stage::Write, e))?;
        Ok(true)
    }

    /// Closes the stem file and checks it; returns the stem's figures.
    fn finish(self, target: Frames, spec: StreamSpec) -> Result<StemFigures, (Stage, StageError)> {
        self.stats
            .check_frames(target)
            .map_err(|e| (Stage::Verify, e))?;
        self.writer.finish().map_err(|e| (Stage::Write, e))?;
        verify::check_header(&self.path, spec, target).map_err(|e| (Stage::Verify, e))?;
        Ok((
            self.stats.summary(),
            self.loudness.loudness(),
            self.envelope,
        ))
    }
}

/// A finished stem's levels, loudness and envelope.
type StemFigures = (Levels, Loudness, Envelope);

/// Where the mixer gets a stem's blocks from.
enum Feed<'a> {
    /// From the stem's own thread, returning each block for reuse.
    Thread {
        full: Receiver<Block>,
        free: Sender<Block>,
    },
    /// Produced on the mixer's thread, on demand.
    Inline {
        worker: Box<StemWorker>,
        block: Block,
        figures: &'a mut Option<StemFigures>,
    },
}

/// Shared between a song's threads: the first real error stops the rest.
struct Failure<'a> {
    song: &'a str,
    first: Mutex<Option<SongError>>,
    stop: AtomicBool,
    interrupt: &'a AtomicBool,
}

impl Failure<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.interrupt.load(Ordering::Relaxed)
    }

    fn record(&self, stage: Stage, stem: Option<&str>, error: StageError) {
        self.stop.store(true, Ordering::Relaxed);
        if matches!(error, StageError::Cancelled) {
            return;
        }
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(SongError {
            song: self.song.to_string(),
            stage,
            stem: stem.map(str::to_string),
            error,
        });
    }
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
    let fail = |stage, stem: Option<&str>, error| SongError {
        song: song.id.clone(),
        stage,
        stem: stem.map(str::to_string),
        error,
    };
    let block_size = opts.block_size.max(1);
    let spec = song.spec;
    let target = song.target_frames();
    let stems_dir = dir.join("stems");
    std::fs::create_dir_all(&stems_dir)
        .map_err(|e| fail(Stage::Output, None, StageError::io(&stems_dir, e)))?;

    // Opening sources and planning seams reads audio: with threads to
    // spare, every stem does it at once. The first failure in stem order
    // is reported, whatever finished first.
    let built: Vec<_> = if opts.threads > 1 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = song
                .stems
                .iter()
                .map(|stem| scope.spawn(|| build_stem(song, stem, &stems_dir, block_size)))
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
        song.stems
            .iter()
            .map(|stem| build_stem(song, stem, &stems_dir, block_size))
            .collect()
    };
    let mut workers = Vec::new();
    for (stem, result) in song.stems.iter().zip(built) {
        workers.push(result.map_err(|(stage, e)| fail(stage, Some(&stem.name), e))?);
    }
    let infos: Vec<AlignInfo> = workers.iter().map(|w| w.aligner.info().clone()).collect();
    let master_path = dir.join("master.wav");
    // Normalising or limiting needs a second pass: the mix is first written
    // unclipped in float beside the master, then the bus runs over it.
    let two_pass = song.master.normalize_lufs.is_some() || song.master.limit_true_peak_db.is_some();
    let pre_path = dir.join("master.pre.wav");
    let (first_path, first_spec, first_clip) = if two_pass {
        (
            &pre_path,
            StreamSpec {
                format: SampleFormat::Float,
                ..spec
            },
            Clip::None,
        )
    } else {
        (&master_path, spec, song.master.clip)
    };
    let master_writer = WavOut::create(
        first_path,
        first_spec,
        song.dither,
        stem_key(song.seed, "master.wav"),
    )
    .map_err(|e| fail(Stage::Write, None, e))?;
    let gains = song
        .stems
        .iter()
        .map(|s| StemGain::new(s, spec.channels))
        .collect();
    let mixer = Mixer::new(gains, first_clip, block_size, spec.channels);

    let failure = Failure {
        song: &song.id,
        first: Mutex::new(None),
        stop: AtomicBool::new(false),
        interrupt,
    };
    let mut stem_figures: Vec<Option<StemFigures>> = vec![None; workers.len()];
    let master = MasterStage {
        mixer,
        writer: master_writer,
        stats: StreamStats::default(),
        loudness: LoudnessMeter::new(spec.channels, spec.sample_rate),
        envelope: Envelope::new(target.0),
        block: Block::new(spec.channels, block_size),
    };
    let limits = (!two_pass).then_some(&song.verify);
    let mut master_result = None;

    // The master and the stems are shared out over the song's threads,
    // the master counting as one stem: item i (master = 0, stem k = k + 1)
    // goes to thread i % threads. The song's own thread is thread 0.
    let threads = opts.threads.clamp(1, workers.len() + 1);
    let mut groups: Vec<Vec<ThreadStem>> = (0..threads).map(|_| Vec::new()).collect();
    let mut feeds: Vec<Feed> = Vec::new();
    for (k, (worker, figures)) in workers.into_iter().zip(stem_figures.iter_mut()).enumerate() {
        let group = (k + 1) % threads;
        if group == 0 {
            feeds.push(Feed::Inline {
                worker: Box::new(worker),
                block: Block::new(spec.channels, block_size),
                figures,
            });
            continue;
        }
        let (full_tx, full_rx) = bounded::<Block>(CHANNEL_CAPACITY);
        let (free_tx, free_rx) = bounded::<Block>(CHANNEL_CAPACITY + 1);
        for _ in 0..CHANNEL_CAPACITY + 1 {
            let _ = free_tx.send(Block::new(spec.channels, block_size));
        }
        feeds.push(Feed::Thread {
            full: full_rx,
            free: free_tx,
        });
        groups[group].push(ThreadStem {
            worker,
            figures,
            free: free_rx,
            full: full_tx,
        });
    }
    std::thread::scope(|scope| {
        for stems in groups.into_iter().skip(1) {
            let failure = &failure;
            // The scope joins the threads when it ends.
            scope.spawn(move || run_stems(stems, target, spec, failure));
        }
        master_result = run_master(master, &mut feeds, target, limits, &failure, progress);
        // Closing the channels releases any thread still waiting.
        for feed in feeds {
            if let Feed::Inline {
                worker, figures, ..
            } = feed
                && master_result.is_some()
            {
                let name = worker.name.clone();
                match worker.finish(target, spec) {
                    Ok(f) => *figures = Some(f),
                    Err((stage, e)) => failure.record(stage, Some(&name), e),
                }
            }
        }
    });

    if let Some(e) = failure
        .first
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        return Err(e);
    }
    if interrupt.load(Ordering::Relaxed) {
        return Err(fail(Stage::Mix, None, StageError::Cancelled));
    }
    let mut master = master_result.ok_or_else(|| fail(Stage::Mix, None, StageError::Cancelled))?;
    if two_pass {
        master = master_pass(
            song,
            &pre_path,
            &master_path,
            &master,
            block_size,
            interrupt,
        )
        .map_err(|(stage, e)| fail(stage, None, e))?;
        let _ = std::fs::remove_file(&pre_path);
    }
    verify::check_header(&master_path, spec, target).map_err(|e| fail(Stage::Verify, None, e))?;

    // Every worker that returned no levels recorded why (handled above),
    // unless it was cancelled: then the song as a whole was cancelled.
    let levels: Option<Vec<StemFigures>> = stem_figures.into_iter().collect();
    let levels = levels.ok_or_else(|| fail(Stage::Mix, None, StageError::Cancelled))?;
    let stems = song
        .stems
        .iter()
        .zip(infos)
        .zip(levels)
        .map(|((stem, align), (levels, loudness, envelope))| {
            let outcome = StemOutcome {
                name: stem.name.clone(),
                align,
                levels,
                loudness,
                file: format!("stems/{}.wav", stem.name),
            };
            (outcome, envelope)
        })
        .unzip::<_, _, Vec<_>, Vec<_>>();
    let (stems, stem_envelopes) = stems;
    Ok(SongOutcome {
        stems,
        master,
        stem_envelopes,
    })
}

/// Opens a stem's source and builds its processors and writer.
fn build_stem(
    song: &SongPlan,
    stem: &StemPlan,
    dir: &Path,
    block_size: usize,
) -> Result<StemWorker, (Stage, StageError)> {
    let spec = song.spec;
    let src = source::open(song, &stem.name, &stem.source).map_err(|e| (Stage::Source, e))?;
    let settings = AlignSettings {
        mode: stem.align,
        rhythmic: stem.rhythmic,
        target: song.target_frames(),
        sample_rate: spec.sample_rate,
        crossfade_ms: stem.crossfade_ms,
        fade_ms: stem.fade_ms,
    };
    let aligner =
        Aligner::new(src, spec.channels, block_size, settings).map_err(|e| (Stage::Align, e))?;
    let effects = EffectChain::new(&stem.effects, spec.sample_rate, spec.channels)
        .map_err(|e| (Stage::Effects, e))?;
    let path = dir.join(format!("{}.wav", stem.name));
    let writer = WavOut::create(&path, spec, song.dither, stem_key(song.seed, &stem.name))
        .map_err(|e| (Stage::Write, e))?;
    Ok(StemWorker {
        name: stem.name.clone(),
        aligner,
        effects,
        stats: StreamStats::default(),
        loudness: LoudnessMeter::new(spec.channels, spec.sample_rate),
        envelope: Envelope::new(song.target_frames().0),
        writer,
        path,
    })
}

/// A stem rendered on a thread of its song, feeding the mixer through
/// channels.
struct ThreadStem<'a> {
    worker: StemWorker,
    figures: &'a mut Option<StemFigures>,
    free: Receiver<Block>,
    full: Sender<Block>,
}

/// A song thread's loop: its stems take turns, a block each, until all
/// have delivered their frames; each stem's figures are filled in, or an
/// error recorded.
fn run_stems(
    mut stems: Vec<ThreadStem<'_>>,
    target: Frames,
    spec: StreamSpec,
    failure: &Failure<'_>,
) {
    let step = |s: &mut ThreadStem<'_>| -> Result<bool, (Stage, StageError)> {
        if failure.stopped() {
            return Err((Stage::Source, StageError::Cancelled));
        }
        let Ok(mut block) = s.free.recv() else {
            return Err((Stage::Mix, StageError::Cancelled));
        };
        if !s.worker.produce(&mut block, spec.channels)? {
            return Ok(false);
        }
        s.full
            .send(block)
            .map_err(|_| (Stage::Mix, StageError::Cancelled))?;
        Ok(true)
    };
    // Stems end together: they all deliver `target` frames in blocks of
    // the same size.
    let mut running = true;
    while running {
        for s in stems.iter_mut() {
            match step(s) {
                Ok(more) => running = more,
                Err((stage, e)) => {
                    failure.record(stage, Some(&s.worker.name), e);
                    return;
                }
            }
        }
    }
    for s in stems {
        let name = s.worker.name.clone();
        match s.worker.finish(target, spec) {
            Ok(f) => *s.figures = Some(f),
            Err((stage, e)) => failure.record(stage, Some(&name), e),
        }
    }
}

/// The mixer's state, owned by the song's own thread.
struct MasterStage {
    mixer: Mixer,
    writer: WavOut,
    stats: StreamStats,
    loudness: LoudnessMeter,
    envelope: Envelope,
    block: Block,
}

/// Mixes until every stem delivered `target` frames; returns the master's
/// measurements, or `None` if the song stopped.
fn run_master(
    mut m: MasterStage,
    inputs: &mut [Feed<'_>],
    target: Frames,
    limits: Option<&VerifyLimits>,
    failure: &Failure<'_>,
    progress: &(dyn Fn(Frames) + Sync),
) -> Option<MasterOutcome> {
    let channels = m.block.channels();
    let mut done = 0u64;
    while done < target.0 {
        if failure.stopped() {
            failure.record(Stage::Mix, None, StageError::Cancelled);
            return None;
        }
        let frames = (target.0 - done).min(m.block.capacity() as u64) as usize;
        m.mixer.begin(frames, channels);
        for (i, feed) in inputs.iter_mut().enumerate() {
            match feed {
                Feed::Thread { full, free } => {
                    // A closed channel means that stem failed and recorded why.
                    let block = full.recv().ok()?;
                    debug_assert_eq!(block.frames(), frames, "stems deliver blocks in lockstep");
                    m.mixer.add(i, &block);
                    let _ = free.send(block);
                }
                Feed::Inline { worker, block, .. } => {
                    match worker.produce(block, channels as u16) {
                        Ok(true) => m.mixer.add(i, block),
                        // Stems end together at the target; a short one is
                        // caught by its frame check when it finishes.
                        Ok(false) => {}
                        Err((stage, e)) => {
                            failure.record(stage, Some(&worker.name), e);
                            return None;
                        }
                    }
                }
            }
        }
        m.block.set_frames(frames);
        m.mixer.finish(&mut m.block);
        m.stats.update(&m.block);
        m.loudness.update(&m.block);
        m.envelope.update(&m.block);
        if let Err(e) = m.writer.write(&m.block) {
            failure.record(Stage::Write, None, e);
            return None;
        }
        done += frames as u64;
        progress(Frames(done));
    }
    let checks = m
        .stats
        .check_finite(channels as u16)
        .and_then(|_| m.stats.check_frames(target))
        .and_then(|_| match limits {
            Some(l) => verify::check_master(&m.stats, &m.loudness.loudness(), l),
            None => Ok(()),
        });
    if let Err(e) = checks {
        failure.record(Stage::Verify, None, e);
        return None;
    }
    if let Err(e) = m.writer.finish() {
        failure.record(Stage::Write, None, e);
        return None;
    }
    Some(MasterOutcome {
        levels: m.stats.summary(),
        clip_ratio: m.stats.clip_ratio(),
        loudness: m.loudness.loudness(),
        file: "master.wav".into(),
        envelope: m.envelope,
    })
}

/// The second master pass: reads the unclipped float mix, applies the
/// normalisation gain, the true-peak limiter and the clip, and writes the
/// master in its final format, measuring it again. The limiter's latency is
/// compensated, so the master still starts at sample 0 and has T frames.
fn master_pass(
    song: &SongPlan,
    pre: &Path,
    out: &Path,
    first: &MasterOutcome,
    block_size: usize,
    interrupt: &AtomicBool,
) -> Result<MasterOutcome, (Stage, StageError)> {
    let spec = song.spec;
    let target = song.target_frames().0;
    let gain = match (song.master.normalize_lufs, first.loudness.lufs) {
        (None, _) => 1.0,
        (Some(want), Some(got)) => 10f64.powf((want - got) / 20.0),
        (Some(_), None) => {
            return Err((
                Stage::Mix,
                StageError::Invalid("cannot normalise the loudness of a silent master".into()),
            ));
        }
    };
    let mut bus = MasterBus::new(
        gain as f32,
        song.master.limit_true_peak_db,
        song.master.clip,
        spec,
    );
    let delay = bus.latency();
    let mut reader = FloatReader::open(pre).map_err(|e| (Stage::Mix, e))?;
    let mut writer = WavOut::create(out, spec, song.dither, stem_key(song.seed, "master.wav"))
        .map_err(|e| (Stage::Write, e))?;
    let mut stats = StreamStats::default();
    let mut loudness = LoudnessMeter::new(spec.channels, spec.sample_rate);
    let mut envelope = Envelope::new(target);
    let mut block = Block::new(spec.channels, block_size);
    let (mut read, mut written) = (0u64, 0u64);
    while written < target {
        if interrupt.load(Ordering::Relaxed) {
            return Err((Stage::Mix, StageError::Cancelled));
        }
        let frames = (target + delay as u64 - read).min(block_size as u64) as usize;
        block.set_frames(frames);
        // Past the mix's end, silence flushes the limiter's lookahead.
        let mixed =
            target.saturating_sub(read).min(frames as u64) as usize * spec.channels as usize;
        let (head, tail) = block.samples_mut().split_at_mut(mixed);
        reader.read_exact(head).map_err(|e| (Stage::Mix, e))?;
        tail.fill(0.0);
        read += frames as u64;
        bus.process(&mut block);
        // Drop the limiter's first `delay` frames of latency.
        let skip = (delay as u64)
            .saturating_sub(read - frames as u64)
            .min(frames as u64) as usize;
        let keep = (frames - skip).min((target - written) as usize);
        if keep == 0 {
            continue;
        }
        if skip > 0 {
            let ch = spec.channels as usize;
            block
                .samples_mut()
                .copy_within(skip * ch..(skip + keep) * ch, 0);
        }
        block.set_frames(keep);
        stats.update(&block);
        loudness.update(&block);
        envelope.update(&block);
        writer.write(&block).map_err(|e| (Stage::Write, e))?;
        written += keep as u64;
    }
    writer.finish().map_err(|e| (Stage::Write, e))?;
    let outcome = MasterOutcome {
        levels: stats.summary(),
        clip_ratio: stats.clip_ratio(),
        loudness: loudness.loudness(),
        file: "master.wav".into(),
        envelope,
    };
    stats
        .check_finite(spec.channels)
        .and_then(|_| stats.check_frames(Frames(target)))
        .and_then(|_| verify::check_master(&stats, &outcome.loudness, &song.verify))
        .map_err(|e| (Stage::Verify, e))?;
    Ok(outcome)
}
