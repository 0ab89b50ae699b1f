//! Audio files as sources: decoded packet by packet with symphonia (WAV,
//! FLAC, MP3, Ogg Vorbis, AIFF, ALAC/AAC in MP4/CAF/MKV), gapless, mapped to
//! the song's channel count. Only the current packet is held in memory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::well_known as wk;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::Source;
use crate::error::StageError;
use crate::types::{Block, Frames, SampleFormat};
use symphonia::core::audio::sample::SampleFormat as SymFormat;

/// What probing a file found.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    pub sample_rate: u32,
    pub channels: u16,
    /// Exact decoded length (counted when the header cannot be trusted).
    pub frames: Frames,
    pub codec: String,
    /// The stored sample format, when it is one stemflow writes.
    pub format: Option<SampleFormat>,
}

impl FileInfo {
    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames.seconds(self.sample_rate)
    }
}

/// A short codec name for reports.
fn codec_name(id: symphonia::core::codecs::audio::AudioCodecId) -> String {
    let known = [
        (wk::CODEC_ID_FLAC, "flac"),
        (wk::CODEC_ID_MP3, "mp3"),
        (wk::CODEC_ID_VORBIS, "vorbis"),
        (wk::CODEC_ID_AAC, "aac"),
        (wk::CODEC_ID_ALAC, "alac"),
        (wk::CODEC_ID_OPUS, "opus"),
    ];
    match known.iter().find(|(k, _)| *k == id) {
        Some((_, name)) => name.to_string(),
        None if id >= wk::CODEC_ID_PCM_S32LE && id <= wk::CODEC_ID_PCM_MULAW => "pcm".into(),
        None => format!("{id:?}"),
    }
}

fn bad(path: &Path, what: impl std::fmt::Display) -> StageError {
    StageError::Invalid(format!("{}: {what}", path.display()))
}

/// An open decoder positioned somewhere in the file.
struct Decoding {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track: u32,
}

/// A freshly opened file: its decoder, what its header says, and the
/// header's frame count where that can be trusted.
struct Opened {
    dec: Decoding,
    info: FileInfo,
    header_frames: Option<u64>,
}

/// Opens `path` and reads its header: the decoder at frame 0 and what the
/// header says. Fails with a message naming the file on anything stemflow
/// cannot decode.
fn open_decoding(path: &Path) -> Result<Opened, StageError> {
    let (file, file_len) = open_file(path)?;
    let format = probe_format(path, file)?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| bad(path, "has no audio track"))?;
    let (track_id, num_frames) = (track.id, track.num_frames);
    let Header {
        params,
        rate,
        channels,
    } = audio_header(path, track)?;
    let header_frames = trusted_frames(path, &params, num_frames, channels, file_len)?;
    let decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default().gapless(true))
        .map_err(|e| bad(path, format!("codec not supported ({e})")))?;
    Ok(Opened {
        dec: Decoding {
            format,
            decoder,
            track: track_id,
        },
        info: FileInfo {
            sample_rate: rate,
            channels: channels as u16,
            frames: Frames(header_frames.unwrap_or(0)),
            codec: codec_name(params.codec),
            format: stored_format(&params),
        },
        header_frames,
    })
}

/// Opens a regular, non-empty file and its length in bytes, refusing RF64
/// up front (symphonia would report it as an unreadable file).
fn open_file(path: &Path) -> Result<(File, u64), StageError> {
    let meta = std::fs::metadata(path).map_err(|e| StageError::io(path, e))?;
    if meta.is_dir() {
        return Err(bad(path, "is a directory, not an audio file"));
    }
    // A FIFO would block the song (and every interrupt) until a writer
    // appeared; a device never ends: refused before they are opened.
    let (mut file, meta) = crate::io::open_regular(path).map_err(|e| StageError::io(path, e))?;
    if meta.len() == 0 {
        return Err(bad(path, "is empty (0 bytes)"));
    }
    let mut magic = [0u8; 4];
    if std::io::Read::read_exact(&mut file, &mut magic).is_ok() && &magic == b"RF64" {
        return Err(bad(
            path,
            "is an RF64 file, which the decoder (symphonia 0.6) cannot read",
        ));
    }
    std::io::Seek::rewind(&mut file).map_err(|e| StageError::io(path, e))?;
    Ok((file, meta.len()))
}

/// Finds the container format, hinted by the file's extension.
fn probe_format(path: &Path, file: File) -> Result<Box<dyn FormatReader>, StageError> {
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| bad(path, format!("not a readable audio file ({e})")))
}

