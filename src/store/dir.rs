//! The opened output folder, [`OutDir`]: the store's front door.
//!
//! Why apart from the parts it uses: opening OUT checks and creates the state
//! folders and runs the cleanup, and every public operation (lock, inspect,
//! stage, write a file of OUT) is one call into a part below it that takes
//! only the [`Layout`]. Nothing below imports this file, so the store's
//! imports run one way: here -> staging/publish/cleanup/atomic write ->
//! layout, names, marker, rename primitives, locks, errors.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::atomic;
use super::clean;
use super::error::StoreError;
use super::layout::Layout;
use super::lock::SongLock;
use super::marker::{self, Existing, Marker};
use super::names::{check_id, describe, is_valid_id};
use super::rename;
use super::swap::Staging;

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
    layout: Layout,
    /// What opening cleaned, for the store's tests.
    #[cfg(test)]
    cleanup: clean::Cleanup,
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
        let layout = Layout::new(out, rename::exchange_enabled());
        ensure_real_dir(&layout.state)?;
        for sub in [&layout.tmp, &layout.trash, &layout.locks, &layout.failed] {
            ensure_real_dir(sub)?;
        }
        let _cleanup = clean::run(&layout)?;
        Ok(OutDir {
            layout,
            #[cfg(test)]
            cleanup: _cleanup,
        })
    }

    /// An OutDir over an existing OUT without cleaning, to look at what a
    /// killed process left.
    #[cfg(test)]
    pub(super) fn open_without_cleanup(out: &Path) -> OutDir {
        OutDir {
            layout: Layout::new(out, true),
            cleanup: clean::Cleanup::default(),
        }
    }

    /// The output folder OUT.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// `OUT/<id>` (the id is not checked here).
    pub fn song_path(&self, id: &str) -> PathBuf {
        self.layout.song_path(id)
    }

    /// `OUT/.stemflow/failed/`, for the batch runner's records of failed songs.
    pub fn failed_dir(&self) -> PathBuf {
        self.layout.failed.clone()
    }

    /// What [`OutDir::open`] cleaned, restored or had to leave alone.
    #[cfg(test)]
    pub fn cleanup(&self) -> &clean::Cleanup {
        &self.cleanup
    }

    /// Flush every published file, the marker and the folders to disk before
    /// and after the swap (off by default: `kill -9` safety needs no fsync,
    /// only power-loss safety does).
    pub fn set_fsync(&mut self, on: bool) {
        self.layout.fsync = on;
    }

    /// Test hook: use the fallback swap (two renames) instead of
    /// `RENAME_EXCHANGE`, as on systems without it.
    #[cfg(test)]
    pub fn set_exchange(&mut self, on: bool) {
        self.layout.exchange = on;
    }

    /// Takes the song's lock without waiting: `Ok(None)` when another process
    /// or another handle in this process holds it (the song is busy). The
    /// lock is released when the returned guard drops.
    pub fn try_lock(&self, id: &str) -> Result<Option<SongLock>, StoreError> {
        self.layout.try_lock(id)
    }

    /// Whether `OUT/<id>` is absent, ours (with its marker) or not ours.
    pub fn inspect(&self, id: &str) -> Result<Existing, StoreError> {
        self.layout.inspect(id)
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
        if lock.id() != id || lock.path() != self.layout.lock_path(id) {
            return Err(StoreError::WrongLock {
                path: lock.path().to_path_buf(),
                id: id.to_string(),
            });
        }
        Staging::create(&self.layout, id, lock)
    }

    /// Replaces `OUT/<name>` by `bytes` in one rename: a reader sees the old
    /// file or the new one, never a part. Waits while another process
    /// writes the same name; the last writer wins.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        atomic::write_atomic(&self.layout, name, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::names::STATE_DIR;
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
