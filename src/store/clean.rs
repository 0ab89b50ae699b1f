//! Cleaning what dead processes left in `OUT/.stemflow/tmp/` and `trash/`.
//!
//! Why here and why by lock: a process killed mid-song leaves its staging
//! folder, and one killed mid-publish may leave a retired old folder. Every
//! entry is named `<id>.<pid>.<n>` (`.old` appended for an old folder set
//! aside by the fallback swap), so the song id, and with it the song lock,
//! is recoverable from the name. If that lock can be taken, nobody is working
//! on the song and the entry is debris; if not, it belongs to a live process
//! and is left alone. Pids are never trusted: they are reused.
//!
//! The one entry worth keeping is an `.old` folder whose `OUT/<id>` is
//! missing: a fallback swap died between its two renames, and the old folder
//! (if its marker vouches for it) goes back to `OUT/<id>`. Anything that is
//! not a real directory, or whose name we cannot read, is reported and left.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::layout::Layout;
use super::marker::{self, Existing};
use super::names::{describe, is_valid_id};
use super::rename::{discard, place_new};

/// What [`OutDir::open`](super::OutDir::open) did in `OUT/.stemflow/tmp/` and `trash/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Debris deleted.
    pub removed: Vec<PathBuf>,
    /// Song folders `OUT/<id>` put back from an interrupted fallback swap.
    pub restored: Vec<PathBuf>,
    /// Entries left alone, with the reason (not live songs: those are
    /// skipped silently).
    pub skipped: Vec<(PathBuf, String)>,
}

impl Cleanup {
    fn skip(&mut self, path: &Path, why: impl Into<String>) {
        self.skipped.push((path.to_path_buf(), why.into()));
    }
}

/// The song id of an entry `<id>.<pid>.<n>[.old]`, and whether it is `.old`.
fn parse_entry(name: &str) -> Option<(&str, bool)> {
    let (base, old) = match name.strip_suffix(".old") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let mut parts = base.rsplitn(3, '.');
    let (n, pid, id) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(n) && digits(pid) && is_valid_id(id)).then_some((id, old))
}

/// The entries of a state folder, sorted.
fn list(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let io = |e| StoreError::io(dir, None, e);
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        paths.push(entry.map_err(io)?.path());
    }
    paths.sort();
    Ok(paths)
}

/// Cleans `trash/` (first: it may hold a folder to restore) and `tmp/`.
pub(super) fn run(out: &Layout) -> Result<Cleanup, StoreError> {
    let mut report = Cleanup::default();
    for (dir, is_trash) in [(&out.trash, true), (&out.tmp, false)] {
        for path in list(dir)? {
            clean_entry(out, &path, is_trash, &mut report);
        }
    }
    Ok(report)
}

/// Deletes or restores one entry if its song lock is free.
fn clean_entry(out: &Layout, path: &Path, is_trash: bool, report: &mut Cleanup) {
    let name = path.file_name().and_then(|n| n.to_str());
    let Some((id, old)) = name.and_then(parse_entry) else {
        report.skip(path, "not named <id>.<pid>.<n>; left alone");
        return;
    };
    let _lock = match out.try_lock(id) {
        Ok(Some(lock)) => lock,
        Ok(None) => return,
        Err(e) => return report.skip(path, e.to_string()),
    };
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(m) => {
            let what = describe(m.file_type());
            return report.skip(
                path,
                format!("a {what} where a folder is expected; left alone"),
            );
        }
        Err(e) => return report.skip(path, e.to_string()),
    }
    if is_trash && old {
        match restore(out, id, path) {
            Ok(true) => return report.restored.push(out.song_path(id)),
            Ok(false) => {}
            Err(why) => return report.skip(path, why),
        }
    }
    match discard(path, false) {
        Ok(()) => report.removed.push(path.to_path_buf()),
        Err(e) => report.skip(path, e.to_string()),
    }
}

