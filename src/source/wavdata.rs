//! WAV and RF64 sources read straight from the file: the recorded stems
//! users render are mostly WAV, and going through symphonia's PCM decoder
//! cost a copy into its buffer, a per-sample conversion through generic
//! code, and a seek that decoded from the start. Here the file is memory
//! mapped: a seek is arithmetic (the frame's byte offset) and a read
//! converts the mapped bytes straight into the caller's block, with no copy
//! out of the page cache, so a loop's seam, a crossfade or a truncation
//! reads only the frames it needs, and RF64 (which symphonia 0.6 cannot
//! read) works too.
//!
//! A mapping has two dangers a positioned read does not, and both are
//! handled here:
//! - Memory. Every mapped page read counts toward the process's resident
//!   memory, so a long file would grow RSS with its length. The pages
//!   behind the reader are dropped from the mapping (`MADV_DONTNEED`)
//!   every [`DROP_BYTES`], and all of them when a seek jumps away, so at
//!   most about that much of each file is resident; the page cache keeps
//!   the data, and a jump back faults it in again.
//! - Truncation. Touching a mapped page that lies wholly past the end of
//!   the file kills the process with SIGBUS, so a file cut short by
//!   another program during the render would crash it instead of failing
//!   the song. Before touching each new window of [`CHECK_BYTES`] the
//!   file's current length is read (`fstat`), and a file shorter than the
//!   window needs fails the read with a message naming it. What remains
//!   is a race: a file truncated between that check and the reads of the
//!   same window (a few microseconds of conversion) still raises SIGBUS.
//!   Closing it would take a SIGBUS handler that unwinds out of arbitrary
//!   code, which Rust cannot do soundly; a program truncating a file that
//!   is being rendered is rare enough to leave it at that.
//!
//! The samples are converted exactly as symphonia converts them
//! (i16 / 2^15, i24 / 2^23, f32 as stored), so a file reads the same bits
//! either way. Anything else (8- or 32-bit integers, a header announcing
//! more data than the file holds, a file the system cannot map) is left to
//! symphonia.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[cfg(unix)]
use memmap2::Advice;
use memmap2::{Mmap, MmapOptions};

use crate::error::StageError;
use crate::io::wav::read_header;
use crate::types::{Frames, SampleFormat};

/// Bytes read behind the reader before their pages are dropped from the
/// mapping: small against the rest of a render's memory (each WAV stem
/// holds at most about 400 KB of its file), large enough that the
/// `madvise` calls cost nothing (one per 256 KB, a few microseconds).
const DROP_BYTES: usize = 256 << 10;

/// Bytes read per check of the file's length: one `fstat` per 128 KB
/// costs nothing, and keeps the window a truncation can race short.
const CHECK_BYTES: usize = 128 << 10;

/// The boundary the end of a dropped range is rounded down to: a multiple
/// of every page size in use (4 KB to 64 KB), so no page the reader is
/// still in is dropped.
const DROP_ALIGN: usize = 64 << 10;

