//! Opening a file for decoding: the checks before symphonia sees it
//! (a regular, non-empty file; RF64 refused here, as [`super::WavData`]
//! reads the RF64 files stemflow can), probing the container, and what of
//! its header can be trusted. Apart from [`super::FileSource`] so each
//! file stays readable.

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::sample::SampleFormat as SymFormat;
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::well_known as wk;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::{FileInfo, bad};
use crate::error::StageError;
use crate::types::{Frames, SampleFormat};

/// A short codec name for reports.
pub(super) fn codec_name(id: symphonia::core::codecs::audio::AudioCodecId) -> String {
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

/// An open decoder positioned somewhere in the file.
pub(super) struct Decoding {
    pub(super) format: Box<dyn FormatReader>,
    pub(super) decoder: Box<dyn AudioDecoder>,
    pub(super) track: u32,
}

/// A freshly opened file: its decoder, what its header says, and the
/// header's frame count where that can be trusted.
pub(super) struct Opened {
    pub(super) dec: Decoding,
    pub(super) info: FileInfo,
    pub(super) header_frames: Option<u64>,
}

/// Opens `path` and reads its header: the decoder at frame 0 and what the
/// header says. Fails with a message naming the file on anything stemflow
/// cannot decode.
pub(super) fn open_decoding(path: &Path) -> Result<Opened, StageError> {
    let (mut file, file_len) = open_file(path)?;
    refuse_rf64(path, &mut file)?;
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

/// Opens a regular, non-empty file and its length in bytes.
pub(super) fn open_file(path: &Path) -> Result<(File, u64), StageError> {
    let meta = std::fs::metadata(path).map_err(|e| StageError::io(path, e))?;
    if meta.is_dir() {
        return Err(bad(path, "is a directory, not an audio file"));
    }
    // A FIFO would block the song (and every interrupt) until a writer
    // appeared; a device never ends: refused before they are opened.
    let (file, meta) = crate::io::open_regular(path).map_err(|e| StageError::io(path, e))?;
    if meta.len() == 0 {
        return Err(bad(path, "is empty (0 bytes)"));
    }
    Ok((file, meta.len()))
}

/// Refuses RF64 before probing (symphonia would report it as an
/// unreadable file; [`WavData`] reads the RF64 files it can) and rewinds.
pub(super) fn refuse_rf64(path: &Path, file: &mut File) -> Result<(), StageError> {
    let mut magic = [0u8; 4];
    if std::io::Read::read_exact(file, &mut magic).is_ok() && &magic == b"RF64" {
        return Err(bad(
            path,
            "is an RF64 file, which the decoder (symphonia 0.6) cannot read",
        ));
    }
    std::io::Seek::rewind(file).map_err(|e| StageError::io(path, e))
}

/// Finds the container format, hinted by the file's extension.
pub(super) fn probe_format(path: &Path, file: File) -> Result<Box<dyn FormatReader>, StageError> {
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
pub(super) struct Header {
    params: AudioCodecParameters,
    rate: u32,
    channels: usize,
}

/// Reads the track's codec parameters; fails when they lack a rate or a
/// channel count, or name a codec stemflow does not decode.
pub(super) fn audio_header(path: &Path, track: &Track) -> Result<Header, StageError> {
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
pub(super) fn trusted_frames(
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
pub(super) fn stored_format(params: &AudioCodecParameters) -> Option<SampleFormat> {
    match (params.sample_format, params.bits_per_sample) {
        (Some(SymFormat::F32), _) => Some(SampleFormat::Float),
        _ if params.codec == wk::CODEC_ID_PCM_F32LE => Some(SampleFormat::Float),
        (Some(SymFormat::S24), _) | (_, Some(24)) => Some(SampleFormat::Pcm24),
        (Some(SymFormat::S16), _) | (_, Some(16)) => Some(SampleFormat::Pcm16),
        _ => None,
    }
}
