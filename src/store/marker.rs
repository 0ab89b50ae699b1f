//! The ownership marker `OUT/<id>/.stemflow-song`.
//!
//! Why: stemflow may only replace or delete what it wrote (SPEC §11), and a
//! folder with the song's name proves nothing. The marker is written last
//! into the staging folder, just before publishing, so a folder carrying it
//! was complete when it was published. It lists every file with its size, so
//! a later run can check the folder is still complete without trusting
//! anything it does not look at.
//!
//! Format: `{"fingerprint": "...", "files": [{"path": "stems/a.wav",
//! "bytes": 123}, ...]}`; paths are relative, `/`-separated, sorted, and
//! exclude the marker itself.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::names::describe;

/// File name of the marker inside a song folder.
pub const MARKER: &str = ".stemflow-song";

/// A marker larger than this is not one we wrote.
const MAX_MARKER_BYTES: u64 = 16 << 20;

/// The contents of a song folder's marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// What the folder was rendered from (the caller's manifest-entry hash).
    pub fingerprint: String,
    /// Every file of the folder except the marker.
    pub files: Vec<MarkedFile>,
}

/// One file listed in a [`Marker`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkedFile {
    /// Relative to the song folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// What is at `OUT/<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Nothing.
    Absent,
    /// Something stemflow did not write (no marker, not a directory, a
    /// symbolic link): report it and leave it alone.
    NotOurs { why: String },
    /// A folder with a readable marker.
    Ours { marker: Marker },
    /// A folder with a marker file that cannot be read as one (truncated,
    /// not JSON, too large). The marker's presence says stemflow wrote the
    /// folder; its contents cannot vouch for it being complete.
    Damaged { why: String },
}

fn unpublishable(path: &Path, id: &str, why: impl Into<String>) -> StoreError {
    StoreError::Unpublishable {
        path: path.to_path_buf(),
        id: id.to_string(),
        why: why.into(),
    }
}

/// Lists every regular file under `dir` (except the top-level marker) with
/// its size, sorted by path; with `sync`, flushes each file and folder.
/// Symbolic links, special files and non-UTF-8 names are errors.
fn scan(dir: &Path, id: &str, sync: bool) -> Result<Vec<MarkedFile>, StoreError> {
    let io = |p: &Path, e| StoreError::io(p, Some(id), e);
    let mut files = Vec::new();
    let mut pending: Vec<(PathBuf, String)> = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        for entry in fs::read_dir(&folder).map_err(|e| io(&folder, e))? {
            let entry = entry.map_err(|e| io(&folder, e))?;
            let path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| unpublishable(&path, id, "file name is not UTF-8"))?;
            let rel = format!("{prefix}{name}");
            let meta = fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
            if meta.is_dir() {
                pending.push((path, format!("{rel}/")));
            } else if meta.is_file() {
                if rel != MARKER {
                    if sync {
                        sync_path(&path, id)?;
                    }
                    files.push(MarkedFile {
                        path: rel,
                        bytes: meta.len(),
                    });
                }
            } else {
                let what = describe(meta.file_type());
                return Err(unpublishable(&path, id, format!("cannot publish a {what}")));
            }
        }
        if sync {
            sync_path(&folder, id)?;
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Flushes a file or a folder to disk.
pub(super) fn sync_path(path: &Path, id: &str) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(path, Some(id), e))
}

/// Writes the marker into `dir`, listing every file now in it.
pub(super) fn write(
    dir: &Path,
    id: &str,
    fingerprint: &str,
    sync: bool,
) -> Result<Marker, StoreError> {
    let marker = Marker {
        fingerprint: fingerprint.to_string(),
        files: scan(dir, id, sync)?,
    };
    let path = dir.join(MARKER);
    let json = serde_json::to_vec_pretty(&marker)
        .map_err(|e| unpublishable(&path, id, format!("marker: {e}")))?;
    let io = |e| StoreError::io(&path, Some(id), e);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut file = File::create_new(&path).map_err(io)?;
    file.write_all(&json).map_err(io)?;
    if sync {
        file.sync_all().map_err(io)?;
        sync_path(dir, id)?;
    }
    Ok(marker)
}

