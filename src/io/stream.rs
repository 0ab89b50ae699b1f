//! WAV onto a stream that cannot seek (`stemflow align IN - | next-tool`).
//!
//! Why a second writer: [`super::wav::WavOut`] writes placeholder sizes and
//! seeks back to patch them, which a pipe cannot do. Here the length is
//! known before the first sample (an aligned file has exactly T frames), so
//! the header carries the final RIFF and data sizes from the start — every
//! reader (hound, ffmpeg, symphonia) then decodes the stream as it would a
//! file, with no "unknown length" (0xFFFFFFFF) convention to trust. The
//! layout is the file writer's (JUNK/ds64 reserve, `fmt `, `data`), so a
//! streamed file has the same bytes as the one written to disk. Memory is
//! one block's bytes.

use std::io::Write;

use super::pcm::Quantiser;
use super::wav::{RIFF_LIMIT, encode, fmt_chunk};
use crate::error::StageError;
use crate::plan::Dither;
use crate::types::{Block, SampleFormat, StreamSpec};

/// Size of the JUNK chunk's body that becomes `ds64` in an RF64 file.
const DS64_BODY: u32 = 28;

/// Streams blocks of a stream of known length as a WAV (or RF64).
pub struct WavStream<W: Write> {
    out: W,
    /// Names the stream in errors ("standard output").
    name: String,
    spec: StreamSpec,
    quantiser: Option<Quantiser>,
    /// Samples the header promises, and samples written so far.
    promised: u64,
    written: u64,
    bytes: Vec<u8>,
}

impl<W: Write> WavStream<W> {
    /// Writes the header of a `frames`-frame stream of `spec` to `out`.
    pub fn new(
        mut out: W,
        name: &str,
        spec: StreamSpec,
        (dither, dither_key): (Dither, u64),
        frames: u64,
    ) -> Result<WavStream<W>, StageError> {
        let promised = frames * spec.channels as u64;
        let header = header(spec, promised * spec.format.bits() as u64 / 8, frames);
        out.write_all(&header).map_err(|e| io_err(name, e))?;
        Ok(WavStream {
            out,
            name: name.to_string(),
            spec,
            quantiser: (spec.format != SampleFormat::Float)
                .then(|| Quantiser::new(spec.format, dither, dither_key)),
            promised,
            written: 0,
            bytes: Vec::new(),
        })
    }

    /// Appends a block; more samples than promised is an error.
    pub fn write(&mut self, block: &Block) -> Result<(), StageError> {
        self.written += block.samples().len() as u64;
        if self.written > self.promised {
            return Err(self.short_or_long());
        }
        self.bytes.clear();
        encode(
            &mut self.bytes,
            self.quantiser.as_mut(),
            self.spec.format,
            block,
        );
        let name = &self.name;
        self.out.write_all(&self.bytes).map_err(|e| io_err(name, e))
    }

    /// Checks the promised length was met, pads and flushes.
    pub fn finish(mut self) -> Result<(), StageError> {
        if self.written != self.promised {
            return Err(self.short_or_long());
        }
        let data = self.written * self.spec.format.bits() as u64 / 8;
        let name = &self.name;
        if data % 2 == 1 {
            self.out.write_all(&[0]).map_err(|e| io_err(name, e))?; // RIFF pad byte
        }
        self.out.flush().map_err(|e| io_err(name, e))
    }

    /// The header's sizes no longer match: a bug upstream, never silent.
    fn short_or_long(&self) -> StageError {
        StageError::Invalid(format!(
            "{}: {} samples written, the WAV header promised {}",
            self.name, self.written, self.promised
        ))
    }
}

fn io_err(name: &str, e: std::io::Error) -> StageError {
    StageError::io(std::path::Path::new(name), e)
}