/// An open WAV/RF64 file's sample data.
pub(super) struct WavData {
    path: PathBuf,
    /// Kept open for the length checks.
    file: File,
    /// The whole file, read-only.
    map: Mmap,
    format: SampleFormat,
    channels: usize,
    data_start: usize,
    frames: u64,
    /// Bytes of the map that may be resident (read since the last drop).
    resident: Range<usize>,
    /// Bytes of the map the file held at the last length check.
    checked: Range<usize>,
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
        let Some(map) = map_file(&file, file_len) else {
            return refused().map_or(Ok(None), Err);
        };
        Ok(Some(WavOpened {
            data: WavData {
                path: path.to_path_buf(),
                file,
                map,
                format: h.spec.format,
                channels: h.spec.channels as usize,
                // The map's length is a usize, and the data lies in it.
                data_start: h.data_start as usize,
                frames: h.frames.0,
                resident: 0..0,
                checked: 0..0,
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
    /// `pos` on; all of them must lie in the file. Reads a window of at
    /// most [`CHECK_BYTES`] at a time, each after the file's length is
    /// known to cover it.
    pub fn read(&mut self, pos: u64, out: &mut [f32]) -> Result<(), StageError> {
        debug_assert!(pos + (out.len() / self.channels) as u64 <= self.frames);
        let fb = self.frame_bytes();
        let window = (CHECK_BYTES / fb).max(1) * self.channels;
        for (i, out) in out.chunks_mut(window).enumerate() {
            let at = pos + (i * window / self.channels) as u64;
            let start = self.data_start + at as usize * fb;
            let bytes = start..start + out.len() / self.channels * fb;
            self.check(at, &bytes)?;
            self.release(&bytes);
            convert(self.format, &self.map[bytes], out);
            // Only floats can be NaN or infinite.
            if self.format == SampleFormat::Float
                && let Some(j) = out.iter().position(|v| !v.is_finite())
            {
                return Err(StageError::Invalid(format!(
                    "{}: NaN or infinite sample at frame {}",
                    self.path.display(),
                    at + (j / self.channels) as u64
                )));
            }
        }
        Ok(())
    }

    /// Fails unless the file still holds `bytes` (the frames from `pos`):
    /// reading a mapped page past its end would raise SIGBUS. Reads the
    /// file's length when `bytes` leave the window last checked.
    fn check(&mut self, pos: u64, bytes: &Range<usize>) -> Result<(), StageError> {
        if self.checked.start <= bytes.start && bytes.end <= self.checked.end {
            return Ok(());
        }
        let len = self.file.metadata().map(|m| m.len()).map_err(|e| {
            StageError::Invalid(format!(
                "{}: cannot read at frame {pos}: {e}",
                self.path.display()
            ))
        })?;
        if len < bytes.end as u64 {
            return Err(StageError::Invalid(format!(
                "{}: cannot read at frame {pos}: the file was cut to {len} bytes \
                 during the render (its data ends at byte {})",
                self.path.display(),
                self.data_start as u64 + self.frames * self.frame_bytes() as u64
            )));
        }
        let end = (bytes.start + CHECK_BYTES).min(len as usize).min(self.map.len());
        self.checked = bytes.start..end.max(bytes.end);
        Ok(())
    }

    /// Notes that `bytes` are about to be read, and drops from the mapping
    /// the pages read before them: all of them after a jump, else those
    /// more than [`DROP_BYTES`] behind.
    fn release(&mut self, bytes: &Range<usize>) {
        let r = &mut self.resident;
        if bytes.start < r.start || bytes.start > r.end {
            drop_pages(&self.map, r.clone());
            self.resident = bytes.clone();
            return;
        }
        r.end = r.end.max(bytes.end);
        let behind = bytes.start / DROP_ALIGN * DROP_ALIGN;
        if behind >= r.start + DROP_BYTES {
            drop_pages(&self.map, r.start..behind);
            r.start = behind;
        }
    }
}

/// Maps the whole file read-only, or `None` where the system cannot (the
/// file is then decoded by symphonia).
fn map_file(file: &File, len: u64) -> Option<Mmap> {
    let len = usize::try_from(len).ok()?;
    // SAFETY: the map is only ever read, as bytes converted to samples.
    // Another program writing the file changes the samples read (as it
    // would with any read); one truncating it is guarded against by
    // `WavData::check` (the module doc says what race remains).
    let map = unsafe { MmapOptions::new().len(len).map(file) }.ok()?;
    // Only a hint (more read-ahead): a failure changes nothing.
    #[cfg(unix)]
    let _ = map.advise(Advice::Sequential);
    Some(map)
}

/// Drops `range` of the map from the process's memory; the page cache
/// keeps the data.
#[cfg(unix)]
fn drop_pages(map: &Mmap, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    // SAFETY: on a shared, read-only file mapping MADV_DONTNEED only
    // unmaps the pages; reading them again faults the same bytes in from
    // the file. No reference into the map outlives a read (the samples
    // are converted out of it). A failure only leaves the pages resident.
    let _ = unsafe {
        map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, range.len())
    };
}

/// Elsewhere the pages stay mapped (the system trims them under pressure).
#[cfg(not(unix))]
fn drop_pages(_map: &Mmap, _range: Range<usize>) {}

/// Little-endian samples to f32, as symphonia converts them. Over
/// fixed-size arrays rather than `chunks_exact`, so the loops compile to
/// straight loads without a call per sample.
fn convert(format: SampleFormat, bytes: &[u8], out: &mut [f32]) {
    match format {
        SampleFormat::Pcm16 => {
            for (o, b) in out.iter_mut().zip(bytes.as_chunks::<2>().0) {
                *o = i16::from_le_bytes(*b) as f32 / 32_768.0;
            }
        }
        SampleFormat::Pcm24 => {
            for (o, b) in out.iter_mut().zip(bytes.as_chunks::<3>().0) {
                // The three bytes in the top of an i32, shifted back down
                // with their sign.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                *o = v as f32 / 8_388_608.0;
            }
        }
        SampleFormat::Float => {
            for (o, b) in out.iter_mut().zip(bytes.as_chunks::<4>().0) {
                *o = f32::from_le_bytes(*b);
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

    /// Resident bytes of the mapping holding `addr`, from the kernel's own
    /// account (/proc/self/smaps).
    #[cfg(target_os = "linux")]
    fn mapped_rss(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = first.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = (a..b).contains(&addr);
            } else if inside && let Some(kb) = line.strip_prefix("Rss:") {
                return kb.trim().trim_end_matches("kB").trim().parse::<usize>().unwrap() << 10;
            }
        }
        panic!("no mapping holds {addr:#x}")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pages_behind_the_reader_leave_memory() {
        // 8 MB of 16-bit stereo, read through in blocks, then its end and
        // its start (a loop's seam).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.wav");
        let frames = 2 << 20;
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..2 * frames {
            w.write_sample((i % 65_536) as u16 as i16).unwrap();
        }
        w.finalize().unwrap();
        let file = File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        let mut d = WavData::open(&path, file, len).unwrap().unwrap().data;
        let addr = d.map.as_ptr() as usize;
        let mut out = vec![0.0f32; 2 * 4096];
        d.read(0, &mut out).unwrap();
        // The measure sees the pages being read.
        assert!(mapped_rss(addr) >= 4096, "{}", mapped_rss(addr));
        let mut most = 0;
        for pos in (0..frames as u64).step_by(4096) {
            d.read(pos, &mut out).unwrap();
            // The samples are the file's (i16 / 2^15).
            let want = ((2 * pos as usize) % 65_536) as u16 as i16;
            assert_eq!(out[0], want as f32 / 32_768.0, "at {pos}");
            most = most.max(mapped_rss(addr));
        }
        d.read(frames as u64 - 4096, &mut out).unwrap();
        d.read(0, &mut out).unwrap();
        most = most.max(mapped_rss(addr));
        // At most the drop interval, its alignment, a check window and the
        // kernel's fault-around (64 KB) of an 8 MB file.
        let bound = DROP_BYTES + DROP_ALIGN + CHECK_BYTES + (64 << 10);
        assert!(most <= bound, "{most} bytes resident, bound {bound}");
    }
}