/// Opens a regular file for reading without following a symbolic link or
/// blocking on a FIFO.
fn open_regular(path: &Path) -> std::io::Result<File> {
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = opts.open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::other("not a regular file"))
    }
}

/// Reads the marker of the folder `dir` (already known to be a directory).
fn read_marker(dir: &Path, id: &str) -> Result<Existing, StoreError> {
    let path = dir.join(MARKER);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Existing::NotOurs {
                why: format!("no {MARKER} marker"),
            });
        }
        Err(e) => return Err(StoreError::io(&path, Some(id), e)),
    };
    if !meta.is_file() {
        let what = describe(meta.file_type());
        return Ok(Existing::NotOurs {
            why: format!("its {MARKER} is a {what}"),
        });
    }
    let mut text = Vec::new();
    open_regular(&path)
        .and_then(|f| f.take(MAX_MARKER_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| StoreError::io(&path, Some(id), e))?;
    if text.len() as u64 > MAX_MARKER_BYTES {
        return Ok(Existing::Damaged {
            why: format!("{MARKER} is too large"),
        });
    }
    Ok(match serde_json::from_slice::<Marker>(&text) {
        Ok(marker) => Existing::Ours { marker },
        Err(e) => Existing::Damaged {
            why: format!("{MARKER}: {e}"),
        },
    })
}

/// What is at `dir` (= `OUT/<id>`), never following a symbolic link.
pub(super) fn inspect_dir(dir: &Path, id: &str) -> Result<Existing, StoreError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(StoreError::io(dir, Some(id), e)),
    };
    if !meta.is_dir() {
        let what = describe(meta.file_type());
        return Ok(Existing::NotOurs {
            why: format!("it is a {what}"),
        });
    }
    read_marker(dir, id)
}

/// Checks one listed file: a safe relative path, real folders on the way,
/// a regular file at the end with the recorded size.
fn verify_file(dir: &Path, file: &MarkedFile) -> Result<(), String> {
    let parts: Vec<&str> = file.path.split('/').collect();
    let unsafe_part = |p: &&str| p.is_empty() || *p == "." || *p == ".." || p.contains('\\');
    if parts.iter().any(unsafe_part) || file.path.contains('\0') {
        return Err(format!("{:?}: not a plain relative path", file.path));
    }
    let mut path = dir.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let meta = fs::symlink_metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{}: missing", file.path),
            _ => format!("{}: {e}", path.display()),
        })?;
        let last = i + 1 == parts.len();
        let ok = if last { meta.is_file() } else { meta.is_dir() };
        if !ok {
            let what = describe(meta.file_type());
            return Err(format!("{}: is a {what}", path.display()));
        }
        if last && meta.len() != file.bytes {
            let (want, got) = (file.bytes, meta.len());
            return Err(format!("{}: {got} bytes, recorded {want}", file.path));
        }
    }
    Ok(())
}

/// Checks that the folder `dir` holds every file the marker lists.
pub(super) fn verify_dir(dir: &Path, marker: &Marker) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(m) => {
            return Err(format!(
                "{}: is a {}",
                dir.display(),
                describe(m.file_type())
            ));
        }
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    marker.files.iter().try_for_each(|f| verify_file(dir, f))
}

#[cfg(test)]
mod tests {
    use super::super::OutDir;
    use super::*;

    /// A song folder with a marker, made the way `publish` makes one.
    fn song(out: &Path, id: &str) -> Marker {
        let dir = out.join(id);
        fs::create_dir_all(dir.join("stems")).expect("mkdir");
        fs::write(dir.join("stems/a.wav"), vec![1u8; 100]).expect("write");
        fs::write(dir.join("master.wav"), vec![2u8; 50]).expect("write");
        write(&dir, id, "fp1", false).expect("marker")
    }