/// The complete header of a stream with `data` bytes of samples: RIFF, or
/// RF64 with its `ds64` when the sizes pass 32 bits.
fn header(spec: StreamSpec, data: u64, frames: u64) -> Vec<u8> {
    let fmt = fmt_chunk(spec);
    let head_len = 12 + 8 + DS64_BODY as u64 + 8 + fmt.len() as u64 + 8;
    let riff = head_len - 8 + data + data % 2;
    let rf64 = riff > RIFF_LIMIT;
    let mut h = Vec::with_capacity(head_len as usize);
    let small = |v: u64| if rf64 { u32::MAX } else { v as u32 };
    h.extend_from_slice(if rf64 { b"RF64" } else { b"RIFF" });
    h.extend_from_slice(&small(riff).to_le_bytes());
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(if rf64 { b"ds64" } else { b"JUNK" });
    h.extend_from_slice(&DS64_BODY.to_le_bytes());
    if rf64 {
        h.extend_from_slice(&riff.to_le_bytes());
        h.extend_from_slice(&data.to_le_bytes());
        h.extend_from_slice(&frames.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes()); // no table
    } else {
        h.extend_from_slice(&[0; DS64_BODY as usize]);
    }
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    h.extend_from_slice(&fmt);
    h.extend_from_slice(b"data");
    h.extend_from_slice(&small(data).to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::wav::WavOut;

    fn spec(format: SampleFormat, channels: u16) -> StreamSpec {
        StreamSpec {
            sample_rate: 44100,
            channels,
            format,
        }
    }

    fn block(channels: u16, frames: usize, phase: usize) -> Block {
        let mut b = Block::new(channels, frames);
        for (i, v) in b.samples_mut().iter_mut().enumerate() {
            *v = (((i + phase) as f32) * 0.37).sin() * 0.5;
        }
        b
    }

    #[test]
    fn a_stream_has_the_bytes_of_the_file_writer() {
        let dir = tempfile::tempdir().unwrap();
        for (format, channels) in [
            (SampleFormat::Float, 2),
            (SampleFormat::Pcm24, 1),
            (SampleFormat::Pcm16, 1),
        ] {
            let path = dir.path().join("f.wav");
            let s = spec(format, channels);
            let mut file = WavOut::create(&path, s, Dither::Tpdf, 7).unwrap();
            let mut bytes = Vec::new();
            let mut stream = WavStream::new(&mut bytes, "-", s, (Dither::Tpdf, 7), 301).unwrap();
            for (n, phase) in [(100, 0), (201, 100)] {
                let b = block(channels, n, phase);
                file.write(&b).unwrap();
                stream.write(&b).unwrap();
            }
            file.finish().unwrap();
            stream.finish().unwrap();
            assert_eq!(bytes, std::fs::read(&path).unwrap(), "{format:?}");
        }
    }

    #[test]
    fn a_length_other_than_promised_is_an_error() {
        let s = spec(SampleFormat::Pcm16, 1);
        let mut w = WavStream::new(Vec::new(), "-", s, (Dither::None, 1), 10).unwrap();
        w.write(&block(1, 5, 0)).unwrap();
        assert!(w.finish().unwrap_err().to_string().contains("promised 10"));
        let mut w = WavStream::new(Vec::new(), "-", s, (Dither::None, 1), 4).unwrap();
        assert!(w.write(&block(1, 5, 0)).is_err());
    }

    #[test]
    fn sizes_past_32_bits_make_an_rf64_header() {
        let frames = 1u64 << 31;
        let h = header(spec(SampleFormat::Float, 1), frames * 4, frames);
        assert_eq!(&h[..4], b"RF64");
        assert_eq!(&h[12..16], b"ds64");
        assert_eq!(
            u64::from_le_bytes(h[28..36].try_into().unwrap()),
            frames * 4
        );
        assert_eq!(u64::from_le_bytes(h[36..44].try_into().unwrap()), frames);
        assert_eq!(&h[h.len() - 4..], &u32::MAX.to_le_bytes());
    }
}
