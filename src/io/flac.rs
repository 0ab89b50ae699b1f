//! FLAC writing (SPEC §10): the same integers a WAV of the stream would
//! hold ([`Quantiser`]), encoded with the pure-Rust `flacenc` one fixed-size
//! frame at a time, so memory stays at one frame whatever the length.
//! FLAC's STREAMINFO holds the total length and the MD5 of the samples,
//! known only at the end: a placeholder is written first and patched in
//! place at [`FlacOut::finish`], as the reference encoder does.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, StreamInfo};
use flacenc::error::Verify;
use flacenc::source::{Context, Fill, FrameBuf};

use super::pcm::Quantiser;
use super::wav::WavHeader;
use crate::error::StageError;
use crate::plan::Dither;
use crate::types::{Block, Frames, SampleFormat, StreamSpec};

/// Frames per FLAC frame: the reference encoder's default.
const FRAME: usize = 4096;
/// "fLaC", the STREAMINFO block header and its 34-byte body.
const HEAD_LEN: u64 = 4 + 4 + 34;

/// Streams blocks into a FLAC file.
pub struct FlacOut {
    path: PathBuf,
    file: std::io::BufWriter<File>,
    spec: StreamSpec,
    quantiser: Quantiser,
    /// Interleaved integers waiting for a whole frame.
    pending: Vec<i32>,
    framebuf: FrameBuf,
    /// MD5 and length of the samples, as STREAMINFO records them.
    context: Context,
    info: StreamInfo,
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    frame_number: usize,
    sink: ByteSink,
    /// Smallest and largest encoded frame, in bytes.
    frame_bytes: (usize, usize),
}

/// A `flacenc` error as a stage error on `path`.
fn encode_err(path: &Path, e: impl std::fmt::Debug) -> StageError {
    StageError::Invalid(format!("{}: FLAC encoder: {e:?}", path.display()))
}

impl FlacOut {
    /// Creates `path` for a stream of `spec` (pcm16 or pcm24), dithered as
    /// the WAV writer dithers it.
    pub fn create(
        path: &Path,
        spec: StreamSpec,
        dither: Dither,
        dither_key: u64,
    ) -> Result<FlacOut, StageError> {
        if spec.format == SampleFormat::Float {
            return Err(StageError::Invalid(format!(
                "{}: FLAC holds integer samples only (pcm16 or pcm24)",
                path.display()
            )));
        }
        let bits = spec.format.bits() as usize;
        let ch = spec.channels as usize;
        let bad = |e| encode_err(path, e);
        let info = StreamInfo::new(spec.sample_rate as usize, ch, bits).map_err(bad)?;
        let config = flacenc::config::Encoder::default()
            .into_verified()
            .map_err(|(_, e)| encode_err(path, e))?;
        let mut file = std::io::BufWriter::with_capacity(
            1 << 17,
            File::create(path).map_err(|e| StageError::io(path, e))?,
        );
        file.write_all(&[0; HEAD_LEN as usize])
            .map_err(|e| StageError::io(path, e))?;
        Ok(FlacOut {
            path: path.to_path_buf(),
            file,
            spec,
            quantiser: Quantiser::new(spec.format, dither, dither_key),
            pending: Vec::with_capacity(FRAME * ch),
            framebuf: FrameBuf::with_size(ch, FRAME).map_err(bad)?,
            context: Context::new(bits, ch),
            info,
            config,
            frame_number: 0,
            sink: ByteSink::new(),
            frame_bytes: (usize::MAX, 0),
        })
    }

    /// Appends a block.
    pub fn write(&mut self, block: &Block) -> Result<(), StageError> {
        let whole = FRAME * self.spec.channels as usize;
        for v in block.samples() {
            self.pending.push(self.quantiser.next(*v));
            if self.pending.len() == whole {
                self.encode_pending()?;
            }
        }
        Ok(())
    }

