//! Files below the pipeline: the WAV/RF64 writer (with its Broadcast WAV
//! `bext` chunk) and reader, the FLAC writer, the PCM quantiser both
//! writers share so they hold the same integers, and what the filesystem
//! can tell about free space. Nothing here knows about songs or stems.

pub mod bext;
pub mod flac;
pub mod pcm;
pub mod wav;

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
