//! The output folder as a store of song folders that stemflow owns (SPEC §5,
//! §11 "Data safety").
//!
//! Why this module exists: several processes may share one OUT (retried
//! shards, overlapping runs), a run may be killed at any instant, and OUT may
//! hold folders stemflow never wrote. Everything that touches `OUT/<id>` goes
//! through here so that the rules hold in one place:
//!
//! - a song being rendered is held by an OS advisory lock ([`SongLock`],
//!   `OUT/.stemflow/locks/<id>.lock`); a second process gets `None` and
//!   reports the song busy;
//! - a song folder is built in `OUT/.stemflow/tmp/` ([`Staging`]) and
//!   published by an atomic swap, so `OUT/<id>` is at every instant the
//!   complete old folder or the complete new one, also under `kill -9`;
//! - a folder counts as ours only with the marker `OUT/<id>/.stemflow-song`
//!   ([`Marker`]); anything else is reported ([`Existing::NotOurs`]) and never
//!   touched;
//! - what a dead process left in `tmp/` and `trash/` is cleaned (or, for an
//!   interrupted fallback swap, put back) by the next [`OutDir::open`], and
//!   liveness is decided by the song's lock, never by a pid.
//!
//! Layout of the state folder:
//!
//! ```text
//! OUT/.stemflow/locks/<id>.lock        lock files (left in place: deleting races)
//! OUT/.stemflow/tmp/<id>.<pid>.<n>/    staging folders
//! OUT/.stemflow/trash/<id>.<pid>.<n>/  replaced folders being deleted
//! OUT/.stemflow/trash/<id>.<pid>.<n>.old/  an old folder moved aside by the
//!                                      fallback swap; restored if OUT/<id> is missing
//! OUT/.stemflow/failed/                for the batch runner's failed-song records
//! OUT/.stemflow/tmp/<name>.<pid>.<n>/<name>  a file of OUT (summary.json) being
//!                                      replaced, see [`OutDir::write_atomic`]
//! ```
//!
//! Test hooks: `STEMFLOW_FAULT_AT=swap:N` and `STEMFLOW_SWAP=rename`, see
//! [`Staging::publish`].

mod atomic;
mod clean;
mod error;
mod lock;
mod marker;
mod rename;
mod swap;

#[cfg(test)]
mod crash_tests;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use clean::Cleanup;
pub use error::StoreError;
pub use lock::SongLock;
pub use marker::{Existing, MARKER, MarkedFile, Marker};
pub use swap::Staging;

/// Name of the state folder inside OUT.
pub const STATE_DIR: &str = ".stemflow";

/// Whether `id` can name a song folder: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`,
/// the manifest's rule, checked again here because ids become file names.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_id(id: &str) -> Result<(), StoreError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(StoreError::BadId { id: id.to_string() })
    }
}

/// A process-unique name `<id>.<pid>.<n>` for tmp/ and trash/ entries; the id
/// comes first so a later run can find the lock that owns the entry.
fn unique_name(id: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{id}.{}.{n}", std::process::id())
}

/// What a file type is, for error messages.
fn describe(ft: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "FIFO";
        }
        if ft.is_socket() {
            return "socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "device";
        }
    }
    if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// Creates `path` as a directory if missing and checks that it is a real
/// directory (a symbolic link there is an error, not followed).
fn ensure_real_dir(path: &Path) -> Result<(), StoreError> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::io(path, None, e)),
    }
    let meta = fs::symlink_metadata(path).map_err(|e| StoreError::io(path, None, e))?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(StoreError::NotADirectory {
            path: path.to_path_buf(),
            id: None,
            found: describe(meta.file_type()),
        })
    }
}

/// An opened output folder: OUT with its state folder `OUT/.stemflow/`.
#[derive(Debug)]
pub struct OutDir {
    root: PathBuf,
    state: PathBuf,
    fsync: bool,
    exchange: bool,
    cleanup: Cleanup,
}

impl OutDir {
    /// Creates OUT and `OUT/.stemflow/{tmp,trash,locks,failed}` as needed,
    /// then cleans what dead processes left in `tmp/` and `trash/` (entries
    /// whose song lock is free), putting back an old song folder that an
    /// interrupted fallback swap had moved aside. OUT itself may be a
    /// symbolic link to a directory (the user named it); the state folders
    /// must be real directories.
    pub fn open(out: &Path) -> Result<OutDir, StoreError> {
        fs::create_dir_all(out).map_err(|e| StoreError::io(out, None, e))?;
        let meta = fs::metadata(out).map_err(|e| StoreError::io(out, None, e))?;
        if !meta.is_dir() {
            return Err(StoreError::NotADirectory {
                path: out.to_path_buf(),
                id: None,
                found: describe(meta.file_type()),
            });
        }
        let state = out.join(STATE_DIR);
        ensure_real_dir(&state)?;
        for sub in ["tmp", "trash", "locks", "failed"] {
            ensure_real_dir(&state.join(sub))?;
        }
        let mut dir = OutDir {
            root: out.to_path_buf(),
            state,
            fsync: false,
            exchange: rename::exchange_enabled(),
            cleanup: Cleanup::default(),
        };
        dir.cleanup = clean::run(&dir)?;
        Ok(dir)
    }

    /// An OutDir over an existing OUT without cleaning, to look at what a
    /// killed process left.
    #[cfg(test)]
    fn open_without_cleanup(out: &Path) -> OutDir {
        OutDir {
            root: out.to_path_buf(),
            state: out.join(STATE_DIR),
            fsync: false,
            exchange: true,
            cleanup: Cleanup::default(),
        }
    }

