//! Whether a song already in OUT can be kept (SPEC §11 "resume trusts
//! nothing it does not check").
//!
//! Why content hashes: size and mtime are cheap to fake (`touch -r`, a copy
//! tool that keeps times, a swapped volume), so the fingerprint covers what
//! every input file holds. xxh3-128 (crate `xxhash-rust`) reads at memory
//! speed (tens of GB/s, far above any disk), so hashing costs about the read
//! of the inputs; it is not cryptographic, which is fine: it guards against
//! accidents, not an adversary who controls the inputs and OUT anyway.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

use crate::output::{PreviousReport, Status};
use crate::plan::SongPlan;
use crate::store::{Marker, OutDir};

/// The song's settings digest extended with the content hash of every file
/// it reads: a rerun with the same fingerprint produces the same bytes.
/// The files are hashed `threads` at a time.
pub(super) fn fingerprint(song: &SongPlan, threads: usize) -> String {
    let files = crate::manifest::input_files(song);
    let mut text = song.digest.clone();
    for (path, hash) in files.iter().zip(hash_all(&files, threads)) {
        text.push_str(&format!("|{}:{hash}", path.display()));
    }
    format!("{:016x}", crate::seed::hash64(text.as_bytes()))
}

/// [`content_hash`] of each of `files`, in order, hashed by up to `threads`
/// threads. Nothing renders until the hashes are known: one after another,
/// the 400 MB of a 4-minute song of eight recorded stems took 100 ms of
/// its 1.9 s on two cores, side by side 73.
fn hash_all(files: &[PathBuf], threads: usize) -> Vec<String> {
    crate::parallel::map_ordered(files, threads, |path| content_hash(path))
}

/// xxh3-128 of a regular file's bytes; anything else (missing, a FIFO, a
/// read error) gets a tag that never equals a hash, and the render then
/// reports the problem.
fn content_hash(path: &Path) -> String {
    let file = match open_regular(path) {
        Ok(f) => f,
        Err(e) => return format!("unreadable({:?})", e.kind()),
    };
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut reader = file;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return format!("unreadable({:?})", e.kind()),
        }
    }
    format!("{:032x}", hasher.digest128())
}

/// Opens `path` for reading without blocking on a FIFO, and only if it is a
/// regular file.
fn open_regular(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::other("not a regular file"))
    }
}

/// Whether `OUT/<id>`, ours with `marker`, is a complete ok render of this
/// fingerprint: the marker's fingerprint matches, every file it lists is
/// there with its size (checked first: it also refuses a FIFO in place of
/// report.json), and report.json says ok for the same fingerprint.
pub(super) fn up_to_date(out: &OutDir, id: &str, marker: &Marker, fingerprint: &str) -> bool {
    marker.fingerprint == fingerprint
        && marker.files.iter().any(|f| f.path == "report.json")
        && out.verify_complete(id, marker).is_ok()
        && report_is_ok(&out.song_path(id).join("report.json"), fingerprint)
}

/// Whether the report at `path` says ok for `fingerprint`.
pub(super) fn report_is_ok(path: &Path, fingerprint: &str) -> bool {
    previous_status(path).is_some_and(|r| r.status == Status::Ok && r.digest == fingerprint)
}

/// The status and fingerprint of a previous report, if it can be read.
pub(super) fn previous_status(path: &Path) -> Option<PreviousReport> {
    let mut text = String::new();
    open_regular(path).ok()?.read_to_string(&mut text).ok()?;
    serde_json::from_str::<PreviousReport>(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_follows_content_not_metadata() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("a.wav");
        std::fs::write(&p, b"abcd").expect("write");
        let first = content_hash(&p);
        std::fs::write(&p, b"abce").expect("write");
        assert_ne!(content_hash(&p), first);
        std::fs::write(&p, b"abcd").expect("write");
        assert_eq!(content_hash(&p), first);
        // Streaming in 1 MiB reads gives the one-shot hash.
        assert_eq!(
            first,
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(b"abcd"))
        );
        assert!(content_hash(&t.path().join("missing")).starts_with("unreadable"));
        assert!(content_hash(t.path()).starts_with("unreadable"));
    }

    #[test]
    fn files_hashed_side_by_side_keep_their_order() {
        let t = tempfile::tempdir().expect("tempdir");
        let files: Vec<PathBuf> = (0..7u8)
            .map(|i| {
                let p = t.path().join(format!("{i}.wav"));
                std::fs::write(&p, vec![i; 1000 + i as usize * 777]).expect("write");
                p
            })
            .collect();
        let one_by_one: Vec<String> = files.iter().map(|p| content_hash(p)).collect();
        for threads in [1, 2, 3, 16] {
            assert_eq!(hash_all(&files, threads), one_by_one, "{threads} threads");
        }
        assert!(hash_all(&[], 4).is_empty());
    }
}
