//! Shares a song's stems and its mixer out over the song's threads and
//! moves blocks between them: bounded channels of recycled blocks between
//! threads, direct calls within one. The first real error stops every
//! thread of the song.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::error::{SongError, Stage, StageError, StageFailure};
use crate::types::{Block, Frames};

use super::master::{MasterOutcome, MixStage};
use super::stem::{StemFigures, StemWorker};

/// Blocks in flight per stem channel; one more circulates in each worker.
pub const CHANNEL_CAPACITY: usize = 2;

/// The mixer's and master's CPU time per frame (mix, meters, file), in the
/// units of [`StemWorker::cost`]: measured 1.2 with one stem, and each
/// stem mixed adds a little.
const MASTER_COST: f32 = 1.2;
const MIX_COST_PER_STEM: f32 = 0.05;

/// Shared between a song's threads: the first real error stops the rest.
pub(super) struct Failure<'a> {
    song: &'a str,
    first: Mutex<Option<SongError>>,
    stop: AtomicBool,
    interrupt: &'a AtomicBool,
}

impl<'a> Failure<'a> {
    /// No failure yet, in song `song`; `interrupt` stops it from outside.
    pub(super) fn new(song: &'a str, interrupt: &'a AtomicBool) -> Failure<'a> {
        Failure {
            song,
            first: Mutex::new(None),
            stop: AtomicBool::new(false),
            interrupt,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.interrupt.load(Ordering::Relaxed)
    }

    /// Stops the song; keeps `failure` (in `stem`, if in one) unless an
    /// error came first or it is only a cancellation.
    fn record(&self, stem: Option<&str>, failure: StageFailure) {
        self.stop.store(true, Ordering::Relaxed);
        if matches!(failure.error, StageError::Cancelled) {
            return;
        }
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| failure.in_song(self.song, stem));
    }

    /// The first real error, if any.
    pub(super) fn into_error(self) -> Option<SongError> {
        self.first.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

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

/// A stem rendered on a thread of its song, feeding the mixer through
/// channels.
struct ThreadStem<'a> {
    worker: StemWorker,
    figures: &'a mut Option<StemFigures>,
    free: Receiver<Block>,
    full: Sender<Block>,
}

/// Renders the stems and mixes them over `threads` threads (the calling
/// one included). Returns the mix's figures, `None` if the song stopped
/// (`failure` says why), and each stem's figures, `None` where it failed
/// or was cancelled.
pub(super) fn run(
    workers: Vec<StemWorker>,
    mix: MixStage,
    threads: usize,
    block_size: usize,
    failure: &Failure<'_>,
    progress: &(dyn Fn(Frames) + Sync),
) -> (Option<MasterOutcome>, Vec<Option<StemFigures>>) {
    let mut figures: Vec<Option<StemFigures>> = vec![None; workers.len()];
    let blank = Block::new(mix.channels(), block_size);
    let (groups, mut feeds) = assign(workers, &mut figures, threads, &blank);
    let mut outcome = None;
    std::thread::scope(|scope| {
        for stems in groups.into_iter().skip(1).filter(|g| !g.is_empty()) {
            // The scope joins the threads when it ends.
            scope.spawn(move || run_stems(stems, failure));
        }
        outcome = run_mix(mix, &mut feeds, failure, progress);
        // Closing the channels releases any thread still waiting.
        for feed in feeds {
            if let Feed::Inline {
                worker, figures, ..
            } = feed
                && outcome.is_some()
            {
                let name = worker.name().to_string();
                match worker.finish() {
                    Ok(f) => *figures = Some(f),
                    Err(f) => failure.record(Some(&name), f),
                }
            }
        }
    });
    (outcome, figures)
}

/// Shares the stems out by their estimated cost (see [`share`]). The
/// song's own thread is thread 0, the mixer's; its stems become inline
/// feeds, the others get channels. Returns each thread's stems and the
/// mixer's feeds.
fn assign<'a>(
    workers: Vec<StemWorker>,
    figures: &'a mut [Option<StemFigures>],
    threads: usize,
    blank: &Block,
) -> (Vec<Vec<ThreadStem<'a>>>, Vec<Feed<'a>>) {
    let threads = threads.clamp(1, workers.len() + 1);
    let costs: Vec<f32> = workers.iter().map(StemWorker::cost).collect();
    let thread_of = share(&costs, threads);
    let mut groups: Vec<Vec<ThreadStem>> = (0..threads).map(|_| Vec::new()).collect();
    let mut feeds: Vec<Feed> = Vec::new();
    for (k, (worker, figures)) in workers.into_iter().zip(figures.iter_mut()).enumerate() {
        let group = thread_of[k];
        if group == 0 {
            let (worker, block) = (Box::new(worker), blank.clone());
            feeds.push(Feed::Inline {
                worker,
                block,
                figures,
            });
            continue;
        }
        let (full_tx, full_rx) = bounded::<Block>(CHANNEL_CAPACITY);
        let (free_tx, free_rx) = bounded::<Block>(CHANNEL_CAPACITY + 1);
        for _ in 0..CHANNEL_CAPACITY + 1 {
            let _ = free_tx.send(blank.clone());
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
    (groups, feeds)
}

/// The thread (0..threads) that renders each stem of estimated per-frame
/// `costs`: costliest first, each to the least loaded thread, thread 0
/// starting with the mixer and master's share (longest processing time
/// first, a greedy split that is close to the best for a handful of
/// stems). Static, so each thread's memory
/// stays fixed: a shared pool that threads took stems from was measured
/// faster but its peak memory grew with the song's length. Ties go to the
/// lower stem and thread, so the split is deterministic (the output never
/// depends on it).
fn share(costs: &[f32], threads: usize) -> Vec<usize> {
    let mut load = vec![0.0f32; threads.max(1)];
    load[0] = MASTER_COST + MIX_COST_PER_STEM * costs.len() as f32;
    let mut order: Vec<usize> = (0..costs.len()).collect();
    // Stable: equal costs keep stem order.
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]));
    let mut thread_of = vec![0; costs.len()];
    for k in order {
        // `min_by` keeps the first of equal loads.
        let t = (0..load.len())
            .min_by(|&a, &b| load[a].total_cmp(&load[b]))
            .unwrap_or(0);
        thread_of[k] = t;
        load[t] += costs[k];
    }
    thread_of
}

