//! The deliverables zip, streamed from the written files. Entries are dated
//! 1980-01-01 so the same audio always gives the same archive bytes.
//!
//! Two failure modes are guarded here rather than trusted to the caller:
//! an entry that is the archive itself (it would be read while it grows,
//! without end), and a write error such as a full disk, which the zip
//! library would otherwise report by printing half a line on stderr from
//! its `Drop` when the writer is abandoned. Every write goes through
//! [`Sink`], which keeps the first error and then swallows the rest, so the
//! writer is always finished, its finishing can never fail noisily, and the
//! error returned is the real one.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::StageError;
use crate::plan::Compression;

/// Above this size an entry needs Zip64 fields.
const ZIP32_LIMIT: u64 = 0xFFFF_FFFF;

/// Writes `archive` with `(name in zip, file on disk)` entries, in order.
/// Audio is stored (or deflated if asked); `.json` entries are always
/// deflated. On failure the partial archive is removed.
pub fn write(
    archive: &Path,
    entries: &[(String, &Path)],
    audio: Compression,
) -> Result<(), StageError> {
    let result = write_entries(archive, entries, audio);
    // Only a regular file is ours to remove (never, say, /dev/full).
    if result.is_err() && std::fs::symlink_metadata(archive).is_ok_and(|m| m.is_file()) {
        let _ = std::fs::remove_file(archive);
    }
    result
}

fn write_entries(
    archive: &Path,
    entries: &[(String, &Path)],
    audio: Compression,
) -> Result<(), StageError> {
    let file = File::create(archive).map_err(|e| StageError::io(archive, e))?;
    let own = file.metadata().map_err(|e| StageError::io(archive, e))?;
    let error = Rc::new(RefCell::new(None));
    let sink = Sink {
        inner: BufWriter::new(file),
        error: Rc::clone(&error),
        pos: 0,
    };
    let mut zip = ZipWriter::new(sink);
    let added = entries
        .iter()
        .try_for_each(|(name, path)| add(&mut zip, &own, name, path, audio));
    // Finished whatever happened: after an error the sink swallows the rest.
    let finished = zip.finish().map(Sink::into_inner);
    let written = error.borrow_mut().take();
    if let Some(e) = written {
        return Err(StageError::io(archive, e));
    }
    added?;
    let zip_err =
        |e: zip::result::ZipError| StageError::Invalid(format!("{}: {e}", archive.display()));
    let buffered = finished.map_err(zip_err)?;
    buffered
        .into_inner()
        .map(drop)
        .map_err(|e| StageError::io(archive, e.into_error()))
}

/// Adds one entry, streamed from `path`, refusing the archive itself.
fn add(
    zip: &mut ZipWriter<Sink>,
    own: &std::fs::Metadata,
    name: &str,
    path: &Path,
    audio: Compression,
) -> Result<(), StageError> {
    let meta = std::fs::metadata(path).map_err(|e| StageError::io(path, e))?;
    if same_file(own, &meta) {
        return Err(StageError::Invalid(format!(
            "{}: the archive cannot contain itself (entry {name:?})",
            path.display()
        )));
    }
    let method = if name.ends_with(".json") || audio == Compression::Deflate {
        CompressionMethod::Deflated
    } else {
        CompressionMethod::Stored
    };
    let options = SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644)
        .large_file(meta.len() >= ZIP32_LIMIT);
    let zip_err = |e: zip::result::ZipError| StageError::Invalid(format!("{name}: {e}"));
    zip.start_file(name, options).map_err(zip_err)?;
    let mut input = BufReader::new(File::open(path).map_err(|e| StageError::io(path, e))?);
    io::copy(&mut input, zip).map_err(|e| StageError::io(path, e))?;
    Ok(())
}

/// Whether two metadata describe one file (hard links included).
#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    false
}

/// The archive's writer: passes everything through until the first error,
/// which it keeps for [`write`] to return; after that it accepts and drops
/// every write (moving a pretend position, so the zip writer's offsets stay
/// consistent), so finishing or dropping the zip writer cannot fail again.
struct Sink {
    inner: BufWriter<File>,
    error: Rc<RefCell<Option<io::Error>>>,
    /// The position in the file, real until a failure, pretended after.
    pos: u64,
}

impl Sink {
    fn into_inner(self) -> BufWriter<File> {
        self.inner
    }

    fn failed(&self) -> bool {
        self.error.borrow().is_some()
    }

    /// `r`, or, once anything failed, `ok` (the first error is kept).
    fn guard<T>(&self, r: io::Result<T>, ok: T) -> io::Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                *self.error.borrow_mut() = Some(e);
                Ok(ok)
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = if self.failed() {
            buf.len()
        } else {
            let r = self.inner.write(buf);
            self.guard(r, buf.len())?
        };
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed() {
            return Ok(());
        }
        let r = self.inner.flush();
        self.guard(r, ())
    }
}

impl Seek for Sink {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pretend = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) | SeekFrom::End(d) => self.pos.saturating_add_signed(d),
        };
        self.pos = if self.failed() {
            pretend
        } else {
            let r = self.inner.seek(to);
            self.guard(r, pretend)?
        };
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_that_is_the_archive_itself_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("master.wav");
        std::fs::write(&wav, [1u8; 1000]).unwrap();
        let zip = dir.path().join("overview.svg");
        let entries = [
            ("master.wav".to_string(), wav.as_path()),
            ("overview.svg".to_string(), zip.as_path()),
        ];
        let e = write(&zip, &entries, Compression::Stored).unwrap_err();
        assert!(e.to_string().contains("cannot contain itself"), "{e}");
        assert!(!zip.exists(), "the partial archive is removed");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_an_error_not_a_message_from_drop() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("master.wav");
        std::fs::write(&wav, vec![7u8; 100_000]).unwrap();
        let entries = [("master.wav".to_string(), wav.as_path())];
        let e = write(Path::new("/dev/full"), &entries, Compression::Stored).unwrap_err();
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert!(Path::new("/dev/full").exists(), "never removed");
    }
}
