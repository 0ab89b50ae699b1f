//! Staging folders and the atomic publish of a song folder.
//!
//! Why an exchange: replacing a directory with `rename(2)` needs the target
//! gone first, which leaves an instant without `OUT/<id>` (and, after a
//! `kill -9` there, no song at all). Linux's `renameat2(RENAME_EXCHANGE)`
//! swaps the two names in one step, so `OUT/<id>` is always the complete old
//! or the complete new folder; the old one then sits at the staging path and
//! is moved to `trash/` and deleted. A new song is placed with
//! `RENAME_NOREPLACE`, so a folder that appeared meanwhile (even an empty
//! one, which plain `rename` would replace) is never overwritten.
//!
//! Fallback, where the exchange is unsupported (`EINVAL`/`ENOSYS`/
//! `EOPNOTSUPP`, other systems): move the old folder to
//! `trash/<id>.<pid>.<n>.old`, rename the new one in, delete the old. A kill
//! between the two renames leaves `OUT/<id>` missing for a moment; the next
//! [`OutDir::open`](super::OutDir::open) moves the old folder back.
//!
//! The crash test hooks are documented on [`Staging::publish`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::layout::Layout;
use super::lock::SongLock;
use super::marker::{self, Existing, Marker};
use super::names::unique_name;
use super::rename::{discard, exchange, fault_point, is_unsupported, place_new};

/// A folder in `OUT/.stemflow/tmp/` where one song is built. Dropped
/// without [`Staging::publish`], it is deleted (best effort; otherwise the
/// next [`OutDir::open`](super::OutDir::open) deletes it).
#[derive(Debug)]
pub struct Staging<'a> {
    out: &'a Layout,
    id: String,
    path: PathBuf,
    // Held for the staging folder's whole life: it is what keeps other
    // processes' cleanup away from it.
    _lock: &'a SongLock,
}

