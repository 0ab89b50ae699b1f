//! Audio files as sources: decoded packet by packet with symphonia (WAV,
//! FLAC, MP3, Ogg Vorbis, AIFF, ALAC/AAC in MP4/CAF/MKV), gapless, mapped to
//! the song's channel count. Only the current packet is held in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use symphonia::core::audio::{Audio, GenericAudioBufferRef};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{SeekMode, SeekTo};
use symphonia::core::units::Timestamp;

mod open;

use open::{Decoding, Opened, open_decoding, open_file};

use super::Source;
use super::wavdata::WavData;
use crate::error::StageError;
use crate::types::{Block, Frames, SampleFormat};

fn bad(path: &Path, what: impl std::fmt::Display) -> StageError {
    StageError::Invalid(format!("{}: {what}", path.display()))
}

/// Refuses all but mono and stereo files.
fn check_channels(path: &Path, channels: u16) -> Result<(), StageError> {
    if (1..=2).contains(&channels) {
        return Ok(());
    }
    Err(bad(
        path,
        format!("has {channels} channels; only mono and stereo files are supported"),
    ))
}

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

/// Streams a file's audio as f32 frames of the song's channel count.
pub struct FileSource {
    path: PathBuf,
    info: FileInfo,
    out_channels: usize,
    dec: Option<Decoding>,
    /// A WAV/RF64 read directly instead of decoded (then `dec` is unused).
    wav: Option<WavData>,
    /// Decoded, channel-mapped frames not yet delivered.
    pending: Vec<f32>,
    pending_pos: usize,
    /// Scratch for one decoded packet, interleaved in the file's layout.
    packet: Vec<f32>,
    /// Whether `packet` was decoded from floats (which may be NaN).
    packet_float: bool,
    /// Next frame `read` delivers.
    pos: u64,
    /// Frames decoded since the last (re)open.
    decoded: u64,
    /// Frames decoded or read in all (what seeks are held to in tests).
    work: u64,
    /// Whether the decoder was moved by the container's seek (and its
    /// packets' timestamps are checked since).
    jumped: bool,
}

impl FileSource {
    /// Opens `path` for a song with `channels` channels. Fails on anything
    /// that is not a readable mono or stereo audio file.
    pub fn open(path: &Path, channels: u16) -> Result<FileSource, StageError> {
        if let Some(s) = FileSource::open_wav(path, channels as usize)? {
            check_channels(path, s.info.channels)?;
            return Ok(s);
        }
        let Opened {
            dec,
            info,
            header_frames,
        } = open_decoding(path)?;
        check_channels(path, info.channels)?;
        let mut s = FileSource::from_decoding(path, info, dec, channels as usize);
        if header_frames.is_none() {
            s.info.frames = Frames(s.count_frames()?);
            s.rewind()?;
        }
        Ok(s)
    }

    /// The file as [`WavData`] when it is a WAV/RF64 that reads directly.
    fn open_wav(path: &Path, out_channels: usize) -> Result<Option<FileSource>, StageError> {
        let (file, file_len) = open_file(path)?;
        let Some(w) = WavData::open(path, file, file_len)? else {
            return Ok(None);
        };
        let info = FileInfo {
            sample_rate: w.rate,
            channels: w.channels,
            frames: w.frames,
            codec: "pcm".into(),
            format: Some(w.format),
        };
        let mut s = FileSource::new(path, info, None, out_channels);
        s.wav = Some(w.data);
        Ok(Some(s))
    }

    fn from_decoding(
        path: &Path,
        info: FileInfo,
        dec: Decoding,
        out_channels: usize,
    ) -> FileSource {
        FileSource::new(path, info, Some(dec), out_channels)
    }