/// An audio track's codec parameters, with the rate and channel count
/// every source needs.
struct Header {
    params: AudioCodecParameters,
    rate: u32,
    channels: usize,
}

/// Reads the track's codec parameters; fails when they lack a rate or a
/// channel count, or name a codec stemflow does not decode.
fn audio_header(path: &Path, track: &Track) -> Result<Header, StageError> {
    let params = match &track.codec_params {
        Some(CodecParameters::Audio(p)) => p.clone(),
        _ => return Err(bad(path, "has no audio codec parameters")),
    };
    let rate = params
        .sample_rate
        .ok_or_else(|| bad(path, "does not state its sample rate"))?;
    let channels = params
        .channels
        .as_ref()
        .map(|c| c.count())
        .ok_or_else(|| bad(path, "does not state its channel count"))?;
    if params.codec == wk::CODEC_ID_OPUS {
        return Err(bad(
            path,
            "Opus audio is not supported (it needs a C decoder library)",
        ));
    }
    Ok(Header {
        params,
        rate,
        channels,
    })
}

/// The header's frame count where it can be trusted: exact for FLAC, and
/// for PCM when the data the header announces fits in the file (a streamed
/// WAV's does not); everything else is counted by decoding. A PCM header
/// announcing more than the file holds is a truncated file.
fn trusted_frames(
    path: &Path,
    params: &AudioCodecParameters,
    num_frames: Option<u64>,
    channels: usize,
    file_len: u64,
) -> Result<Option<u64>, StageError> {
    let pcm = params.codec >= wk::CODEC_ID_PCM_S32LE && params.codec <= wk::CODEC_ID_PCM_MULAW;
    let bytes = params.bits_per_sample.unwrap_or(8).div_ceil(8) as u64;
    let fits = |n: u64| n.saturating_mul(channels as u64 * bytes) <= file_len;
    if let Some(n) = num_frames.filter(|&n| pcm && !fits(n)) {
        // Streaming writers leave a placeholder size near 4 GiB; any other
        // size the file cannot hold means its data was cut short.
        if n.saturating_mul(channels as u64 * bytes) < 0xFFFF_0000 {
            return Err(bad(
                path,
                format!(
                    "is truncated: its header announces {n} frames but the file cannot hold them"
                ),
            ));
        }
    }
    Ok(num_frames.filter(|&n| params.codec == wk::CODEC_ID_FLAC || (pcm && n > 0 && fits(n))))
}

/// The stored sample format, when it is one stemflow writes.
fn stored_format(params: &AudioCodecParameters) -> Option<SampleFormat> {
    match (params.sample_format, params.bits_per_sample) {
        (Some(SymFormat::F32), _) => Some(SampleFormat::Float),
        _ if params.codec == wk::CODEC_ID_PCM_F32LE => Some(SampleFormat::Float),
        (Some(SymFormat::S24), _) | (_, Some(24)) => Some(SampleFormat::Pcm24),
        (Some(SymFormat::S16), _) | (_, Some(16)) => Some(SampleFormat::Pcm16),
        _ => None,
    }
}

/// Streams a file's audio as f32 frames of the song's channel count.
pub struct FileSource {
    path: PathBuf,
    info: FileInfo,
    out_channels: usize,
    dec: Option<Decoding>,
    /// Decoded, channel-mapped frames not yet delivered.
    pending: Vec<f32>,
    pending_pos: usize,
    /// Scratch for one decoded packet, interleaved in the file's layout.
    packet: Vec<f32>,
    /// Next frame `read` delivers.
    pos: u64,
    /// Frames decoded since the last (re)open.
    decoded: u64,
}

impl FileSource {
    /// Opens `path` for a song with `channels` channels. Fails on anything
    /// that is not a readable mono or stereo audio file.
    pub fn open(path: &Path, channels: u16) -> Result<FileSource, StageError> {
        let Opened {
            dec,
            info,
            header_frames,
        } = open_decoding(path)?;
        let file_channels = info.channels;
        if !(1..=2).contains(&file_channels) {
            return Err(bad(
                path,
                format!("has {file_channels} channels; only mono and stereo files are supported"),
            ));
        }
        let mut s = FileSource::from_decoding(path, info, dec, channels as usize);
        if header_frames.is_none() {
            s.info.frames = Frames(s.count_frames()?);
            s.rewind()?;
        }
        Ok(s)
    }