/// A song thread's loop: its stems take turns, a block each, until all
/// have delivered their frames; each stem's figures are filled in, or an
/// error recorded.
fn run_stems(mut stems: Vec<ThreadStem<'_>>, failure: &Failure<'_>) {
    let step = |s: &mut ThreadStem<'_>| -> Result<bool, StageFailure> {
        if failure.stopped() {
            return Err(StageFailure::cancelled(Stage::Source));
        }
        let Ok(mut block) = s.free.recv() else {
            return Err(StageFailure::cancelled(Stage::Mix));
        };
        if !s.worker.produce(&mut block)? {
            return Ok(false);
        }
        s.full
            .send(block)
            .map_err(|_| StageFailure::cancelled(Stage::Mix))?;
        Ok(true)
    };
    // Stems end together: they all deliver `target` frames in blocks of
    // the same size.
    let mut running = true;
    while running {
        for s in stems.iter_mut() {
            match step(s) {
                Ok(more) => running = more,
                Err(f) => {
                    failure.record(Some(s.worker.name()), f);
                    return;
                }
            }
        }
    }
    for s in stems {
        let name = s.worker.name().to_string();
        match s.worker.finish() {
            Ok(f) => *s.figures = Some(f),
            Err(f) => failure.record(Some(&name), f),
        }
    }
}

/// Mixes until every stem delivered its frames; returns the mix's
/// figures, or `None` if the song stopped.
fn run_mix(
    mut mix: MixStage,
    feeds: &mut [Feed<'_>],
    failure: &Failure<'_>,
    progress: &(dyn Fn(Frames) + Sync),
) -> Option<MasterOutcome> {
    loop {
        let frames = mix.next_frames();
        if frames == 0 {
            break;
        }
        if failure.stopped() {
            failure.record(None, StageFailure::cancelled(Stage::Mix));
            return None;
        }
        mix.begin(frames);
        for (i, feed) in feeds.iter_mut().enumerate() {
            feed.mix_into(&mut mix, i, frames, failure)?;
        }
        match mix.end_block() {
            Ok(done) => progress(done),
            Err(f) => {
                failure.record(None, f);
                return None;
            }
        }
    }
    mix.finish().map_err(|f| failure.record(None, f)).ok()
}

impl Feed<'_> {
    /// Adds the stem's next block of `frames` frames to `mix` as stem
    /// `index`. `None` once the song must stop (the reason is recorded).
    fn mix_into(
        &mut self,
        mix: &mut MixStage,
        index: usize,
        frames: usize,
        failure: &Failure<'_>,
    ) -> Option<()> {
        match self {
            Feed::Thread { full, free } => {
                // A closed channel means that stem failed and recorded why.
                let block = full.recv().ok()?;
                debug_assert_eq!(block.frames(), frames, "stems deliver blocks in lockstep");
                mix.add(index, &block);
                let _ = free.send(block);
            }
            Feed::Inline { worker, block, .. } => match worker.produce(block) {
                Ok(true) => mix.add(index, block),
                // Stems end together at the target; a short one is caught
                // by its frame check when it finishes.
                Ok(false) => {}
                Err(f) => {
                    failure.record(Some(worker.name()), f);
                    return None;
                }
            },
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(costs: &[f32], threads: usize) -> Vec<f32> {
        let mut load = vec![0.0; threads];
        load[0] = MASTER_COST + MIX_COST_PER_STEM * costs.len() as f32;
        for (k, t) in share(costs, threads).into_iter().enumerate() {
            load[t] += costs[k];
        }
        load
    }

    #[test]
    fn dear_stems_are_spread_not_dealt_in_turn() {
        // The recorded-stems workload: FLAC + low-pass and WAV stems
        // alternating. Dealt in turn, every FLAC went to one thread.
        let (flac, wav) = (1.0 + 1.7 + 0.3 + 0.1, 1.0 + 0.05 + 0.3);
        let costs = [flac, wav, flac, wav, flac, wav, flac, wav];
        let thread_of = share(&costs, 2);
        let dear_on_0 = (0..8).step_by(2).filter(|&k| thread_of[k] == 0).count();
        assert_eq!(dear_on_0, 2, "{thread_of:?}");
        let load = loads(&costs, 2);
        assert!((load[0] - load[1]).abs() <= flac, "{load:?}");
    }

    #[test]
    fn spare_threads_take_a_stem_each_and_one_thread_takes_all() {
        let costs = [1.0, 3.0, 2.0];
        assert_eq!(share(&costs, 1), vec![0, 0, 0]);
        let mut spread = share(&costs, 4);
        spread.sort();
        assert_eq!(spread, vec![1, 2, 3]);
    }

    #[test]
    fn the_split_is_the_same_every_time_and_ties_keep_order() {
        let costs = [1.0; 6];
        assert_eq!(share(&costs, 3), share(&costs, 3));
        // Thread 0 starts at the master's 1.5: it takes a stem only once
        // the others carry 2.
        assert_eq!(share(&costs, 3), vec![1, 2, 1, 2, 0, 1]);
    }
}
