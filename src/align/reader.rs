//! Sequential and random reads of a source, frame-exact whatever the
//! block size. Both extension mechanisms (matched seams and grid-locked
//! loops) read the source this way, so the read-ahead logic lives once.

use crate::error::StageError;
use crate::source::Source;
use crate::types::{Block, Frames};

/// A source with a read-ahead block: `pull` hands out any number of
/// frames, `seek` moves anywhere.
pub(super) struct SourceReader {
    source: Box<dyn Source>,
    channels: usize,
    /// Read-ahead: frames `scratch_pos..scratch.frames()` are not yet
    /// consumed.
    scratch: Block,
    scratch_pos: usize,
    /// Source position of the next frame `pull` returns.
    pub pos: u64,
}

impl SourceReader {
    /// Wraps `source`; `block_size` sizes the read-ahead.
    pub fn new(source: Box<dyn Source>, channels: u16, block_size: usize) -> SourceReader {
        let mut scratch = Block::new(channels, block_size.max(1));
        scratch.set_frames(0);
        SourceReader {
            source,
            channels: channels as usize,
            scratch,
            scratch_pos: 0,
            pos: 0,
        }
    }

    /// The source's length in frames.
    pub fn len(&self) -> u64 {
        self.source.len().0
    }

    /// The source's estimated CPU time per frame ([`Source::cost`]).
    pub fn cost(&self) -> f32 {
        self.source.cost()
    }

    /// Moves the next `pull` to source frame `pos`.
    pub fn seek(&mut self, pos: u64) -> Result<(), StageError> {
        self.scratch.set_frames(0);
        self.scratch_pos = 0;
        self.pos = pos;
        self.source.seek(Frames(pos))
    }

    /// Copies the next `dst.len() / channels` frames into `dst`.
    pub fn pull(&mut self, dst: &mut [f32]) -> Result<(), StageError> {
        let ch = self.channels;
        let mut done = 0;
        while done < dst.len() {
            if self.scratch_pos == self.scratch.frames() {
                self.refill()?;
            }
            let avail = (self.scratch.frames() - self.scratch_pos) * ch;
            let take = avail.min(dst.len() - done);
            let from = self.scratch_pos * ch;
            dst[done..done + take].copy_from_slice(&self.scratch.samples()[from..from + take]);
            done += take;
            self.scratch_pos += take / ch;
        }
        self.pos += (dst.len() / ch) as u64;
        Ok(())
    }

    /// Fills the frames in use of `block` with the next frames. When the
    /// read-ahead is empty and one read of the source fills the block
    /// exactly, the two buffers trade places instead of being copied (the
    /// common case: whole blocks of a source played through).
    pub fn pull_block(&mut self, block: &mut Block) -> Result<(), StageError> {
        let frames = block.frames();
        let empty = self.scratch_pos == self.scratch.frames();
        if empty && frames > 0 && block.capacity() == self.scratch.capacity() {
            self.refill()?;
            if self.scratch.frames() == frames {
                std::mem::swap(block, &mut self.scratch);
                self.scratch.set_frames(0);
                self.scratch_pos = 0;
                self.pos += frames as u64;
                return Ok(());
            }
        }
        self.pull(block.samples_mut())
    }

    /// Reads the source's next block into the (consumed) read-ahead.
    fn refill(&mut self) -> Result<(), StageError> {
        self.scratch_pos = 0;
        if self.source.read(&mut self.scratch)? == 0 {
            return Err(StageError::Invalid(format!(
                "the source ended before its announced {} frames",
                self.source.len()
            )));
        }
        Ok(())
    }

    /// Reads `frames` frames starting at `pos` into a new interleaved
    /// vector (short windows only: seams, release analysis blocks).
    pub fn read_range(&mut self, pos: u64, frames: usize) -> Result<Vec<f32>, StageError> {
        self.seek(pos)?;
        let mut out = vec![0.0; frames * self.channels];
        self.pull(&mut out)?;
        Ok(out)
    }
}