    /// The output folder OUT.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `OUT/<id>` (the id is not checked here).
    pub fn song_path(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// `OUT/.stemflow/failed/`, for the batch runner's records of failed songs.
    pub fn failed_dir(&self) -> PathBuf {
        self.state.join("failed")
    }

    /// What [`OutDir::open`] cleaned, restored or had to leave alone.
    pub fn cleanup(&self) -> &Cleanup {
        &self.cleanup
    }

    /// Flush every published file, the marker and the folders to disk before
    /// and after the swap (off by default: `kill -9` safety needs no fsync,
    /// only power-loss safety does).
    pub fn set_fsync(&mut self, on: bool) {
        self.fsync = on;
    }

    /// Test hook: use the fallback swap (two renames) instead of
    /// `RENAME_EXCHANGE`, as on systems without it.
    #[doc(hidden)]
    pub fn set_exchange(&mut self, on: bool) {
        self.exchange = on;
    }

    /// Takes the song's lock without waiting: `Ok(None)` when another process
    /// or another handle in this process holds it (the song is busy). The
    /// lock is released when the returned guard drops.
    pub fn try_lock(&self, id: &str) -> Result<Option<SongLock>, StoreError> {
        check_id(id)?;
        lock::try_acquire(&self.state.join("locks"), id)
    }

    /// Whether `OUT/<id>` is absent, ours (with its marker) or not ours.
    pub fn inspect(&self, id: &str) -> Result<Existing, StoreError> {
        check_id(id)?;
        marker::inspect_dir(&self.song_path(id), id)
    }

    /// Checks that every file the marker lists exists in `OUT/<id>` as a
    /// regular file with the recorded size; the error says which is not.
    pub fn verify_complete(&self, id: &str, marker: &Marker) -> Result<(), String> {
        if !is_valid_id(id) {
            return Err(format!("invalid song id {id:?}"));
        }
        marker::verify_dir(&self.song_path(id), marker)
    }

    /// Creates a fresh staging folder `OUT/.stemflow/tmp/<id>.<pid>.<n>/` for
    /// the song whose lock the caller holds; it is removed on drop unless
    /// published.
    pub fn stage<'a>(&'a self, id: &str, lock: &'a SongLock) -> Result<Staging<'a>, StoreError> {
        check_id(id)?;
        if lock.id() != id || lock.path() != self.lock_path(id) {
            return Err(StoreError::WrongLock {
                path: lock.path().to_path_buf(),
                id: id.to_string(),
            });
        }
        Staging::create(self, id, lock)
    }

    fn lock_path(&self, id: &str) -> PathBuf {
        lock::lock_path(&self.state.join("locks"), id)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.state.join("tmp")
    }

    fn trash_dir(&self) -> PathBuf {
        self.state.join("trash")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_the_state_folders() {
        let t = tempfile::tempdir().expect("tempdir");
        let out = t.path().join("a/b");
        let dir = OutDir::open(&out).expect("open");
        for sub in ["tmp", "trash", "locks", "failed"] {
            assert!(out.join(STATE_DIR).join(sub).is_dir(), "{sub}");
        }
        assert_eq!(dir.root(), out);
        assert_eq!(dir.failed_dir(), out.join(".stemflow/failed"));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_or_file_as_state_folder_is_an_error_and_kept() {
        let t = tempfile::tempdir().expect("tempdir");
        let elsewhere = t.path().join("elsewhere");
        fs::create_dir(&elsewhere).expect("mkdir");
        let out = t.path().join("out");
        fs::create_dir(&out).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, out.join(STATE_DIR)).expect("symlink");
        let err = OutDir::open(&out).expect_err("symlink state dir");
        assert!(
            matches!(
                err,
                StoreError::NotADirectory {
                    found: "symbolic link",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            fs::read_dir(&elsewhere).expect("read").next().is_none(),
            "followed"
        );
        assert!(out.join(STATE_DIR).is_symlink(), "removed");

        let out2 = t.path().join("out2");
        fs::create_dir_all(out2.join(STATE_DIR)).expect("mkdir");
        fs::write(out2.join(STATE_DIR).join("tmp"), b"x").expect("write");
        let err = OutDir::open(&out2).expect_err("file as tmp dir");
        assert!(
            matches!(
                err,
                StoreError::NotADirectory {
                    found: "regular file",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(fs::read(out2.join(".stemflow/tmp")).expect("read"), b"x");
    }

    #[test]
    fn ids_that_could_escape_are_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        for bad in ["", "..", ".stemflow", "a/b", "-x", "a\0b", &"x".repeat(65)] {
            assert!(
                matches!(dir.try_lock(bad), Err(StoreError::BadId { .. })),
                "{bad:?}"
            );
            assert!(
                matches!(dir.inspect(bad), Err(StoreError::BadId { .. })),
                "{bad:?}"
            );
        }
        assert!(is_valid_id("demo-1.final_v2"));
    }

    #[test]
    fn stage_refuses_another_songs_lock() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        let lock = dir.try_lock("a").expect("lock").expect("free");
        let err = dir.stage("b", &lock).expect_err("wrong lock");
        assert!(matches!(err, StoreError::WrongLock { .. }), "{err}");
        let other = OutDir::open(&t.path().join("other")).expect("open");
        let err = other.stage("a", &lock).expect_err("lock of another OUT");
        assert!(matches!(err, StoreError::WrongLock { .. }), "{err}");
    }

    #[test]
    fn errors_name_the_path_and_song() {
        let e = StoreError::io("/x/y", Some("s1"), io::Error::other("boom"));
        assert_eq!(e.to_string(), "song \"s1\": /x/y: boom");
        let e = StoreError::io("/x/y", None, io::Error::other("boom"));
        assert_eq!(e.to_string(), "/x/y: boom");
    }
}
