//! Shares a song's stems and its mixer out over the song's threads and
//! moves blocks between them through bounded channels of recycled blocks.
//! The first real error stops every thread of the song.
//!
//! Why a shared pool and not stems fixed to threads: stems cost very
//! different amounts (a FLAC take resampled and filtered costs several
//! times a WAV at the song's rate), and the mixer takes blocks in
//! lockstep, so a thread holding the costly stems set the pace while the
//! other waited (the recorded-stems benchmark used 1.6 of 2 cores). Any
//! thread now makes the next block of any stem that has a free block; a
//! stem's mutex keeps its blocks in order, so the bytes do not depend on
//! which thread made them.

use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender, TryRecvError, bounded};

use crate::error::{SongError, Stage, StageError, StageFailure};
use crate::types::{Block, Frames};

use super::master::{MasterOutcome, MixStage};
use super::stem::{StemFigures, StemWorker};

/// Blocks a stem may have made ahead of the mixer; one more circulates.
pub const CHANNEL_CAPACITY: usize = 2;

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

/// A stem in the song's pool: any thread may make its next block, one at
/// a time (the mutex around it), into a free block from the mixer.
struct Slot<'a> {
    /// `None` once the stem finished, failed or was cancelled.
    worker: Option<StemWorker>,
    figures: &'a mut Option<StemFigures>,
    free: Receiver<Block>,
    /// Dropped with the worker, so a mixer waiting on it is released.
    full: Option<Sender<Block>>,
}

/// What one turn at a stem did.
#[derive(Clone, Copy, PartialEq)]
enum Turn {
    Produced,
    /// No free block: the mixer has not taken the stem's last ones yet.
    Idle,
    Done,
}

impl Slot<'_> {
    /// Makes the stem's next block if a free one is waiting; finishes the
    /// stem once it has delivered all its frames.
    fn turn(&mut self, failure: &Failure<'_>) -> Turn {
        let Some(worker) = self.worker.as_mut() else {
            return Turn::Done;
        };
        if failure.stopped() {
            return self.end(Err(StageFailure::cancelled(Stage::Source)), failure);
        }
        let Ok(mut block) = self.free.try_recv() else {
            return Turn::Idle;
        };
        match worker.produce(&mut block) {
            Ok(true) => match self.full.as_ref().map(|full| full.send(block)) {
                Some(Ok(())) => Turn::Produced,
                _ => self.end(Err(StageFailure::cancelled(Stage::Mix)), failure),
            },
            Ok(false) => self.end(Ok(()), failure),
            Err(f) => self.end(Err(f), failure),
        }
    }

    /// Ends the stem: finished (its figures kept, or its last check's
    /// failure recorded) or stopped by `why`.
    fn end(&mut self, why: Result<(), StageFailure>, failure: &Failure<'_>) -> Turn {
        self.full = None;
        if let Some(worker) = self.worker.take() {
            let name = worker.name().to_string();
            match why.and_then(|()| worker.finish()) {
                Ok(f) => *self.figures = Some(f),
                Err(f) => failure.record(Some(&name), f),
            }
        }
        Turn::Done
    }
}

/// The mixer's end of a stem: where its blocks arrive and go back.
struct Feed {
    full: Receiver<Block>,
    free: Sender<Block>,
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
    let helpers = threads.clamp(1, workers.len() + 1) - 1;
    let (slots, feeds) = pool(workers, &mut figures, &blank);
    let mut outcome = None;
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            // The scope joins the threads when it ends.
            scope.spawn(|| help(&slots, failure));
        }
        outcome = run_mix(mix, &feeds, &slots, failure, progress);
        // Closing the mixer's ends releases any stem still waiting; the
        // stems' last turns finish their files.
        drop(feeds);
        help(&slots, failure);
    });
    (outcome, figures)
}