    #[test]
    fn the_marker_lists_every_file_but_itself() {
        let t = tempfile::tempdir().expect("tempdir");
        let m = song(t.path(), "s");
        let paths: Vec<(&str, u64)> = m.files.iter().map(|f| (f.path.as_str(), f.bytes)).collect();
        assert_eq!(paths, [("master.wav", 50), ("stems/a.wav", 100)]);
        let dir = OutDir::open(t.path()).expect("open");
        assert_eq!(
            dir.inspect("s").expect("inspect"),
            Existing::Ours { marker: m.clone() }
        );
        // Rewriting lists the same files (the old marker is not listed).
        assert_eq!(
            write(&t.path().join("s"), "s", "fp1", true).expect("again"),
            m
        );
    }

    #[test]
    fn verify_complete_detects_a_deleted_and_a_truncated_file() {
        let t = tempfile::tempdir().expect("tempdir");
        let m = song(t.path(), "s");
        let dir = OutDir::open(t.path()).expect("open");
        dir.verify_complete("s", &m).expect("complete");
        let a = t.path().join("s/stems/a.wav");
        fs::write(&a, vec![1u8; 99]).expect("truncate");
        let err = dir.verify_complete("s", &m).expect_err("truncated");
        assert!(
            err.contains("stems/a.wav") && err.contains("99 bytes"),
            "{err}"
        );
        fs::remove_file(&a).expect("delete");
        let err = dir.verify_complete("s", &m).expect_err("deleted");
        assert!(err.contains("stems/a.wav: missing"), "{err}");
    }

    #[test]
    fn verify_complete_refuses_escaping_paths_and_symlinked_folders() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut m = song(t.path(), "s");
        let dir = OutDir::open(t.path()).expect("open");
        m.files[0].path = "../s/master.wav".into();
        assert!(dir.verify_complete("s", &m).is_err());
        #[cfg(unix)]
        {
            let m = song(t.path(), "u");
            let stems = t.path().join("u/stems");
            fs::rename(&stems, t.path().join("real")).expect("move");
            std::os::unix::fs::symlink(t.path().join("real"), &stems).expect("symlink");
            let err = dir.verify_complete("u", &m).expect_err("symlinked folder");
            assert!(err.contains("symbolic link"), "{err}");
        }
    }

    #[test]
    fn folders_without_a_valid_marker_are_not_ours_or_damaged() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = OutDir::open(t.path()).expect("open");
        assert_eq!(dir.inspect("none").expect("inspect"), Existing::Absent);
        fs::create_dir(t.path().join("plain")).expect("mkdir");
        assert!(matches!(dir.inspect("plain"), Ok(Existing::NotOurs { .. })));
        fs::write(t.path().join("file"), b"x").expect("write");
        assert!(matches!(dir.inspect("file"), Ok(Existing::NotOurs { .. })));
        fs::create_dir(t.path().join("bad")).expect("mkdir");
        fs::write(t.path().join("bad").join(MARKER), b"{not json").expect("write");
        assert!(matches!(dir.inspect("bad"), Ok(Existing::Damaged { .. })));
        #[cfg(unix)]
        {
            song(t.path(), "real");
            std::os::unix::fs::symlink(t.path().join("real"), t.path().join("link"))
                .expect("symlink");
            let got = dir.inspect("link").expect("inspect");
            assert!(matches!(got, Existing::NotOurs { ref why } if why.contains("symbolic")));
        }
    }

    #[cfg(unix)]
    #[test]
    fn publishing_a_symlink_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join("s");
        fs::create_dir(&dir).expect("mkdir");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("x")).expect("symlink");
        let err = write(&dir, "s", "fp", false).expect_err("symlink");
        assert!(matches!(err, StoreError::Unpublishable { .. }), "{err}");
    }
}