    /// Encodes the pending samples as one frame and writes it.
    fn encode_pending(&mut self) -> Result<(), StageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        self.framebuf
            .fill_interleaved(&self.pending)
            .map_err(|e| encode_err(path, e))?;
        self.context
            .fill_interleaved(&self.pending)
            .map_err(|e| encode_err(path, e))?;
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.framebuf,
            self.frame_number,
            &self.info,
        )
        .map_err(|e| encode_err(path, e))?;
        self.sink.clear();
        frame
            .write(&mut self.sink)
            .map_err(|e| encode_err(&self.path, e))?;
        let bytes = self.sink.as_slice();
        self.frame_bytes = (
            self.frame_bytes.0.min(bytes.len()),
            self.frame_bytes.1.max(bytes.len()),
        );
        self.file
            .write_all(bytes)
            .map_err(|e| StageError::io(&self.path, e))?;
        self.frame_number += 1;
        self.pending.clear();
        Ok(())
    }

    /// Encodes what is left, patches STREAMINFO and closes.
    pub fn finish(mut self) -> Result<(), StageError> {
        self.encode_pending()?;
        let head = self.head();
        let io = |e| StageError::io(&self.path, e);
        let mut file = self.file.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&head).map_err(io)?;
        Ok(())
    }

    /// "fLaC" and the final STREAMINFO block (the only metadata block).
    fn head(&self) -> Vec<u8> {
        let total = self.context.total_samples() as u64;
        let (min_frame, max_frame) = match self.frame_bytes {
            (usize::MAX, _) => (0, 0),
            sizes => sizes,
        };
        let mut h = Vec::with_capacity(HEAD_LEN as usize);
        h.extend_from_slice(b"fLaC");
        h.extend_from_slice(&[0x80, 0, 0, 34]); // last block, STREAMINFO, 34 bytes
        h.extend_from_slice(&(FRAME as u16).to_be_bytes());
        h.extend_from_slice(&(FRAME as u16).to_be_bytes());
        h.extend_from_slice(&(min_frame as u32).to_be_bytes()[1..]);
        h.extend_from_slice(&(max_frame as u32).to_be_bytes()[1..]);
        // 20 bits rate, 3 bits channels − 1, 5 bits bits − 1, 36 bits length.
        let packed = (self.spec.sample_rate as u64) << 44
            | ((self.spec.channels as u64 - 1) << 41)
            | ((self.spec.format.bits() as u64 - 1) << 36)
            | (total & 0xF_FFFF_FFFF);
        h.extend_from_slice(&packed.to_be_bytes());
        h.extend_from_slice(&self.context.md5_digest());
        h
    }
}

/// Reads a FLAC file's STREAMINFO: its stream and its length.
pub fn read_header(path: &Path) -> Result<WavHeader, StageError> {
    let io = |e| StageError::io(path, e);
    let mut head = [0u8; HEAD_LEN as usize];
    File::open(path)
        .map_err(io)?
        .read_exact(&mut head)
        .map_err(io)?;
    if &head[..4] != b"fLaC" || head[4] & 0x7F != 0 {
        return Err(StageError::Invalid(format!(
            "{}: not a FLAC file starting with STREAMINFO",
            path.display()
        )));
    }
    let packed = u64::from_be_bytes(head[18..26].try_into().expect("8 bytes"));
    let bits = ((packed >> 36) & 0x1F) as u16 + 1;
    let format = match bits {
        16 => SampleFormat::Pcm16,
        24 => SampleFormat::Pcm24,
        b => {
            return Err(StageError::Invalid(format!(
                "{}: {b}-bit FLAC is not one stemflow writes",
                path.display()
            )));
        }
    };
    Ok(WavHeader {
        spec: StreamSpec {
            sample_rate: (packed >> 44) as u32,
            channels: ((packed >> 41) & 0x7) as u16 + 1,
            format,
        },
        frames: Frames(packed & 0xF_FFFF_FFFF),
        rf64: false,
        data_start: HEAD_LEN,
    })
}