impl<'a> Staging<'a> {
    /// Creates a new, empty staging folder for `id` (lock already checked).
    pub(super) fn create(
        out: &'a Layout,
        id: &str,
        lock: &'a SongLock,
    ) -> Result<Staging<'a>, StoreError> {
        let tmp = &out.tmp;
        for _ in 0..1000 {
            let path = tmp.join(unique_name(id));
            match fs::create_dir(&path) {
                Ok(()) => {
                    let id = id.to_string();
                    return Ok(Staging {
                        out,
                        id,
                        path,
                        _lock: lock,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(path, Some(id), e)),
            }
        }
        let e = io::Error::other("no free staging folder name");
        Err(StoreError::io(tmp.clone(), Some(id), e))
    }

    /// The staging folder; write the song's files here.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the marker (every file now in the folder, with sizes, and
    /// `fingerprint`), then puts the folder at `OUT/<id>` atomically: a new
    /// song by a no-replace rename, an existing one of ours by an exchange.
    /// An `OUT/<id>` that is not ours, or that appeared meanwhile, is an
    /// error and untouched. Returns the marker written.
    ///
    /// Test hooks, for end-to-end crash tests only (environment variables
    /// read once per process): `STEMFLOW_FAULT_AT=swap:N` aborts the process
    /// (`std::process::abort`, as abrupt as `kill -9`) right before
    /// operation N: 1 write the marker; 2 exchange (fallback: move the old
    /// folder aside; new song: rename it in); 3 move the old folder to trash
    /// (fallback: rename the new one in); 4 delete the old folder's marker;
    /// 5 delete the rest of the old folder. `STEMFLOW_SWAP=rename` forces
    /// the fallback swap.
    pub fn publish(self, fingerprint: &str) -> Result<Marker, StoreError> {
        let dest = self.out.song_path(&self.id);
        let replace = match self.out.inspect(&self.id)? {
            Existing::Absent => false,
            Existing::Ours { .. } | Existing::Damaged { .. } => true,
            Existing::NotOurs { why } => {
                return Err(StoreError::NotOurs {
                    path: dest,
                    id: self.id.clone(),
                    why,
                });
            }
        };
        fault_point(1);
        let marker = marker::write(&self.path, &self.id, fingerprint, self.out.fsync)?;
        if replace {
            self.replace(&dest)?;
        } else {
            fault_point(2);
            self.place(&dest)?;
        }
        if self.out.fsync {
            marker::sync_path(&self.out.root, &self.id)?;
        }
        Ok(marker)
    }

    /// Keeps the staging folder of a song that failed its checks as
    /// `OUT/.stemflow/failed/<id>/`, for inspection (`--keep-failed`,
    /// SPEC §10), replacing what an earlier failure of the song left there.
    /// The folder only ever appears whole: it is complete here and moves in
    /// one rename (an exchange with the old one where the system has it;
    /// otherwise the old one goes to trash/ first, which the next open
    /// cleans if this process dies in between). `failed/` is never cleaned
    /// as temporary state. Returns where the folder now is.
    pub fn keep_failed(self) -> Result<PathBuf, StoreError> {
        let dest = self.out.failed.join(&self.id);
        let io = |e| StoreError::io(&dest, Some(&self.id), e);
        match fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => {
                if self.out.exchange && exchange(&self.path, &dest).is_ok() {
                    // The old folder is now at the staging path: `Drop`
                    // deletes it.
                    return Ok(dest);
                }
                let trash = self.out.trash.join(unique_name(&self.id));
                fs::rename(&dest, &trash).map_err(io)?;
                let _ = discard(&trash, false);
            }
            Ok(m) => {
                return Err(StoreError::NotADirectory {
                    path: dest.clone(),
                    id: Some(self.id.clone()),
                    found: super::names::describe(m.file_type()),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        self.place(&dest)?;
        Ok(dest)
    }

    /// Renames the staging folder to the absent `dest`.
    fn place(&self, dest: &Path) -> Result<(), StoreError> {
        place_new(&self.path, dest).map_err(|e| {
            if matches!(
                e.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
            ) {
                StoreError::Exists {
                    path: dest.to_path_buf(),
                    id: self.id.clone(),
                }
            } else {
                StoreError::io(dest, Some(&self.id), e)
            }
        })
    }

    /// Replaces our existing `dest` by the staging folder.
    fn replace(&self, dest: &Path) -> Result<(), StoreError> {
        if self.out.exchange {
            fault_point(2);
            match exchange(&self.path, dest) {
                Ok(()) => {
                    self.retire_old();
                    return Ok(());
                }
                // `dest` vanished since inspect: nothing left to replace.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return self.place(dest),
                Err(e) if !is_unsupported(&e) => {
                    return Err(StoreError::io(dest, Some(&self.id), e));
                }
                Err(_) => {}
            }
        }
        self.replace_by_renames(dest)
    }

    /// After an exchange the old folder is at the staging path: move it to
    /// trash/ and delete it. Failures only leave garbage that `Drop` or the
    /// next open removes; the new folder is already published.
    fn retire_old(&self) {
        fault_point(3);
        let trash = self.out.trash.join(unique_name(&self.id));
        if fs::rename(&self.path, &trash).is_ok() {
            let _ = discard(&trash, true);
        }
    }

    /// The fallback: old folder aside, new folder in, old folder deleted.
    fn replace_by_renames(&self, dest: &Path) -> Result<(), StoreError> {
        let aside = self
            .out
            .trash
            .join(format!("{}.old", unique_name(&self.id)));
        fault_point(2);
        fs::rename(dest, &aside).map_err(|e| StoreError::io(dest, Some(&self.id), e))?;
        fault_point(3);
        if let Err(e) = self.place(dest) {
            // Put the old folder back; failing that, the next open does.
            let _ = place_new(&aside, dest);
            return Err(e);
        }
        let _ = discard(&aside, true);
        Ok(())
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        // After a publish nothing is left here (or only the retired old folder).
        let _ = discard(&self.path, false);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::OutDir;
    use super::*;

    /// Stages `id` with `files` (relative path, contents) and publishes it.
    pub(in super::super) fn publish(dir: &OutDir, id: &str, files: &[(&str, &[u8])], fp: &str) {
        let lock = dir.try_lock(id).expect("lock").expect("free");
        let staging = dir.stage(id, &lock).expect("stage");
        for (path, bytes) in files {
            let path = staging.path().join(path);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, bytes).expect("write");
        }
        staging.publish(fp).expect("publish");
    }

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).expect("read_dir").count()
    }

    #[test]
    fn keep_failed_replaces_the_kept_folder_whole_and_cleanup_keeps_it() {
        for exchange in [true, false] {
            let t = tempfile::tempdir().expect("tempdir");
            let mut dir = OutDir::open(t.path()).expect("open");
            dir.set_exchange(exchange);
            let keep = |files: &[(&str, &[u8])]| {
                let lock = dir.try_lock("s").expect("lock").expect("free");
                let staging = dir.stage("s", &lock).expect("stage");
                for (path, bytes) in files {
                    let path = staging.path().join(path);
                    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                    fs::write(path, bytes).expect("write");
                }
                staging.keep_failed().expect("keep")
            };
            let first = keep(&[("master.wav", b"one"), ("deliver/a.flac", b"a")]);
            let second = keep(&[("master.wav", b"two")]);
            assert_eq!(first, t.path().join(".stemflow/failed/s"));
            assert_eq!(second, first);
            assert_eq!(fs::read(second.join("master.wav")).expect("read"), b"two");
            assert!(
                !second.join("deliver").exists(),
                "nothing of the first stays"
            );
            for sub in ["tmp", "trash"] {
                assert_eq!(entries(&t.path().join(".stemflow").join(sub)), 0, "{sub}");
            }
            // Not temporary state: the next open's cleanup leaves it.
            drop(dir);
            OutDir::open(t.path()).expect("reopen");
            assert_eq!(fs::read(second.join("master.wav")).expect("kept"), b"two");
        }
    }

    fn check_replaces(exchange: bool) {
        let t = tempfile::tempdir().expect("tempdir");
        let mut dir = OutDir::open(t.path()).expect("open");
        dir.set_exchange(exchange);
        publish(
            &dir,
            "s",
            &[("master.wav", b"old"), ("stems/a.wav", b"aa")],
            "v1",
        );
        let Existing::Ours { marker } = dir.inspect("s").expect("inspect") else {
            panic!("not ours after publish");
        };
        assert_eq!(marker.fingerprint, "v1");
        dir.verify_complete("s", &marker).expect("complete");
        publish(&dir, "s", &[("master.wav", b"newer")], "v2");
        let Existing::Ours { marker } = dir.inspect("s").expect("inspect") else {
            panic!("not ours after replace");
        };
        assert_eq!(marker.fingerprint, "v2");
        assert_eq!(
            fs::read(t.path().join("s/master.wav")).expect("read"),
            b"newer"
        );
        assert!(
            !t.path().join("s/stems").exists(),
            "old files left in the new folder"
        );
        assert_eq!(entries(&t.path().join(".stemflow/tmp")), 0);
        assert_eq!(entries(&t.path().join(".stemflow/trash")), 0);
    }

    #[test]
    fn publish_into_absent_then_over_existing_with_exchange() {
        check_replaces(true);
    }

    #[test]
    fn publish_over_existing_with_the_fallback_swap() {
        check_replaces(false);
    }

    #[test]
    fn a_folder_not_ours_is_reported_and_left_byte_identical() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        let theirs = t.path().join("s");
        fs::create_dir_all(theirs.join("sub")).expect("mkdir");
        fs::write(theirs.join("master.wav"), b"precious").expect("write");
        fs::write(theirs.join("sub/notes.txt"), b"mine").expect("write");
        let lock = dir.try_lock("s").expect("lock").expect("free");
        let staging = dir.stage("s", &lock).expect("stage");
        fs::write(staging.path().join("master.wav"), b"new").expect("write");
        let err = staging.publish("fp").expect_err("not ours");
        assert!(matches!(err, StoreError::NotOurs { .. }), "{err}");
        assert!(err.to_string().contains("not written by stemflow"), "{err}");
        drop(lock);
        let dir = OutDir::open(t.path()).expect("reopen");
        assert!(matches!(dir.inspect("s"), Ok(Existing::NotOurs { .. })));
        assert_eq!(
            fs::read(theirs.join("master.wav")).expect("read"),
            b"precious"
        );
        assert_eq!(
            fs::read(theirs.join("sub/notes.txt")).expect("read"),
            b"mine"
        );
        assert_eq!(entries(&theirs), 2);
        assert_eq!(entries(&theirs.join("sub")), 1);
        assert_eq!(
            entries(&t.path().join(".stemflow/tmp")),
            0,
            "staging not removed"
        );
    }

    #[test]
    fn a_folder_that_appeared_meanwhile_is_not_overwritten() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        let lock = dir.try_lock("s").expect("lock").expect("free");
        let staging = dir.stage("s", &lock).expect("stage");
        // Plain rename(2) would replace an empty directory.
        fs::create_dir(t.path().join("s")).expect("mkdir");
        let err = staging.place(&t.path().join("s")).expect_err("appeared");
        assert!(matches!(err, StoreError::Exists { .. }), "{err}");
        assert!(staging.path().is_dir());
    }

