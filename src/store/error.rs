//! The store's error type.
//!
//! Why its own enum: the batch runner must tell a song that is not ours or
//! appeared meanwhile (a per-song failure, reported) from an I/O failure of
//! the state folder (the run cannot go on), and every message has to name
//! the path, and the song where known, without the caller adding context.

use std::io;
use std::path::PathBuf;

/// A failure of the store, with the path it concerns and the song where known.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system call failed.
    #[error("{}{}: {source}", song_prefix(.id), .path.display())]
    Io {
        path: PathBuf,
        id: Option<String>,
        #[source]
        source: io::Error,
    },
    /// Something other than a real directory (a file, a symbolic link, a
    /// device) sits where a folder is expected; it is neither followed nor
    /// removed.
    #[error("{}{}: expected a directory, found a {found}", song_prefix(.id), .path.display())]
    NotADirectory {
        path: PathBuf,
        id: Option<String>,
        found: &'static str,
    },
    /// The lock file is not a regular file.
    #[error("song {id:?}: {}: lock file is a {found}, not a regular file", .path.display())]
    BadLockFile {
        path: PathBuf,
        id: String,
        found: &'static str,
    },
    /// The song id cannot name a folder (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`).
    #[error("invalid song id {id:?}")]
    BadId { id: String },
    /// `OUT/<id>` exists but was not written by stemflow; left untouched.
    #[error("song {id:?}: {}: not written by stemflow ({why}); left untouched", .path.display())]
    NotOurs {
        path: PathBuf,
        id: String,
        why: String,
    },
    /// `OUT/<id>` appeared while publishing; it was not overwritten.
    #[error("song {id:?}: {}: appeared while publishing; not overwritten", .path.display())]
    Exists { path: PathBuf, id: String },
    /// The lock passed to [`OutDir::stage`](super::OutDir::stage) is not this song's lock in this OUT.
    #[error("song {id:?}: {}: is not the lock of this song", .path.display())]
    WrongLock { path: PathBuf, id: String },
    /// The staging folder holds something that cannot be published (a
    /// symbolic link, a special file, a name that is not UTF-8).
    #[error("song {id:?}: {}: {why}", .path.display())]
    Unpublishable {
        path: PathBuf,
        id: String,
        why: String,
    },
}

fn song_prefix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!("song {id:?}: "))
        .unwrap_or_default()
}

impl StoreError {
    /// Wraps an I/O error with its path and, where known, the song id.
    pub fn io(path: impl Into<PathBuf>, id: Option<&str>, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            id: id.map(str::to_string),
            source,
        }
    }
}
