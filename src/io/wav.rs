//! WAV writing: float, 24- and 16-bit PCM, with seeded TPDF dither on the
//! integer formats so the bytes depend only on the audio, never on how it
//! was split into blocks.
//!
//! The header always reserves a 28-byte `JUNK` chunk after `WAVE`: when the
//! file outgrows the 32-bit RIFF size fields it is turned in place into an
//! RF64 file (EBU Tech 3306) whose `ds64` chunk takes that space, instead of
//! silently wrapping the sizes. Readers that do not know `JUNK` skip it, as
//! the RIFF rules say.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::bext::{self, Bext, BextLoudness};
use super::pcm::Quantiser;
use crate::error::StageError;
use crate::plan::Dither;
use crate::types::{Block, Frames, SampleFormat, StreamSpec};

/// Sizes above this do not fit a RIFF header's 32-bit fields.
pub const RIFF_LIMIT: u64 = u32::MAX as u64;
/// Bytes before the sample data: RIFF/WAVE (12), JUNK/ds64 (8 + 28), fmt
/// (8 + 16 or 40), data header (8).
const DS64_BODY: u32 = 28;

/// `wFormatTag` of plain integer PCM.
const WAVE_FORMAT_PCM: u16 = 1;
/// `wFormatTag` of IEEE float samples (the extensible sub-format's code).
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
/// `wFormatTag` of WAVE_FORMAT_EXTENSIBLE: the real format is in the
/// sub-format GUID that follows.
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// `cbSize` of WAVE_FORMAT_EXTENSIBLE: valid bits (2), channel mask (4) and
/// sub-format GUID (16).
const EXTENSIBLE_CB_SIZE: u16 = 22;
/// Speaker positions of the channel mask: front centre for mono, front
/// left and right for stereo.
const SPEAKER_FRONT_CENTER: u32 = 0x4;
const SPEAKER_FRONT_LEFT_RIGHT: u32 = 0x3;

/// The sub-format GUID after its first two bytes (the format code): the
/// fixed KSDATAFORMAT_SUBTYPE tail.
const GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Bytes buffered per output file before they go to the kernel.
const WRITE_BUFFER: usize = 1 << 17;

/// Streams blocks into a WAV (or RF64) file.
pub struct WavOut {
    path: PathBuf,
    file: File,
    spec: StreamSpec,
    /// Float to integer PCM, `None` for float files.
    quantiser: Option<Quantiser>,
    /// Samples written so far.
    written: u64,
    /// Encoded bytes not yet written: blocks are encoded straight into it
    /// and it goes to the kernel whenever it holds WRITE_BUFFER bytes.
    bytes: Vec<u8>,
    data_start: u64,
    /// Above this RIFF size the file becomes RF64 (lowered only in tests).
    rf64_threshold: u64,
    /// Where the `bext` loudness fields are, if the file has the chunk,
    /// and what to patch into them at the end.
    bext_loudness: Option<(u64, BextLoudness)>,
}

impl WavOut {
    /// Creates `path` for a stream of `spec`. `dither_key` seeds the dither
    /// of integer formats.
    pub fn create(
        path: &Path,
        spec: StreamSpec,
        dither: Dither,
        dither_key: u64,
    ) -> Result<WavOut, StageError> {
        WavOut::with_options(path, spec, dither, dither_key, RIFF_LIMIT, None)
    }

    /// As [`WavOut::create`], as a Broadcast WAV carrying `bext` (its
    /// loudness set with [`WavOut::set_loudness`] before finishing).
    pub fn create_bwf(
        path: &Path,
        spec: StreamSpec,
        dither: Dither,
        dither_key: u64,
        bext: &Bext,
    ) -> Result<WavOut, StageError> {
        WavOut::with_options(path, spec, dither, dither_key, RIFF_LIMIT, Some(bext))
    }