/// Moves an old folder set aside by an interrupted fallback swap back to
/// `OUT/<id>` when that is missing and the folder is complete by its marker.
/// `Ok(false)`: not to be restored (delete it).
fn restore(out: &Layout, id: &str, path: &Path) -> Result<bool, String> {
    match out.inspect(id) {
        Ok(Existing::Absent) => {}
        Ok(_) => return Ok(false),
        Err(e) => return Err(e.to_string()),
    }
    let Ok(Existing::Ours { marker }) = marker::inspect_dir(path, id) else {
        return Ok(false);
    };
    if marker::verify_dir(path, &marker).is_err() {
        return Ok(false);
    }
    let dest = out.song_path(id);
    place_new(path, &dest)
        .map(|()| true)
        .map_err(|e| format!("restoring to {}: {e}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::super::OutDir;
    use super::super::swap::tests::publish;
    use super::*;

    fn entry(out: &Path, sub: &str, name: &str) -> PathBuf {
        let path = out.join(".stemflow").join(sub).join(name);
        fs::create_dir_all(path.join("stems")).expect("mkdir");
        fs::write(path.join("stems/x.wav"), b"debris").expect("write");
        path
    }

    #[test]
    fn entry_names_give_the_song_id() {
        assert_eq!(parse_entry("song.12.3"), Some(("song", false)));
        assert_eq!(parse_entry("a.b.old.12.3"), Some(("a.b.old", false)));
        assert_eq!(parse_entry("a.b.12.3.old"), Some(("a.b", true)));
        for bad in ["song", "song.12", "song.x.3", ".12.3", "song.12.", "..12.3"] {
            assert_eq!(parse_entry(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stale_entries_are_removed_and_locked_ones_left_alone() {
        let t = tempfile::tempdir().expect("tempdir");
        let first = OutDir::open(t.path()).expect("open");
        let live = first.try_lock("live").expect("lock").expect("free");
        let dead_tmp = entry(t.path(), "tmp", "dead.4242.0");
        let dead_trash = entry(t.path(), "trash", "gone.4242.1");
        let live_tmp = entry(t.path(), "tmp", "live.1.0");
        let live_trash = entry(t.path(), "trash", "live.1.1");
        let junk = entry(t.path(), "tmp", "junk");
        let dir = OutDir::open(t.path()).expect("reopen");
        assert!(!dead_tmp.exists() && !dead_trash.exists());
        assert!(
            live_tmp.join("stems/x.wav").is_file(),
            "live tmp entry touched"
        );
        assert!(
            live_trash.join("stems/x.wav").is_file(),
            "live trash entry touched"
        );
        assert!(junk.is_dir());
        let mut removed = dir.cleanup().removed.clone();
        removed.sort();
        assert_eq!(removed, [dead_tmp, dead_trash]);
        assert_eq!(dir.cleanup().skipped.len(), 1, "{:?}", dir.cleanup());
        drop(live);
        // Another test of this binary spawning a child can hold a copy of the
        // lock's descriptor between its fork and exec, so allow a moment.
        let mut removed = 0;
        for _ in 0..100 {
            let again = OutDir::open(t.path()).expect("after the lock is free");
            removed += again.cleanup().removed.len();
            if removed == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!live_tmp.exists() && !live_trash.exists());
        assert_eq!(removed, 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_entry_is_neither_followed_nor_removed() {
        let t = tempfile::tempdir().expect("tempdir");
        OutDir::open(t.path()).expect("open");
        let target = t.path().join("precious");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join(marker::MARKER), b"{}").expect("write");
        let link = t.path().join(".stemflow/tmp/s.1.0");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let dir = OutDir::open(t.path()).expect("reopen");
        assert!(link.is_symlink());
        assert_eq!(fs::read(target.join(marker::MARKER)).expect("read"), b"{}");
        assert_eq!(dir.cleanup().skipped.len(), 1);
    }

    #[test]
    fn an_old_folder_set_aside_is_restored_only_when_the_song_is_missing() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        publish(&dir, "s", &[("master.wav", b"old")], "v1");
        publish(&dir, "k", &[("master.wav", b"kept")], "v1");
        drop(dir);
        // A fallback swap killed between its renames: old aside, new staged.
        let aside = t.path().join(".stemflow/trash/s.7.0.old");
        fs::rename(t.path().join("s"), &aside).expect("aside");
        entry(t.path(), "tmp", "s.7.1");
        // A copy set aside while k still exists, and an exchange-retired copy.
        publish_copy(t.path(), "k", "k.7.2.old");
        publish_copy(t.path(), "k", "k.7.3");
        let dir = OutDir::open(t.path()).expect("reopen");
        assert_eq!(dir.cleanup().restored, [t.path().join("s")]);
        assert_eq!(
            fs::read(t.path().join("s/master.wav")).expect("read"),
            b"old"
        );
        assert_eq!(
            fs::read(t.path().join("k/master.wav")).expect("read"),
            b"kept"
        );
        assert_eq!(
            fs::read_dir(t.path().join(".stemflow/trash"))
                .expect("ls")
                .count(),
            0
        );
        assert_eq!(
            fs::read_dir(t.path().join(".stemflow/tmp"))
                .expect("ls")
                .count(),
            0
        );
    }

    /// Copies the published song `id` into trash/`name`.
    fn publish_copy(out: &Path, id: &str, name: &str) {
        let to = out.join(".stemflow/trash").join(name);
        fs::create_dir(&to).expect("mkdir");
        for file in ["master.wav", marker::MARKER] {
            fs::copy(out.join(id).join(file), to.join(file)).expect("copy");
        }
    }

    #[test]
    fn an_exchange_retired_folder_is_never_restored() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        publish(&dir, "s", &[("master.wav", b"old")], "v1");
        drop(dir);
        // The user deleted OUT/s after a crash left a retired copy behind.
        fs::rename(t.path().join("s"), t.path().join(".stemflow/trash/s.7.0")).expect("mv");
        let dir = OutDir::open(t.path()).expect("reopen");
        assert!(!t.path().join("s").exists(), "a deleted song came back");
        assert_eq!(dir.cleanup().removed.len(), 1);
    }
}