    #[test]
    fn an_unpublished_staging_folder_is_removed_on_drop() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        let lock = dir.try_lock("s").expect("lock").expect("free");
        let a = dir.stage("s", &lock).expect("stage");
        let b = dir.stage("s", &lock).expect("stage");
        assert_ne!(a.path(), b.path());
        fs::write(a.path().join("x"), b"x").expect("write");
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
        assert!(b.path().is_dir());
    }

    #[test]
    fn the_song_never_goes_missing_during_200_exchanges() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let t = tempfile::tempdir().expect("tempdir");
        let mut dir = OutDir::open(t.path()).expect("open");
        dir.set_exchange(true); // whatever STEMFLOW_SWAP says
        publish(&dir, "s", &[("master.wav", b"0")], "0");
        let marker = t.path().join("s").join(super::super::marker::MARKER);
        let done = AtomicBool::new(false);
        let (polls, misses) = std::thread::scope(|scope| {
            let poller = scope.spawn(|| {
                let (mut polls, mut misses) = (0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    polls += 1;
                    if !matches!(marker.try_exists(), Ok(true)) {
                        misses += 1;
                    }
                }
                (polls, misses)
            });
            for i in 1..=200 {
                let fp = i.to_string();
                publish(&dir, "s", &[("master.wav", fp.as_bytes())], &fp);
            }
            done.store(true, Ordering::Relaxed);
            poller.join().expect("poller")
        });
        assert!(polls > 200, "poller barely ran: {polls}");
        assert_eq!(misses, 0, "OUT/s missing in {misses} of {polls} polls");
        assert_eq!(
            fs::read(t.path().join("s/master.wav")).expect("read"),
            b"200"
        );
    }
}