    fn from_decoding(
        path: &Path,
        info: FileInfo,
        dec: Decoding,
        out_channels: usize,
    ) -> FileSource {
        FileSource {
            path: path.to_path_buf(),
            info,
            out_channels,
            dec: Some(dec),
            pending: Vec::new(),
            pending_pos: 0,
            packet: Vec::new(),
            pos: 0,
            decoded: 0,
        }
    }

    /// What the file is.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// Decodes the whole file once, counting frames (and checking it
    /// decodes to the end).
    pub fn count_frames(&mut self) -> Result<u64, StageError> {
        self.count_frames_until(&AtomicBool::new(false))
    }

    /// [`FileSource::count_frames`], giving up with
    /// [`StageError::Cancelled`] as soon as `stop` is set (checked every
    /// packet, so a long file answers an interrupt in milliseconds).
    pub fn count_frames_until(&mut self, stop: &AtomicBool) -> Result<u64, StageError> {
        self.rewind()?;
        let mut n = 0;
        while self.decode_packet()? {
            if stop.load(Ordering::Relaxed) {
                return Err(StageError::Cancelled);
            }
            n += ((self.pending.len() - self.pending_pos) / self.out_channels) as u64;
            self.pending.clear();
            self.pending_pos = 0;
        }
        Ok(n)
    }

    fn rewind(&mut self) -> Result<(), StageError> {
        self.dec = Some(open_decoding(&self.path)?.dec);
        self.pending.clear();
        self.pending_pos = 0;
        self.pos = 0;
        self.decoded = 0;
        Ok(())
    }

    /// Decodes the next packet into `pending`; false at the end of stream.
    fn decode_packet(&mut self) -> Result<bool, StageError> {
        let Some(frames) = self.decode_into_packet()? else {
            return Ok(false);
        };
        let fch = self.info.channels as usize;
        if let Some(i) = self.packet.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                &self.path,
                format!(
                    "NaN or infinite sample at frame {}",
                    self.decoded + (i / fch) as u64
                ),
            ));
        }
        self.map_channels();
        self.decoded += frames as u64;
        Ok(true)
    }

    /// Decodes packets of our track until one yields frames, and leaves
    /// them in `packet` in the file's layout; their count, or `None` at the
    /// end of stream (a file cut short mid-packet ends there too).
    fn decode_into_packet(&mut self) -> Result<Option<usize>, StageError> {
        let path = &self.path;
        let Some(dec) = self.dec.as_mut() else {
            return Ok(None);
        };
        loop {
            let packet = match dec.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(e) => {
                    return Err(bad(
                        path,
                        format!("cannot read at frame {}: {e}", self.decoded),
                    ));
                }
            };
            if packet.track_id != dec.track {
                continue;
            }
            let buf = match dec.decoder.decode(&packet) {
                Ok(b) => b,
                Err(SymError::DecodeError(e)) => {
                    return Err(bad(
                        path,
                        format!("corrupt audio at frame {}: {e}", self.decoded),
                    ));
                }
                Err(e) => {
                    return Err(bad(
                        path,
                        format!("cannot decode at frame {}: {e}", self.decoded),
                    ));
                }
            };
            let frames = buf.frames();
            if frames == 0 {
                continue;
            }
            self.packet
                .resize(frames * self.info.channels as usize, 0.0);
            buf.copy_to_slice_interleaved::<f32, _>(&mut self.packet[..]);
            return Ok(Some(frames));
        }
    }

    /// Replaces `pending` with `packet` mapped to the song's channel count:
    /// mono is copied to every channel, stereo to mono is averaged.
    fn map_channels(&mut self) {
        self.pending.clear();
        self.pending_pos = 0;
        let och = self.out_channels;
        match (self.info.channels as usize, och) {
            (a, b) if a == b => self.pending.extend_from_slice(&self.packet),
            (1, _) => self.pending.extend(
                self.packet
                    .iter()
                    .flat_map(|v| std::iter::repeat_n(*v, och)),
            ),
            (2, 1) => self
                .pending
                .extend(self.packet.chunks_exact(2).map(|f| 0.5 * (f[0] + f[1]))),
            _ => unreachable!("channel counts are checked at open"),
        }
    }
}

impl Source for FileSource {
    fn len(&self) -> Frames {
        self.info.frames
    }

