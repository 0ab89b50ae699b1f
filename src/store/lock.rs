//! Per-song OS advisory locks, `OUT/.stemflow/locks/<id>.lock`.
//!
//! Why a lock and not a pid file: the kernel drops the lock the moment its
//! holder dies (also on `kill -9`), so "is the lock free" is the one reliable
//! answer to "is anybody still working on this song", where a pid may have
//! been reused. `std::fs::File::try_lock` is an exclusive `flock(2)` on Unix
//! (`LockFileEx` on Windows); it belongs to the open file description, so a
//! second handle in the same process is refused too.
//!
//! The lock files stay after use: deleting one while another process is
//! about to lock it would let two processes hold "the" lock on two
//! different files.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::names::describe;

/// Holds one song's lock; dropping it releases the lock (the file stays).
#[derive(Debug)]
pub struct SongLock {
    id: String,
    path: PathBuf,
    // Closing the file releases the lock.
    _file: File,
}

impl SongLock {
    /// The song id this lock is for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<locks>/<id>.lock`.
pub(super) fn lock_path(locks: &Path, id: &str) -> PathBuf {
    locks.join(format!("{id}.lock"))
}

/// Opens (creating if needed) the lock file without following a symbolic
/// link and without blocking on a FIFO, and checks it is a regular file.
fn open_lock_file(path: &Path, id: &str) -> Result<File, StoreError> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| {
        // O_NOFOLLOW on a symbolic link fails with ELOOP: say what is there.
        match fs::symlink_metadata(path) {
            Ok(m) if !m.is_file() => StoreError::BadLockFile {
                path: path.to_path_buf(),
                id: id.to_string(),
                found: describe(m.file_type()),
            },
            _ => StoreError::io(path, Some(id), e),
        }
    })?;
    let meta = file
        .metadata()
        .map_err(|e| StoreError::io(path, Some(id), e))?;
    if !meta.is_file() {
        return Err(StoreError::BadLockFile {
            path: path.to_path_buf(),
            id: id.to_string(),
            found: describe(meta.file_type()),
        });
    }
    Ok(file)
}

/// Tries to take the song's lock; `Ok(None)` when it is held elsewhere.
pub(super) fn try_acquire(locks: &Path, id: &str) -> Result<Option<SongLock>, StoreError> {
    let path = lock_path(locks, id);
    let file = open_lock_file(&path, id)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(SongLock {
            id: id.to_string(),
            path,
            _file: file,
        })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(StoreError::io(&path, Some(id), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::OutDir;
    use super::*;

    #[test]
    fn a_held_lock_excludes_a_second_handle_until_dropped() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        let first = dir.try_lock("song").expect("lock").expect("free");
        assert_eq!(first.id(), "song");
        assert!(first.path().ends_with(".stemflow/locks/song.lock"));
        // A second OutDir stands for a second process: same files, new handles.
        let other = OutDir::open(t.path()).expect("open again");
        assert!(
            other.try_lock("song").expect("lock").is_none(),
            "second handle"
        );
        assert!(dir.try_lock("song").expect("lock").is_none(), "same OutDir");
        assert!(other.try_lock("other-song").expect("lock").is_some());
        drop(first);
        // A sibling test spawning a child holds a copy of every descriptor
        // between its fork and exec (flock follows copies), so allow a moment.
        let released = (0..100).any(|_| {
            let free = other.try_lock("song").expect("lock").is_some();
            if !free {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            free
        });
        assert!(released, "released");
        assert!(
            t.path().join(".stemflow/locks/song.lock").is_file(),
            "file stays"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_as_lock_file_is_refused_not_followed() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        let target = t.path().join("target");
        fs::write(&target, b"keep").expect("write");
        let link = t.path().join(".stemflow/locks/s.lock");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = dir.try_lock("s").expect_err("symlink lock");
        assert!(
            matches!(
                err,
                StoreError::BadLockFile {
                    found: "symbolic link",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(fs::read(&target).expect("read"), b"keep");
    }
}
