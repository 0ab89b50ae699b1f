//! Arrangement (SPEC §9): a stem placed in some sections of the song.
//!
//! Two processors, because placement has two halves that belong at
//! different points of a stem's chain:
//!
//! - [`Arranger`] (before the effects) lays a `restart = "region"` stem out
//!   on the song's timeline: at each region it opens the source afresh and
//!   aligns it to that region's length with the stem's own strategy (so a
//!   looped stem still locks to its grid, counted from the region's start),
//!   and between regions it produces silence. Only one region's aligner is
//!   alive at a time, so memory does not grow with the number of regions
//!   or the length of the song.
//! - [`Gate`] (after the effects) multiplies by the placement's envelope:
//!   exactly 0 outside the regions, raised-cosine fades at their edges.
//!   It runs after the effects on purpose: an echo or a filter would
//!   otherwise ring past a region's end into what must be digital silence.
//!   The price is that an effect's tail is cut at the region's fade-out,
//!   which is what "the stem plays only here" means.

mod gate;

pub use gate::{Gate, PlacementInfo};

use std::ops::Range;

use crate::align::{AlignInfo, Aligner, Strategy};
use crate::error::{AtStage, Stage, StageFailure};
use crate::types::{Block, Frames};

/// Opens a stem's source aligned to a region of the given length.
pub type OpenRegion = Box<dyn FnMut(Frames) -> Result<Aligner, StageFailure> + Send>;

/// Where a stem's aligned audio comes from, before its effects.
pub enum Feed {
    /// One aligner over the whole song (an unplaced stem, or
    /// `restart = "song"`).
    Whole(Aligner),
    /// A fresh aligner per region, silence between.
    Regions(Arranger),
}

impl Feed {
    /// Fills `block` with the stem's next frames on the song's timeline;
    /// returns how many (0 at the end).
    pub fn read(&mut self, block: &mut Block) -> Result<usize, StageFailure> {
        match self {
            Feed::Whole(a) => a.read(block).at(Stage::Source),
            Feed::Regions(r) => r.read(block),
        }
    }

    /// What alignment decided (for a placed stem: in its first region).
    pub fn info(&self) -> &AlignInfo {
        match self {
            Feed::Whole(a) => a.info(),
            Feed::Regions(r) => &r.info,
        }
    }

    /// Estimated CPU time per song frame, as
    /// [`Source::cost`](crate::source::Source::cost): a placed stem's
    /// source runs only in its regions (priced as the first one's).
    pub fn cost(&self) -> f32 {
        match self {
            Feed::Whole(a) => a.cost(),
            Feed::Regions(r) => {
                let playing: u64 = r.regions.iter().map(|g| g.end - g.start).sum();
                let share = playing as f32 / r.target.max(1) as f32;
                r.current.as_ref().map_or(0.0, |a| a.cost() * share)
            }
        }
    }
}

/// A `restart = "region"` stem on the song's timeline: each region is the
/// source from its frame 0, aligned to the region's length; everything
/// else is silence.
pub struct Arranger {
    regions: Vec<Range<u64>>,
    target: u64,
    /// Song frame of the next output frame.
    pos: u64,
    /// Index of the region in progress, or of the next one.
    region: usize,
    /// The aligner of region `region`, once it is open.
    current: Option<Aligner>,
    open: OpenRegion,
    /// Frames `scratch_pos..` of `scratch` are aligned audio not yet used.
    scratch: Block,
    scratch_pos: usize,
    info: AlignInfo,
}

impl Arranger {
    /// An arrangement of `target` frames playing in `regions` (sorted,
    /// disjoint, inside the song). The first region's source is opened
    /// now, so a missing file fails the stem before anything is written.
    pub fn new(
        regions: Vec<Range<u64>>,
        target: Frames,
        channels: u16,
        block_size: usize,
        mut open: OpenRegion,
    ) -> Result<Arranger, StageFailure> {
        let current = match regions.first() {
            Some(r) => Some(open(Frames(r.end - r.start))?),
            None => None,
        };
        let info = current.as_ref().map_or(
            AlignInfo {
                strategy: Strategy::ZeroPad,
                source_frames: 0,
                seam_frames: None,
                seam_correlation: None,
                loop_frames: None,
                grid: None,
                release_frames: None,
            },
            |a| a.info().clone(),
        );
        let mut scratch = Block::new(channels, block_size.max(1));
        scratch.set_frames(0);
        Ok(Arranger {
            regions,
            target: target.0,
            pos: 0,
            region: 0,
            current,
            open,
            scratch,
            scratch_pos: 0,
            info,
        })
    }

    /// Fills `block` with the next frames; returns how many (0 at the end).
    pub fn read(&mut self, block: &mut Block) -> Result<usize, StageFailure> {
        let ch = block.channels();
        let want = (self.target - self.pos).min(block.capacity() as u64) as usize;
        block.set_frames(want);
        let mut filled = 0;
        while filled < want {
            let at = self.pos + filled as u64;
            let left = (want - filled) as u64;
            let dst = &mut block.samples_mut()[filled * ch..];
            let n = match self.regions.get(self.region).cloned() {
                Some(r) if at >= r.start => {
                    let n = (r.end - at).min(left) as usize;
                    self.fill_region(&mut dst[..n * ch], r.end - r.start)?;
                    if at + n as u64 == r.end {
                        self.next_region();
                    }
                    n
                }
                next => {
                    let end = next.map_or(self.target, |r| r.start);
                    let n = (end - at).min(left) as usize;
                    dst[..n * ch].fill(0.0);
                    n
                }
            };
            filled += n;
        }
        self.pos += want as u64;
        Ok(want)
    }

    /// Copies the current region's next aligned frames into `dst`, opening
    /// its source (`len` frames long) when the region starts.
    fn fill_region(&mut self, dst: &mut [f32], len: u64) -> Result<(), StageFailure> {
        let ch = self.scratch.channels();
        if self.current.is_none() {
            self.current = Some((self.open)(Frames(len))?);
        }
        let mut done = 0;
        while done < dst.len() {
            if self.scratch_pos == self.scratch.frames() {
                self.scratch_pos = 0;
                let aligner = self.current.as_mut().expect("opened above");
                if aligner.read(&mut self.scratch).at(Stage::Source)? == 0 {
                    return Err(StageFailure {
                        stage: Stage::Align,
                        error: crate::error::StageError::Invalid(format!(
                            "a region of {len} frames ended early"
                        )),
                    });
                }
            }
            let from = self.scratch_pos * ch;
            let take = (self.scratch.samples().len() - from).min(dst.len() - done);
            dst[done..done + take].copy_from_slice(&self.scratch.samples()[from..from + take]);
            done += take;
            self.scratch_pos += take / ch;
        }
        Ok(())
    }

    /// Closes the finished region's source and moves to the next region.
    fn next_region(&mut self) {
        self.current = None;
        self.scratch.set_frames(0);
        self.scratch_pos = 0;
        self.region += 1;
    }
}
