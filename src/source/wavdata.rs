//! WAV and RF64 sources read straight from the file: the recorded stems
//! users render are mostly WAV, and going through symphonia's PCM decoder
//! cost a copy into its buffer, a per-sample conversion through generic
//! code, and a seek that decoded from the start. Here a seek is arithmetic
//! (the frame's byte offset) and a read is one positioned read (`pread`)
//! converted in place, so a loop's seam, a crossfade or a truncation reads
//! only the frames it needs, and RF64 (which symphonia 0.6 cannot read)
//! works too.
//!
//! Why positioned reads and not a memory map: a mapped input truncated by
//! another program during the render kills the process with SIGBUS instead
//! of failing the song with a message, and every mapped page read counts
//! toward the process's resident memory, so a long file would grow RSS with
//! its length unless the pages were unmapped behind the reader. A `pread`
//! into a small buffer has neither problem and costs one copy out of the
//! page cache, a small fraction of the conversion.
//!
//! The samples are converted exactly as symphonia converts them
//! (i16 / 2^15, i24 / 2^23, f32 as stored), so a file reads the same bits
//! either way. Anything else (8- or 32-bit integers, a header announcing
//! more data than the file holds) is left to symphonia.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::StageError;
use crate::io::wav::read_header;
use crate::types::{Frames, SampleFormat};

/// Frames read from the file at a time.
const READ_FRAMES: usize = 4096;

/// An open WAV/RF64 file's sample data.
pub(super) struct WavData {
    path: PathBuf,
    file: File,
    format: SampleFormat,
    channels: usize,
    data_start: u64,
    frames: u64,
    /// Raw bytes of frames `buf_pos..buf_pos + buf_frames`.
    buf: Vec<u8>,
    buf_pos: u64,
    buf_frames: usize,
}

/// What [`WavData::open`] found.
pub(super) struct WavOpened {
    pub data: WavData,
    pub rate: u32,
    pub channels: u16,
    pub frames: Frames,
    pub format: SampleFormat,
}

impl WavData {
    /// The file's data when it is a WAV or RF64 of 16- or 24-bit PCM or
    /// 32-bit float whose data lies wholly in the file; `None` for any
    /// other file (symphonia decodes it). An RF64 file that does not
    /// qualify is an error: nothing else can read it.
    pub fn open(
        path: &Path,
        mut file: File,
        file_len: u64,
    ) -> Result<Option<WavOpened>, StageError> {
        let mut magic = [0u8; 4];
        let is_rf64 = match std::io::Read::read_exact(&mut file, &mut magic) {
            Ok(()) if &magic == b"RF64" => true,
            Ok(()) if &magic == b"RIFF" => false,
            _ => return Ok(None),
        };
        let refused = || {
            is_rf64.then(|| {
                StageError::Invalid(format!(
                    "{}: is an RF64 file stemflow cannot read (it reads 16- and 24-bit \
                     PCM and 32-bit float with a ds64 chunk)",
                    path.display()
                ))
            })
        };
        let Ok(h) = read_header(path) else {
            return refused().map_or(Ok(None), Err);
        };
        let frame_bytes = h.spec.channels as u64 * h.spec.format.bits() as u64 / 8;
        let data_end = h.data_start.saturating_add(h.frames.0 * frame_bytes);
        if h.frames.0 == 0 || data_end > file_len || frame_bytes == 0 {
            return refused().map_or(Ok(None), Err);
        }
        Ok(Some(WavOpened {
            data: WavData {
                path: path.to_path_buf(),
                file,
                format: h.spec.format,
                channels: h.spec.channels as usize,
                data_start: h.data_start,
                frames: h.frames.0,
                buf: Vec::new(),
                buf_pos: 0,
                buf_frames: 0,
            },
            rate: h.spec.sample_rate,
            channels: h.spec.channels,
            frames: h.frames,
            format: h.spec.format,
        }))
    }

    fn frame_bytes(&self) -> usize {
        self.channels * self.format.bits() as usize / 8
    }

    /// Fills `out` (interleaved, the file's channels) with the frames from
    /// `pos` on; all of them must lie in the file.
    pub fn read(&mut self, mut pos: u64, out: &mut [f32]) -> Result<(), StageError> {
        let ch = self.channels;
        let mut done = 0;
        while done < out.len() {
            if pos < self.buf_pos || pos >= self.buf_pos + self.buf_frames as u64 {
                self.fill(pos)?;
            }
            let skip = (pos - self.buf_pos) as usize;
            let n = (self.buf_frames - skip).min((out.len() - done) / ch);
            let fb = self.frame_bytes();
            let bytes = &self.buf[skip * fb..(skip + n) * fb];
            convert(self.format, bytes, &mut out[done..done + n * ch]);
            if let Some(i) = out[done..done + n * ch].iter().position(|v| !v.is_finite()) {
                return Err(StageError::Invalid(format!(
                    "{}: NaN or infinite sample at frame {}",
                    self.path.display(),
                    pos + (i / ch) as u64
                )));
            }
            done += n * ch;
            pos += n as u64;
        }
        Ok(())
    }

    /// Reads the raw bytes of up to [`READ_FRAMES`] frames from `pos`.
    fn fill(&mut self, pos: u64) -> Result<(), StageError> {
        let n = (self.frames - pos).min(READ_FRAMES as u64) as usize;
        let fb = self.frame_bytes();
        self.buf.resize(n * fb, 0);
        let at = self.data_start + pos * fb as u64;
        read_exact_at(&self.file, &mut self.buf, at).map_err(|e| {
            StageError::Invalid(format!(
                "{}: cannot read at frame {pos}: {e}",
                self.path.display()
            ))
        })?;
        self.buf_pos = pos;
        self.buf_frames = n;
        Ok(())
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(buf)
}

/// Little-endian samples to f32, as symphonia converts them.
fn convert(format: SampleFormat, bytes: &[u8], out: &mut [f32]) {
    match format {
        SampleFormat::Pcm16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = i16::from_le_bytes([b[0], b[1]]) as f32 / 32_768.0;
            }
        }
        SampleFormat::Pcm24 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(3)) {
                // The three bytes in the top of an i32, shifted back down
                // with their sign.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                *o = v as f32 / 8_388_608.0;
            }
        }
        SampleFormat::Float => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_symphonias() {
        // Full scale, the most negative value, one LSB and zero.
        let mut out = [0.0f32; 4];
        convert(
            SampleFormat::Pcm24,
            &[0xff, 0xff, 0x7f, 0x00, 0x00, 0x80, 0x01, 0, 0, 0, 0, 0],
            &mut out,
        );
        assert_eq!(
            out,
            [8_388_607.0 / 8_388_608.0, -1.0, 1.0 / 8_388_608.0, 0.0]
        );
        convert(
            SampleFormat::Pcm16,
            &[0xff, 0x7f, 0x00, 0x80],
            &mut out[..2],
        );
        assert_eq!(out[..2], [32_767.0 / 32_768.0, -1.0]);
    }
}