    /// The loudness the `bext` chunk will carry (ignored without one).
    pub fn set_loudness(&mut self, loudness: BextLoudness) {
        if let Some((_, l)) = self.bext_loudness.as_mut() {
            *l = loudness;
        }
    }

    /// As [`WavOut::create`], switching to RF64 above `threshold` bytes.
    #[cfg(test)]
    pub fn with_rf64_threshold(
        path: &Path,
        spec: StreamSpec,
        dither: Dither,
        dither_key: u64,
        threshold: u64,
    ) -> Result<WavOut, StageError> {
        WavOut::with_options(path, spec, dither, dither_key, threshold, None)
    }

    /// The one constructor: RF64 above `threshold`, `bext` if given
    /// (right after the JUNK/ds64 chunk, before `fmt `).
    fn with_options(
        path: &Path,
        spec: StreamSpec,
        dither: Dither,
        dither_key: u64,
        threshold: u64,
        bext: Option<&Bext>,
    ) -> Result<WavOut, StageError> {
        let io = |e| StageError::io(path, e);
        let file = File::create(path).map_err(io)?;
        let fmt = fmt_chunk(spec);
        let mut h = Vec::with_capacity(WRITE_BUFFER + (1 << 16));
        h.extend_from_slice(b"RIFF\0\0\0\0WAVE");
        h.extend_from_slice(b"JUNK");
        h.extend_from_slice(&DS64_BODY.to_le_bytes());
        h.extend_from_slice(&[0; DS64_BODY as usize]);
        let bext_loudness = bext.map(|b| {
            let at = h.len() as u64 + 8 + bext::LOUDNESS_OFFSET;
            h.extend_from_slice(&bext::chunk(b));
            (at, BextLoudness::default())
        });
        h.extend_from_slice(b"fmt ");
        h.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        h.extend_from_slice(&fmt);
        h.extend_from_slice(b"data\0\0\0\0");
        let data_start = h.len() as u64;
        Ok(WavOut {
            path: path.to_path_buf(),
            file,
            spec,
            quantiser: (spec.format != SampleFormat::Float)
                .then(|| Quantiser::new(spec.format, dither, dither_key)),
            written: 0,
            bytes: h,
            data_start,
            rf64_threshold: threshold,
            bext_loudness,
        })
    }

    /// Appends a block.
    pub fn write(&mut self, block: &Block) -> Result<(), StageError> {
        encode(
            &mut self.bytes,
            self.quantiser.as_mut(),
            self.spec.format,
            block,
        );
        self.written += block.samples().len() as u64;
        if self.bytes.len() >= WRITE_BUFFER {
            self.file
                .write_all(&self.bytes)
                .map_err(|e| StageError::io(&self.path, e))?;
            self.bytes.clear();
        }
        Ok(())
    }

    /// Writes the final sizes (as RF64 if they need 64 bits) and closes.
    pub fn finish(mut self) -> Result<(), StageError> {
        let io = |e| StageError::io(&self.path, e);
        let data = self.written * self.spec.format.bits() as u64 / 8;
        if data % 2 == 1 {
            self.bytes.push(0); // RIFF pad byte
        }
        let riff = self.data_start - 8 + data + data % 2;
        let frames = self.written / self.spec.channels as u64;
        // Everything buffered goes out before the header is patched.
        self.file.write_all(&self.bytes).map_err(io)?;
        let f = &mut self.file;
        if riff > self.rf64_threshold {
            f.seek(SeekFrom::Start(0)).map_err(io)?;
            f.write_all(b"RF64").map_err(io)?;
            f.write_all(&u32::MAX.to_le_bytes()).map_err(io)?;
            f.seek(SeekFrom::Start(12)).map_err(io)?;
            let mut ds64 = Vec::with_capacity(36);
            ds64.extend_from_slice(b"ds64");
            ds64.extend_from_slice(&DS64_BODY.to_le_bytes());
            ds64.extend_from_slice(&riff.to_le_bytes());
            ds64.extend_from_slice(&data.to_le_bytes());
            ds64.extend_from_slice(&frames.to_le_bytes());
            ds64.extend_from_slice(&0u32.to_le_bytes()); // no table
            f.write_all(&ds64).map_err(io)?;
            f.seek(SeekFrom::Start(self.data_start - 4)).map_err(io)?;
            f.write_all(&u32::MAX.to_le_bytes()).map_err(io)?;
        } else {
            f.seek(SeekFrom::Start(4)).map_err(io)?;
            f.write_all(&(riff as u32).to_le_bytes()).map_err(io)?;
            f.seek(SeekFrom::Start(self.data_start - 4)).map_err(io)?;
            f.write_all(&(data as u32).to_le_bytes()).map_err(io)?;
        }
        if let Some((at, loudness)) = &self.bext_loudness {
            f.seek(SeekFrom::Start(*at)).map_err(io)?;
            f.write_all(&bext::loudness_bytes(loudness)).map_err(io)?;
        }
        // Flushing to disk is the batch's call (`--sync`), made once per song.
        Ok(())
    }
}

