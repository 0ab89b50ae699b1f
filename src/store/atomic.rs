//! Whole-file replacement of a file directly in OUT (`summary.json`).
//!
//! Why through the store: the temporary file has to live under
//! `OUT/.stemflow/tmp/` so a kill leaves no debris in OUT itself, and the
//! cleanup of a later run must be able to tell it from a live one. So it is
//! written inside a staging-style folder `tmp/<name>.<pid>.<n>/` while the
//! lock `<name>` is held: the cleanup's rule (entry named after a lock that
//! is free = debris) then covers it with no special case.

use std::fs;
use std::time::{Duration, Instant};

use super::rename::discard;
use super::{OutDir, StoreError, unique_name};

/// How long to wait for another process writing the same file.
const WAIT: Duration = Duration::from_secs(30);

impl OutDir {
    /// Replaces `OUT/<name>` by `bytes` in one rename: a reader sees the old
    /// file or the new one, never a part. Waits while another process
    /// writes the same name; the last writer wins.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let start = Instant::now();
        let _lock = loop {
            if let Some(lock) = self.try_lock(name)? {
                break lock;
            }
            if start.elapsed() > WAIT {
                let e = std::io::Error::other("another process holds its lock");
                return Err(StoreError::io(self.root.join(name), None, e));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let folder = self.tmp_dir().join(unique_name(name));
        let file = folder.join(name);
        let dest = self.root.join(name);
        let result = fs::create_dir(&folder)
            .and_then(|()| write_file(&file, bytes, self.fsync))
            .map_err(|e| StoreError::io(&file, None, e))
            .and_then(|()| fs::rename(&file, &dest).map_err(|e| StoreError::io(&dest, None, e)));
        let _ = discard(&folder, false);
        result
    }
}

fn write_file(path: &std::path::Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = fs::File::create_new(path)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        fs::write(t.path().join("summary.json"), b"old").expect("write");
        dir.write_atomic("summary.json", b"new").expect("write");
        assert_eq!(
            fs::read(t.path().join("summary.json")).expect("read"),
            b"new"
        );
        let left = fs::read_dir(t.path().join(".stemflow/tmp")).expect("read");
        assert_eq!(left.count(), 0);
    }

    #[test]
    fn a_dead_writers_temp_is_cleaned_by_the_next_open() {
        let t = tempfile::tempdir().expect("tempdir");
        OutDir::open(t.path()).expect("open");
        let stale = t.path().join(".stemflow/tmp/summary.json.4242.0");
        fs::create_dir(&stale).expect("mkdir");
        fs::write(stale.join("summary.json"), b"half").expect("write");
        OutDir::open(t.path()).expect("reopen");
        assert!(!stale.exists());
    }
}