/// The stems' slots and the mixer's feeds, with the blocks each stem
/// circulates (one more than its channel holds).
fn pool<'a>(
    workers: Vec<StemWorker>,
    figures: &'a mut [Option<StemFigures>],
    blank: &Block,
) -> (Vec<Mutex<Slot<'a>>>, Vec<Feed>) {
    let mut slots = Vec::new();
    let mut feeds = Vec::new();
    for (worker, figures) in workers.into_iter().zip(figures.iter_mut()) {
        // Room for every block the stem has, so a turn never blocks on a
        // send: a thread holding a stem's turn may be the mixer itself.
        let (full_tx, full_rx) = bounded::<Block>(CHANNEL_CAPACITY + 1);
        let (free_tx, free_rx) = bounded::<Block>(CHANNEL_CAPACITY + 1);
        for _ in 0..CHANNEL_CAPACITY + 1 {
            let _ = free_tx.send(blank.clone());
        }
        slots.push(Mutex::new(Slot {
            worker: Some(worker),
            figures,
            free: free_rx,
            full: Some(full_tx),
        }));
        feeds.push(Feed {
            full: full_rx,
            free: free_tx,
        });
    }
    (slots, feeds)
}

/// The stem, unless another thread is taking its turn.
fn try_slot<'s, 'a>(slot: &'s Mutex<Slot<'a>>) -> Option<MutexGuard<'s, Slot<'a>>> {
    match slot.try_lock() {
        Ok(s) => Some(s),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// A helper thread's loop: turns at whichever stems have free blocks,
/// until every stem is done; when none has, it waits for the mixer to
/// free one.
fn help(slots: &[Mutex<Slot<'_>>], failure: &Failure<'_>) {
    let mut done = vec![false; slots.len()];
    let mut first = 0;
    while done.contains(&false) {
        let mut produced = false;
        let mut waiting = Vec::new();
        for k in (0..slots.len()).map(|i| (first + i) % slots.len()) {
            if done[k] {
                continue;
            }
            match try_slot(&slots[k]).map(|mut s| (s.turn(failure), s.free.clone())) {
                Some((Turn::Done, _)) => done[k] = true,
                Some((Turn::Produced, _)) => produced = true,
                Some((Turn::Idle, free)) => waiting.push(free),
                None => {}
            }
        }
        // Start the next round one stem on, so no stem always waits last.
        first = (first + 1) % slots.len();
        if !produced {
            wait_for_any(&waiting);
        }
    }
}

/// Blocks until one of `free` has a block (briefly when there are none to
/// wait on: then the stems left are in other threads' turns).
fn wait_for_any(free: &[Receiver<Block>]) {
    const PAUSE: Duration = Duration::from_millis(1);
    if free.is_empty() {
        std::thread::sleep(PAUSE / 10);
        return;
    }
    let mut select = Select::new();
    for r in free {
        select.recv(r);
    }
    let _ = select.ready_timeout(PAUSE);
}

/// Mixes until every stem delivered its frames; returns the mix's
/// figures, or `None` if the song stopped.
fn run_mix(
    mut mix: MixStage,
    feeds: &[Feed],
    slots: &[Mutex<Slot<'_>>],
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
        for (i, (feed, slot)) in feeds.iter().zip(slots).enumerate() {
            // A closed channel means that stem failed and recorded why.
            let block = feed.next(slot, slots, failure)?;
            debug_assert_eq!(block.frames(), frames, "stems deliver blocks in lockstep");
            mix.add(i, &block);
            let _ = feed.free.send(block);
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

impl Feed {
    /// The stem's next block: made here when no other thread is making it
    /// (the only way with one thread); while another thread makes it, this
    /// one makes other stems' blocks rather than wait.
    fn next(&self, slot: &Mutex<Slot<'_>>, slots: &[Mutex<Slot<'_>>], failure: &Failure<'_>) -> Option<Block> {
        const PAUSE: Duration = Duration::from_millis(1);
        let produced = |s: &Mutex<Slot<'_>>| try_slot(s).map(|mut s| s.turn(failure)) == Some(Turn::Produced);
        loop {
            match self.full.try_recv() {
                Ok(block) => return Some(block),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            if produced(slot) || slots.iter().any(produced) {
                continue;
            }
            // Nothing to make: its block is on its way, or it ended early
            // (its frame check says why) and the channel is closing.
            match self.full.recv_timeout(PAUSE) {
                Ok(block) => return Some(block),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}