/// Appends `block`'s samples as the data chunk holds them: floats, or
/// integers from `quantiser`.
pub(super) fn encode(
    bytes: &mut Vec<u8>,
    quantiser: Option<&mut Quantiser>,
    format: SampleFormat,
    block: &Block,
) {
    match quantiser {
        None => extend_le_bytes(bytes, block.samples()),
        Some(q) => {
            // Sized once, then filled: no capacity check per sample.
            let width = format.bits() as usize / 8;
            let start = bytes.len();
            bytes.resize(start + block.samples().len() * width, 0);
            for (out, v) in bytes[start..].chunks_exact_mut(width).zip(block.samples()) {
                out.copy_from_slice(&q.next(*v).to_le_bytes()[..width]);
            }
        }
    }
}

/// Appends `samples` as little-endian IEEE floats.
#[cfg(target_endian = "little")]
fn extend_le_bytes(bytes: &mut Vec<u8>, samples: &[f32]) {
    // SAFETY: f32 has no padding and every byte of it is initialised; on a
    // little-endian machine its memory is exactly its little-endian bytes.
    let raw =
        unsafe { std::slice::from_raw_parts(samples.as_ptr().cast::<u8>(), samples.len() * 4) };
    bytes.extend_from_slice(raw);
}

/// Appends `samples` as little-endian IEEE floats.
#[cfg(target_endian = "big")]
fn extend_le_bytes(bytes: &mut Vec<u8>, samples: &[f32]) {
    for v in samples {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
}

/// The `fmt ` body: plain PCM for 16 bits, WAVE_FORMAT_EXTENSIBLE (as hound
/// writes it) for 24-bit and float.
pub(super) fn fmt_chunk(spec: StreamSpec) -> Vec<u8> {
    let bits = spec.format.bits();
    let block_align = spec.channels * bits / 8;
    let mut b = Vec::with_capacity(40);
    let tag = if spec.format == SampleFormat::Pcm16 {
        WAVE_FORMAT_PCM
    } else {
        WAVE_FORMAT_EXTENSIBLE
    };
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(&spec.channels.to_le_bytes());
    b.extend_from_slice(&spec.sample_rate.to_le_bytes());
    b.extend_from_slice(&(spec.sample_rate * block_align as u32).to_le_bytes());
    b.extend_from_slice(&block_align.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    if tag == WAVE_FORMAT_EXTENSIBLE {
        b.extend_from_slice(&EXTENSIBLE_CB_SIZE.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        let mask = if spec.channels == 1 {
            SPEAKER_FRONT_CENTER
        } else {
            SPEAKER_FRONT_LEFT_RIGHT
        };
        b.extend_from_slice(&mask.to_le_bytes());
        let sub = if spec.format == SampleFormat::Float {
            WAVE_FORMAT_IEEE_FLOAT
        } else {
            WAVE_FORMAT_PCM
        };
        b.extend_from_slice(&sub.to_le_bytes());
        b.extend_from_slice(&GUID_TAIL);
    }
    b
}

/// What a WAV or RF64 header says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WavHeader {
    pub spec: StreamSpec,
    pub frames: Frames,
    pub rf64: bool,
    /// Byte offset of the first sample.
    pub data_start: u64,
}

/// Reads the samples of a float WAV or RF64 that stemflow wrote (the
/// unclipped pre-master), a block at a time.
pub struct FloatReader {
    path: PathBuf,
    file: std::io::BufReader<File>,
    bytes: Vec<u8>,
}

impl FloatReader {
    pub fn open(path: &Path) -> Result<FloatReader, StageError> {
        let header = read_header(path)?;
        if header.spec.format != SampleFormat::Float {
            return Err(StageError::Invalid(format!(
                "{}: expected 32-bit float samples",
                path.display()
            )));
        }
        let io = |e| StageError::io(path, e);
        let mut file =
            std::io::BufReader::with_capacity(WRITE_BUFFER, File::open(path).map_err(io)?);
        file.seek(SeekFrom::Start(header.data_start)).map_err(io)?;
        Ok(FloatReader {
            path: path.to_path_buf(),
            file,
            bytes: Vec::new(),
        })
    }

    /// Fills `out` with the next samples; the file must hold them.
    pub fn read_exact(&mut self, out: &mut [f32]) -> Result<(), StageError> {
        self.bytes.resize(out.len() * 4, 0);
        self.file
            .read_exact(&mut self.bytes)
            .map_err(|e| StageError::io(&self.path, e))?;
        // Whole 4-byte arrays, not byte-indexed chunks: the loop then
        // compiles to plain loads (it was a call per sample).
        let (samples, _) = self.bytes.as_chunks::<4>();
        for (v, b) in out.iter_mut().zip(samples) {
            *v = f32::from_le_bytes(*b);
        }
        Ok(())
    }
}

/// Reads a WAV or RF64 header (the chunks up to `data`).
pub fn read_header(path: &Path) -> Result<WavHeader, StageError> {
    let bad = |m: &str| StageError::Invalid(format!("{}: {m}", path.display()));
    let io = |e| StageError::io(path, e);
    let mut f = std::io::BufReader::new(File::open(path).map_err(io)?);
    let mut head = [0u8; 12];
    f.read_exact(&mut head).map_err(io)?;
    let rf64 = match &head[..4] {
        b"RIFF" => false,
        b"RF64" => true,
        _ => return Err(bad("not a RIFF/RF64 file")),
    };
    if &head[8..12] != b"WAVE" {
        return Err(bad("not a WAVE file"));
    }
    let (mut ds64_data, mut fmt) = (None, None);
    loop {
        let mut ch = [0u8; 8];
        f.read_exact(&mut ch).map_err(io)?;
        let len = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]) as u64;
        match &ch[..4] {
            b"ds64" => {
                let mut body = [0u8; 24];
                f.read_exact(&mut body).map_err(io)?;
                // A fixed 8-byte slice of a 24-byte array: the conversion cannot fail.
                ds64_data = Some(u64::from_le_bytes(body[8..16].try_into().expect("8 bytes")));
                f.seek_relative(len as i64 - 24 + (len % 2) as i64)
                    .map_err(io)?;
            }
            b"fmt " => {
                let mut body = vec![0u8; len as usize];
                f.read_exact(&mut body).map_err(io)?;
                if body.len() < 16 {
                    return Err(bad("fmt chunk too short"));
                }
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let mut tag = u16_at(0);
                if tag == WAVE_FORMAT_EXTENSIBLE && body.len() >= 26 {
                    tag = u16_at(24);
                }
                let bits = u16_at(14);
                let format = match (tag, bits) {
                    (WAVE_FORMAT_IEEE_FLOAT, 32) => SampleFormat::Float,
                    (WAVE_FORMAT_PCM, 24) => SampleFormat::Pcm24,
                    (WAVE_FORMAT_PCM, 16) => SampleFormat::Pcm16,
                    _ => {
                        return Err(bad(&format!(
                            "format tag {tag} with {bits} bits is not one stemflow writes"
                        )));
                    }
                };
                let rate = u32::from_le_bytes(body[4..8].try_into().expect("4 bytes"));
                fmt = Some(StreamSpec {
                    sample_rate: rate,
                    channels: u16_at(2),
                    format,
                });
                if len % 2 == 1 {
                    f.seek_relative(1).map_err(io)?;
                }
            }
            b"data" => {
                let spec = fmt.ok_or_else(|| bad("data before fmt"))?;
                let bytes = match (rf64, ds64_data) {
                    (true, Some(d)) if len == u32::MAX as u64 => d,
                    (true, None) => return Err(bad("RF64 without a ds64 chunk")),
                    _ => len,
                };
                let frame_bytes = spec.channels as u64 * spec.format.bits() as u64 / 8;
                return Ok(WavHeader {
                    spec,
                    frames: Frames(bytes / frame_bytes.max(1)),
                    rf64,
                    data_start: f.stream_position().map_err(io)?,
                });
            }
            _ => f.seek_relative(len as i64 + (len % 2) as i64).map_err(io)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, spec: StreamSpec, threshold: u64, frames: usize) {
        let mut w = WavOut::with_rf64_threshold(path, spec, Dither::Tpdf, 9, threshold).unwrap();
        let mut b = Block::new(spec.channels, frames);
        for (i, v) in b.samples_mut().iter_mut().enumerate() {
            *v = ((i * 37) % 200) as f32 / 100.0 - 1.0;
        }
        w.write(&b).unwrap();
        w.finish().unwrap();
    }

    #[test]
    fn exact_silence_is_never_dithered() {
        let dir = tempfile::tempdir().unwrap();
        for format in [SampleFormat::Pcm24, SampleFormat::Pcm16] {
            let spec = StreamSpec {
                sample_rate: 48000,
                channels: 1,
                format,
            };
            let p = dir.path().join("s.wav");
            let mut w = WavOut::create(&p, spec, Dither::Tpdf, 3).unwrap();
            let mut b = Block::new(1, 4000);
            // Silence, a quiet signal, silence again.
            for (i, v) in b.samples_mut().iter_mut().enumerate() {
                *v = if (1000..2000).contains(&i) { 1e-6 } else { 0.0 };
            }
            w.write(&b).unwrap();
            w.finish().unwrap();
            let got: Vec<i32> = hound::WavReader::open(&p)
                .unwrap()
                .samples::<i32>()
                .map(Result::unwrap)
                .collect();
            assert!(got[..1000].iter().chain(&got[2000..]).all(|&v| v == 0));
            assert!(got[1000..2000].iter().any(|&v| v != 0), "still dithered");
        }
    }

    #[test]
    fn every_format_reads_back_with_hound_and_our_reader() {
        let dir = tempfile::tempdir().unwrap();
        for format in [
            SampleFormat::Float,
            SampleFormat::Pcm24,
            SampleFormat::Pcm16,
        ] {
            for channels in [1u16, 2] {
                let spec = StreamSpec {
                    sample_rate: 44100,
                    channels,
                    format,
                };
                let p = dir.path().join("x.wav");
                write(&p, spec, RIFF_LIMIT, 1001);
                let r = hound::WavReader::open(&p).unwrap();
                assert_eq!(r.duration(), 1001);
                assert_eq!(
                    (
                        r.spec().channels,
                        r.spec().sample_rate,
                        r.spec().bits_per_sample
                    ),
                    (channels, 44100, format.bits())
                );
                let h = read_header(&p).unwrap();
                assert_eq!((h.spec, h.frames, h.rf64), (spec, Frames(1001), false));
            }
        }
    }

    #[test]
    fn float_blocks_big_and_small_read_back_in_order() {
        // Blocks smaller and larger than the write buffer, and ones that
        // straddle its flushes: hound must see every sample once, in order.
        let dir = tempfile::tempdir().unwrap();
        let spec = StreamSpec {
            sample_rate: 48000,
            channels: 2,
            format: SampleFormat::Float,
        };
        let p = dir.path().join("f.wav");
        let mut w = WavOut::create(&p, spec, Dither::None, 1).unwrap();
        let (mut want, mut n) = (Vec::new(), 0u32);
        for frames in [5, 5000, 3, 4096, 1, 40_000, 7] {
            let mut b = Block::new(2, frames);
            for v in b.samples_mut() {
                *v = f32::from_bits(0x3000_0000 + n);
                n += 1;
            }
            want.extend_from_slice(b.samples());
            w.write(&b).unwrap();
        }
        w.finish().unwrap();
        let got: Vec<f32> = hound::WavReader::open(&p)
            .unwrap()
            .samples::<f32>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_file_past_the_threshold_becomes_rf64_with_the_same_audio() {
        let dir = tempfile::tempdir().unwrap();
        let spec = StreamSpec {
            sample_rate: 48000,
            channels: 2,
            format: SampleFormat::Pcm24,
        };
        let (small, big) = (dir.path().join("riff.wav"), dir.path().join("rf64.wav"));
        write(&small, spec, RIFF_LIMIT, 777);
        write(&big, spec, 1000, 777);
        let h = read_header(&big).unwrap();
        assert_eq!((h.spec, h.frames, h.rf64), (spec, Frames(777), true));
        let (a, b) = (std::fs::read(&small).unwrap(), std::fs::read(&big).unwrap());
        assert_eq!(&b[..4], b"RF64");
        assert_eq!(&b[4..8], &[0xFF; 4]);
        assert_eq!(&b[12..16], b"ds64");
        let data = 777 * 2 * 3u64;
        assert_eq!(u64::from_le_bytes(b[28..36].try_into().unwrap()), data);
        assert_eq!(u64::from_le_bytes(b[36..44].try_into().unwrap()), 777);
        // Same length, same fmt and samples: only the size fields differ.
        assert_eq!(a.len(), b.len());
        assert_eq!(a[a.len() - data as usize..], b[b.len() - data as usize..]);
    }

    #[test]
    fn an_rf64_file_carries_its_bext_chunk_and_loudness_too() {
        let dir = tempfile::tempdir().unwrap();
        let spec = StreamSpec {
            sample_rate: 48000,
            channels: 1,
            format: SampleFormat::Pcm16,
        };
        let b = Bext {
            description: "song s: master".into(),
            originator: "stemflow".into(),
            date: "1980-01-01".into(),
            time: "00:00:00".into(),
        };
        let path = dir.path().join("rf64.wav");
        let mut w = WavOut::with_options(&path, spec, Dither::Tpdf, 9, 100, Some(&b)).unwrap();
        w.write(&Block::new(1, 500)).unwrap();
        let loudness = BextLoudness {
            integrated: Some(-23.0),
            ..BextLoudness::default()
        };
        w.set_loudness(loudness);
        w.finish().unwrap();
        let h = read_header(&path).unwrap();
        assert_eq!((h.frames, h.rf64), (Frames(500), true));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"RF64");
        assert_eq!(&bytes[48..52], b"bext");
        let at = 56 + bext::LOUDNESS_OFFSET as usize;
        assert_eq!(bytes[at..at + 10], bext::loudness_bytes(&loudness));
        assert_eq!(i16::from_le_bytes([bytes[at], bytes[at + 1]]), -2300);
    }
}