    /// Seeks by decoding from the start (or onward from here): exact for
    /// every codec, gapless trimming included.
    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        let pos = pos.0.min(self.info.frames.0);
        if pos < self.pos {
            self.rewind()?;
        }
        while self.pos < pos {
            let avail = (self.pending.len() - self.pending_pos) / self.out_channels;
            if avail == 0 {
                if !self.decode_packet()? {
                    return Err(bad(
                        &self.path,
                        format!("ended at frame {} before frame {pos}", self.pos),
                    ));
                }
                continue;
            }
            let skip = avail.min((pos - self.pos) as usize);
            self.pending_pos += skip * self.out_channels;
            self.pos += skip as u64;
        }
        Ok(())
    }

    fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let ch = self.out_channels;
        let want = (self.info.frames.0 - self.pos).min(block.capacity() as u64) as usize;
        block.set_frames(want);
        let mut filled = 0;
        while filled < want {
            let avail = (self.pending.len() - self.pending_pos) / ch;
            if avail == 0 {
                if !self.decode_packet()? {
                    return Err(bad(
                        &self.path,
                        format!(
                            "ended at frame {} though it announced {}",
                            self.pos, self.info.frames
                        ),
                    ));
                }
                continue;
            }
            let n = avail.min(want - filled);
            let src = &self.pending[self.pending_pos..self.pending_pos + n * ch];
            block.samples_mut()[filled * ch..(filled + n) * ch].copy_from_slice(src);
            self.pending_pos += n * ch;
            filled += n;
            self.pos += n as u64;
        }
        Ok(want)
    }
}

/// Probes and fully decodes a file (streaming, in fixed memory) to learn
/// its exact rate, channels and length.
pub fn probe(path: &Path) -> Result<FileInfo, StageError> {
    probe_until(path, &AtomicBool::new(false))
}

/// [`probe`], giving up with [`StageError::Cancelled`] once `stop` is set:
/// counting a long file's frames must not outlast an interrupt.
pub fn probe_until(path: &Path, stop: &AtomicBool) -> Result<FileInfo, StageError> {
    let Opened { dec, info, .. } = open_decoding(path)?;
    // Decode in the file's own layout: channel mapping does not matter here.
    let channels = info.channels as usize;
    let mut s = FileSource::from_decoding(path, info, dec, channels);
    s.info.frames = Frames(s.count_frames_until(stop)?);
    Ok(s.info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, channels: u16, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 48000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for v in samples {
            w.write_sample(*v).unwrap();
        }
        w.finalize().unwrap();
    }

    fn message(r: Result<Opened, StageError>) -> String {
        r.err().expect("opening should fail").to_string()
    }

    #[test]
    fn refuses_directories_empty_files_and_rf64_before_probing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(message(open_decoding(dir.path())).contains("is a directory"));
        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        assert!(message(open_decoding(&empty)).contains("is empty"));
        let rf64 = dir.path().join("big.wav");
        std::fs::write(&rf64, b"RF64\xff\xff\xff\xffWAVE").unwrap();
        assert!(message(open_decoding(&rf64)).contains("RF64"));
    }

    #[test]
    fn trusts_a_complete_pcm_header_and_reports_its_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        write_wav(&path, 2, &[1000; 2 * 300]);
        let o = open_decoding(&path).unwrap();
        assert_eq!(o.header_frames, Some(300));
        assert_eq!(o.info.channels, 2);
        assert_eq!(o.info.format, Some(SampleFormat::Pcm16));
        assert_eq!(o.info.codec, "pcm");
    }

    #[test]
    fn a_header_announcing_more_than_the_file_holds_is_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.wav");
        write_wav(&path, 1, &[0; 1000]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 500]).unwrap();
        assert!(message(open_decoding(&path)).contains("is truncated"));
    }

    #[test]
    fn stereo_is_averaged_to_mono_and_mono_copied_to_stereo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        write_wav(&path, 2, &[16384, 0, 0, -16384]);
        let mut mono = FileSource::open(&path, 1).unwrap();
        let mut b = Block::new(1, 8);
        assert_eq!(mono.read(&mut b).unwrap(), 2);
        assert_eq!(b.samples(), &[0.25, -0.25]);
        let path = dir.path().join("m.wav");
        write_wav(&path, 1, &[16384]);
        let mut stereo = FileSource::open(&path, 2).unwrap();
        let mut b = Block::new(2, 8);
        assert_eq!(stereo.read(&mut b).unwrap(), 1);
        assert_eq!(b.samples(), &[0.5, 0.5]);
    }
}
