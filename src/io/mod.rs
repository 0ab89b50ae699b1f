//! Files below the pipeline: the WAV/RF64 writer (with its Broadcast WAV
//! `bext` chunk) and reader, the FLAC writer, the PCM quantiser both
//! writers share so they hold the same integers, what the filesystem can
//! tell about free space, and opening inputs without ever blocking on a
//! FIFO or device. Nothing here knows about songs or stems.

pub mod bext;
pub mod flac;
pub mod pcm;
pub mod stream;
pub mod wav;

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

use crate::error::StageError;
use crate::plan::{Codec, Dither};
use crate::types::{Block, StreamSpec};

/// An audio file being written, in the song's codec.
pub enum AudioOut {
    Wav(wav::WavOut),
    /// Boxed: the encoder's state is large beside a WAV writer's.
    Flac(Box<flac::FlacOut>),
}

impl AudioOut {
    /// Creates `path` for a stream of `spec` in `codec`; `dither_key`
    /// seeds the dither of integer formats. A WAV carries `bext` if given.
    pub fn create(
        path: &Path,
        codec: Codec,
        spec: StreamSpec,
        (dither, dither_key): (Dither, u64),
        bext: Option<&bext::Bext>,
    ) -> Result<AudioOut, StageError> {
        Ok(match (codec, bext) {
            (Codec::Wav, None) => {
                AudioOut::Wav(wav::WavOut::create(path, spec, dither, dither_key)?)
            }
            (Codec::Wav, Some(b)) => {
                AudioOut::Wav(wav::WavOut::create_bwf(path, spec, dither, dither_key, b)?)
            }
            (Codec::Flac, _) => AudioOut::Flac(Box::new(flac::FlacOut::create(
                path, spec, dither, dither_key,
            )?)),
        })
    }

    /// Appends a block.
    pub fn write(&mut self, block: &Block) -> Result<(), StageError> {
        match self {
            AudioOut::Wav(w) => w.write(block),
            AudioOut::Flac(f) => f.write(block),
        }
    }

    /// The loudness a WAV's `bext` chunk will carry.
    pub fn set_loudness(&mut self, loudness: bext::BextLoudness) {
        if let AudioOut::Wav(w) = self {
            w.set_loudness(loudness);
        }
    }

    /// Completes the file.
    pub fn finish(self) -> Result<(), StageError> {
        match self {
            AudioOut::Wav(w) => w.finish(),
            AudioOut::Flac(f) => f.finish(),
        }
    }
}

/// The header of a file stemflow wrote: FLAC by its `.flac` name, else
/// WAV or RF64.
pub fn read_header(path: &Path) -> Result<wav::WavHeader, StageError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("flac") => flac::read_header(path),
        _ => wav::read_header(path),
    }
}

/// Refuses anything but a regular file (after symlinks): a FIFO would block
/// a reader until some writer shows up, a device (`/dev/zero`) never ends,
/// and a socket cannot be read as a file. The error says what it is.
pub fn check_regular(meta: &Metadata) -> io::Result<()> {
    let ft = meta.file_type();
    let what = if ft.is_file() {
        return Ok(());
    } else if ft.is_dir() {
        "a directory"
    } else {
        special_kind(&ft)
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file"),
    ))
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_kind(_ft: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Opens a regular file for reading, never blocking: the type is checked
/// before opening (a FIFO is never opened), and again on the open handle
/// with `O_NONBLOCK`, so a file swapped for a FIFO in between is refused
/// instead of waited on.
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    check_regular(&std::fs::metadata(path)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    check_regular(&meta)?;
    Ok((file, meta))
}

/// Bytes free for an unprivileged writer on the filesystem holding `path`;
/// `None` where the platform cannot tell (the caller then skips its check).
#[cfg(unix)]
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is a plain C struct of integers, for which all-zero
    // bytes are a valid value; the call below overwrites it on success.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Bytes free on the filesystem holding `path`: unknown on this platform.
#[cfg(not(unix))]
pub fn free_bytes(_path: &std::path::Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo).unwrap_err().to_string();
        assert!(e.contains("is a FIFO (named pipe)"), "{e}");
        let e = open_regular(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a character device"), "{e}");
        let e = open_regular(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }
}