    fn new(path: &Path, info: FileInfo, dec: Option<Decoding>, out_channels: usize) -> FileSource {
        FileSource {
            path: path.to_path_buf(),
            info,
            out_channels,
            dec,
            wav: None,
            pending: Vec::new(),
            pending_pos: 0,
            packet: Vec::new(),
            packet_float: false,
            pos: 0,
            decoded: 0,
            work: 0,
            jumped: false,
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
        self.jumped = false;
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
        if self.packet_float
            && let Some(i) = self.packet.iter().position(|v| !v.is_finite())
        {
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
        self.work += frames as u64;
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
                Ok(None) => return self.end_of_stream(),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.end_of_stream();
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
            if self.jumped && packet.pts.get() != self.decoded as i64 {
                self.resync()?;
                return self.decode_into_packet();
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
            if buf.num_planes() != self.info.channels as usize {
                return Err(bad(
                    path,
                    format!("changes its channel count at frame {}", self.decoded),
                ));
            }
            self.packet_float = interleave(&buf, &mut self.packet);
            return Ok(Some(frames));
        }
    }

    /// Replaces `pending` with `packet` mapped to the song's channel count:
    /// mono is copied to every channel, stereo to mono is averaged. The
    /// same count swaps the two buffers (`packet` is overwritten next).
    fn map_channels(&mut self) {
        self.pending.clear();
        self.pending_pos = 0;
        let och = self.out_channels;
        match (self.info.channels as usize, och) {
            (a, b) if a == b => std::mem::swap(&mut self.pending, &mut self.packet),
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
        if self.wav.is_some() {
            // Direct reads: a seek is only the next read's position.
            self.pos = pos;
            return Ok(());
        }
        if (pos < self.pos || pos - self.pos > JUMP_FRAMES) && !self.jump(pos) {
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
        if self.wav.is_some() {
            return self.read_wav(block, want);
        }
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

    fn cost(&self) -> f32 {
        use super::cost;
        match self.info.codec.as_str() {
            _ if self.wav.is_some() => cost::MAPPED_PCM,
            "pcm" => cost::DECODED_PCM,
            "flac" | "alac" => cost::LOSSLESS,
            _ => cost::LOSSY,
        }
    }
}

/// A forward seek further than this jumps by the container's seek index
/// instead of decoding through (FLAC).
const JUMP_FRAMES: u64 = 1 << 16;

impl FileSource {
    /// Moves a FLAC file's decoder to the frame (packet) holding `pos` by
    /// the container's seek index (SEEKTABLE, else a search by bytes);
    /// `seek` then decodes forward to `pos`. FLAC frames decode on their
    /// own, so the samples are the ones decoding from the start gives.
    /// False for other codecs (whose decoders carry state from packet to
    /// packet), or when the container lands anywhere but at or before
    /// `pos`: the caller then rewinds and decodes from the start.
    fn jump(&mut self, pos: u64) -> bool {
        let Some(dec) = self.dec.as_mut().filter(|_| self.info.codec == "flac") else {
            return false;
        };
        let to = SeekTo::Timestamp {
            ts: Timestamp::new(pos as i64),
            track_id: dec.track,
        };
        match dec.format.seek(SeekMode::Accurate, to) {
            Ok(at) if (0..=pos as i64).contains(&at.actual_ts.get()) => {
                dec.decoder.reset();
                self.pending.clear();
                self.pending_pos = 0;
                self.pos = at.actual_ts.get() as u64;
                self.decoded = self.pos;
                self.jumped = true;
                true
            }
            _ => false,
        }
    }

    /// The end of the stream, unless a jump ended it early (the frame
    /// count of a FLAC header is exact): then [`FileSource::resync`].
    fn end_of_stream(&mut self) -> Result<Option<usize>, StageError> {
        if !self.jumped || self.decoded >= self.info.frames.0 {
            return Ok(None);
        }
        self.resync()?;
        self.decode_into_packet()
    }

    /// After a jump, a packet that does not start where the last one
    /// ended (symphonia 0.6's FLAC reader can skip one after a seek)
    /// sends the decoder back to the start, to decode up to the frame the
    /// misplaced packet should have started at: slow, but exact.
    fn resync(&mut self) -> Result<(), StageError> {
        let target = self.decoded;
        self.dec = Some(open_decoding(&self.path)?.dec);
        self.jumped = false;
        self.decoded = 0;
        while self.decoded < target {
            let Some(frames) = self.decode_into_packet()? else {
                break;
            };
            self.decoded += frames as u64;
            self.work += frames as u64;
        }
        if self.decoded != target {
            return Err(bad(
                &self.path,
                format!("cannot find frame {target} again after a seek"),
            ));
        }
        Ok(())
    }

    /// [`Source::read`] of a [`WavData`] file: straight into the block when
    /// the channel counts agree, else through `packet` and the mapping.
    fn read_wav(&mut self, block: &mut Block, want: usize) -> Result<usize, StageError> {
        let Some(wav) = self.wav.as_mut() else {
            return Ok(0);
        };
        let fch = self.info.channels as usize;
        if fch == self.out_channels {
            wav.read(self.pos, &mut block.samples_mut()[..want * fch])?;
            self.work += want as u64;
        } else {
            self.packet.resize(want * fch, 0.0);
            wav.read(self.pos, &mut self.packet)?;
            self.map_channels();
            block.samples_mut()[..want * self.out_channels].copy_from_slice(&self.pending);
            self.pending.clear();
            self.work += want as u64;
        }
        self.pos += want as u64;
        Ok(want)
    }
}

/// Interleaves a decoded packet into `out` as f32, converted as symphonia
/// converts (i32 / 2^31). FLAC's mono and stereo i32 planes go through a
/// loop the compiler vectorises (symphonia's generic one costs about as
/// much as the FLAC residual decoding it follows); the rest through
/// symphonia. True when the samples were floats, and may be NaN.
fn interleave(buf: &GenericAudioBufferRef<'_>, out: &mut Vec<f32>) -> bool {
    out.resize(buf.frames() * buf.num_planes(), 0.0);
    // 2^-31 is exact, and scaling by a power of two commutes with the
    // rounding to f32: `s as f32 * SCALE` is symphonia's
    // `(s as f64 / 2^31) as f32` bit for bit.
    const SCALE: f32 = 1.0 / 2_147_483_648.0;
    match buf {
        GenericAudioBufferRef::S32(b) if b.num_planes() == 1 => {
            let plane = b.plane(0).unwrap_or_default();
            for (o, &s) in out.iter_mut().zip(plane) {
                *o = s as f32 * SCALE;
            }
            false
        }
        GenericAudioBufferRef::S32(b) if b.num_planes() == 2 => {
            let (l, r) = b.plane_pair(0, 1).unwrap_or_default();
            for ((o, &l), &r) in out.as_chunks_mut::<2>().0.iter_mut().zip(l).zip(r) {
                *o = [l as f32 * SCALE, r as f32 * SCALE];
            }
            false
        }
        _ => {
            buf.copy_to_slice_interleaved::<f32, _>(&mut out[..]);
            matches!(
                buf,
                GenericAudioBufferRef::F32(_) | GenericAudioBufferRef::F64(_)
            )
        }
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
    // A WAV/RF64 whose data lies in the file: its header is exact, and
    // reading it through checks every sample is finite.
    if let Some(mut s) = FileSource::open_wav(path, 1)? {
        s.out_channels = s.info.channels as usize;
        let mut block = Block::new(s.info.channels, 1 << 14);
        while s.read(&mut block)? > 0 {
            if stop.load(Ordering::Relaxed) {
                return Err(StageError::Cancelled);
            }
        }
        return Ok(s.info);
    }
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

    /// Stereo noise, different in each channel and frame.
    fn noise(frames: usize) -> Block {
        let mut b = Block::new(2, frames);
        for (i, v) in b.samples_mut().iter_mut().enumerate() {
            let x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            *v = ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.9;
        }
        b
    }

    fn read_at(s: &mut FileSource, pos: u64, frames: usize) -> Vec<f32> {
        s.seek(Frames(pos)).unwrap();
        let mut b = Block::new(2, frames);
        assert_eq!(s.read(&mut b).unwrap(), frames);
        b.samples().to_vec()
    }

    /// Seeks anywhere give the samples of reading from the start, and a
    /// read near the end decodes little more than it returns.
    fn seeks_are_exact_and_bounded(path: &Path, frames: usize, pre_roll: u64) {
        let mut whole = FileSource::open(path, 2).unwrap();
        let all = read_at(&mut whole, 0, frames);
        let mut s = FileSource::open(path, 2).unwrap();
        let at = |p: usize, n: usize| all[p * 2..(p + n) * 2].to_vec();
        assert_eq!(
            read_at(&mut s, frames as u64 - 2400, 2400),
            at(frames - 2400, 2400)
        );
        assert_eq!(read_at(&mut s, 0, 1000), at(0, 1000));
        assert!(s.work <= 3400 + 2 * pre_roll, "{} frames decoded", s.work);
        for p in [150_000, 7, 99_999, 160_001, 4095, 4096] {
            assert_eq!(read_at(&mut s, p as u64, 500), at(p, 500), "at {p}");
        }
    }

    #[test]
    fn flac_seeks_by_its_index_and_wav_and_rf64_directly() {
        use crate::io::{flac::FlacOut, wav::WavOut};
        use crate::plan::Dither;
        use crate::types::StreamSpec;
        let dir = tempfile::tempdir().unwrap();
        let frames = 200_000;
        let audio = noise(frames);
        let spec = |format| StreamSpec {
            sample_rate: 44100,
            channels: 2,
            format,
        };
        let flac = dir.path().join("n.flac");
        let mut f = FlacOut::create(&flac, spec(SampleFormat::Pcm24), Dither::None, 0).unwrap();
        f.write(&audio).unwrap();
        f.finish().unwrap();
        // A FLAC frame holds 4096 frames: the pre-roll is at most one.
        seeks_are_exact_and_bounded(&flac, frames, 4096);
        for (name, threshold) in [("n.wav", u64::MAX), ("n64.wav", 0)] {
            let path = dir.path().join(name);
            let mut w = WavOut::with_rf64_threshold(
                &path,
                spec(SampleFormat::Float),
                Dither::None,
                0,
                threshold,
            )
            .unwrap();
            w.write(&audio).unwrap();
            w.finish().unwrap();
            let mut s = FileSource::open(&path, 2).unwrap();
            assert_eq!(s.info().frames, Frames(frames as u64));
            assert!(read_at(&mut s, 0, frames) == audio.samples(), "{name}");
            seeks_are_exact_and_bounded(&path, frames, 0);
        }
    }

    #[test]
    fn the_flac_fixture_seeks_exactly() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sine1k-48k-stereo.flac");
        let mut whole = FileSource::open(&path, 2).unwrap();
        let frames = whole.info().frames.0 as usize;
        let all = read_at(&mut whole, 0, frames);
        let mut s = FileSource::open(&path, 2).unwrap();
        for p in [7200, 0, 5000, 100, 9599, 4096, 4095, 0] {
            let n = (frames - p).min(500);
            assert_eq!(
                read_at(&mut s, p as u64, n),
                all[p * 2..(p + n) * 2],
                "at {p}"
            );
        }
    }

    #[test]
    fn i32_planes_convert_as_symphonia_converts_them() {
        use symphonia::core::audio::{
            AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, Channels,
        };
        // The extremes, small values, every 24-bit step's neighbours and
        // noise over the whole range (values that round in f32).
        let mut values = vec![i32::MIN, i32::MAX, 0, 1, -1, 255, -256, 0x7f_ffff << 8];
        let mut x = 1u64;
        values.extend((0..4000).map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 32) as i32
        }));
        let n = values.len() / 2;
        for planes in [1, 2] {
            let spec = AudioSpec::new(48000, Channels::Discrete(planes as u16));
            let mut b = AudioBuffer::<i32>::new(spec, n);
            b.render_uninit(Some(n));
            for p in 0..planes {
                let src = &values[p * n..(p + 1) * n];
                b.plane_mut(p).unwrap().copy_from_slice(src);
            }
            let g = b.as_generic_audio_buffer_ref();
            let mut ours = Vec::new();
            assert!(!interleave(&g, &mut ours));
            let mut theirs = vec![0.0f32; n * planes];
            g.copy_to_slice_interleaved::<f32, _>(&mut theirs[..]);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ours), bits(&theirs), "{planes} planes");
        }
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
