//! Where things are in an opened OUT, and the two settings a publish needs.
//!
//! Why a plain struct apart from [`OutDir`](super::OutDir): staging, publish,
//! cleanup and whole-file replacement only need paths and two flags, not the
//! opened store itself. Handing them this struct keeps the imports one way
//! (the store's front door uses them, they never use it), so each can be read
//! and tested knowing only what lies below it.

use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::lock::{self, SongLock};
use super::marker::{self, Existing};
use super::names::{STATE_DIR, check_id};

/// The folders of one OUT and how to publish into it.
#[derive(Debug)]
pub(super) struct Layout {
    /// OUT itself.
    pub(super) root: PathBuf,
    /// `OUT/.stemflow/`.
    pub(super) state: PathBuf,
    /// `OUT/.stemflow/tmp/`: staging folders and files being replaced.
    pub(super) tmp: PathBuf,
    /// `OUT/.stemflow/trash/`: replaced folders being deleted.
    pub(super) trash: PathBuf,
    /// `OUT/.stemflow/locks/`: one lock file per song.
    pub(super) locks: PathBuf,
    /// `OUT/.stemflow/failed/`: the batch runner's failed-song records.
    pub(super) failed: PathBuf,
    /// Flush files and folders to disk around a publish.
    pub(super) fsync: bool,
    /// Publish over an existing song with `RENAME_EXCHANGE` when available.
    pub(super) exchange: bool,
}

impl Layout {
    /// The layout of `out`, with fsync off.
    pub(super) fn new(out: &Path, exchange: bool) -> Layout {
        let state = out.join(STATE_DIR);
        Layout {
            root: out.to_path_buf(),
            tmp: state.join("tmp"),
            trash: state.join("trash"),
            locks: state.join("locks"),
            failed: state.join("failed"),
            state,
            fsync: false,
            exchange,
        }
    }

    /// `OUT/<id>` (the id is not checked here).
    pub(super) fn song_path(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// `OUT/.stemflow/locks/<id>.lock` (the id is not checked here).
    pub(super) fn lock_path(&self, id: &str) -> PathBuf {
        lock::lock_path(&self.locks, id)
    }

    /// Takes the song's lock without waiting; `Ok(None)` when it is held.
    pub(super) fn try_lock(&self, id: &str) -> Result<Option<SongLock>, StoreError> {
        check_id(id)?;
        lock::try_acquire(&self.locks, id)
    }

    /// Whether `OUT/<id>` is absent, ours or not ours.
    pub(super) fn inspect(&self, id: &str) -> Result<Existing, StoreError> {
        check_id(id)?;
        marker::inspect_dir(&self.song_path(id), id)
    }
}
