//! `stemflow align IN OUT`: bring one file to a duration with the same
//! alignment, resampling and writer as `render`.

use std::path::Path;

use super::{StdinFile, ToolError, is_stdio};
use crate::align::{AlignInfo, AlignSettings, Aligner, Grid};
use crate::error::StageError;
use crate::io::AudioOut;
use crate::io::stream::WavStream;
use crate::plan::{AlignMode, Codec, Dither};
use crate::source::{self, file};
use crate::timing::Meter;
use crate::types::{Block, Frames, SampleFormat, StreamSpec};

/// Frames per block: the output never depends on it.
const BLOCK_SIZE: usize = 4096;
/// Seam crossfade and truncation fade, as for a manifest stem's defaults.
const CROSSFADE_MS: f64 = 50.0;
const FADE_MS: f64 = 10.0;

/// How to align the file.
#[derive(Clone, Debug, clap::Args)]
pub struct AlignRequest {
    /// Target duration in seconds.
    #[arg(long)]
    pub duration: f64,
    /// Alignment strategy (SPEC section 4).
    #[arg(long, value_enum, default_value = "auto")]
    pub strategy: AlignMode,
    /// Sample format of the output.
    #[arg(long, value_enum, default_value = "float")]
    pub format: SampleFormat,
    /// Output sample rate in Hz [default: the input's].
    #[arg(long)]
    pub sample_rate: Option<u32>,
    /// Tempo of the file: loops then repeat on its bar grid (SPEC
    /// section 9), and `auto` treats the file as rhythmic.
    #[arg(long)]
    pub bpm: Option<f64>,
    /// Meter of the bar grid, e.g. 4/4 or 6/8 (with --bpm) [default: 4/4].
    #[arg(long, value_parser = |s: &str| s.parse::<Meter>())]
    pub meter: Option<Meter>,
    /// Loop length in bars [default: the file's length rounded to whole
    /// bars] (with --bpm).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub loop_bars: Option<u32>,
}

impl AlignRequest {
    /// The bar grid `--bpm`, `--meter` and `--loop-bars` describe.
    fn grid(&self) -> Result<Option<Grid>, ToolError> {
        let Some(bpm) = self.bpm else {
            if self.loop_bars.is_some() || self.meter.is_some() {
                return Err(ToolError::Argument(
                    "--meter and --loop-bars need --bpm".into(),
                ));
            }
            return Ok(None);
        };
        if !(bpm.is_finite() && bpm > 0.0 && bpm <= 1000.0) {
            return Err(ToolError::Argument(format!(
                "--bpm must be > 0 and at most 1000, got {bpm}"
            )));
        }
        Ok(Some(Grid {
            bar_seconds: self.meter.unwrap_or_default().bar_seconds(bpm),
            loop_bars: self.loop_bars,
        }))
    }
}

/// What `align` wrote.
#[derive(Clone, Debug)]
pub struct Aligned {
    /// Frames written: the target length at the output rate.
    pub target: Frames,
    /// The strategy applied and its seams.
    pub info: AlignInfo,
}

/// Writes `input` aligned as `req` asks to `output` (whole or not at all)
/// and returns what the aligner did. `-` as `input` reads standard input;
/// `-` as `output` streams a WAV to standard output.
pub fn align_file(input: &Path, output: &Path, req: &AlignRequest) -> Result<Aligned, ToolError> {
    if !(req.duration.is_finite()
        && req.duration > 0.0
        && req.duration <= crate::manifest::MAX_DURATION_S)
    {
        return Err(ToolError::Argument(format!(
            "--duration must be > 0 s, got {}",
            req.duration
        )));
    }
    let grid = req.grid()?;
    let codec = output_codec(output, req.format)?;
    let stdin = match is_stdio(input) {
        true => Some(StdinFile::read()?),
        false => None,
    };
    let input = stdin.as_ref().map_or(input, StdinFile::path);
    let (mut aligner, spec, target) =
        open_aligner(input, req, grid).map_err(|e| match (&stdin, e) {
            (Some(s), ToolError::Stage(e)) => StageError::Invalid(s.named(e.to_string())).into(),
            (_, e) => e,
        })?;
    if is_stdio(output) {
        stream_aligned(&mut aligner, spec, target)?;
    } else {
        // Write beside the output and rename, so a failure leaves no partial file.
        let tmp = output.with_extension(format!("stemflow-partial.{}", codec.extension()));
        let result = write_aligned(&mut aligner, &tmp, output, spec, codec);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
    }
    Ok(Aligned {
        target,
        info: aligner.info().clone(),
    })
}

/// The aligner over `input` as `req` asks, the stream it produces and its
/// length.
fn open_aligner(
    input: &Path,
    req: &AlignRequest,
    grid: Option<Grid>,
) -> Result<(Aligner, StreamSpec, Frames), ToolError> {
    let info = file::probe(input)?;
    if info.channels > 2 {
        return Err(StageError::Invalid(format!(
            "{}: has {} channels; only mono and stereo are supported",
            input.display(),
            info.channels
        ))
        .into());
    }
    let rate = req.sample_rate.unwrap_or(info.sample_rate);
    let spec = StreamSpec {
        sample_rate: rate,
        channels: info.channels,
        format: req.format,
    };
    let src = source::open_file(input, rate, info.channels)?;
    let settings = AlignSettings {
        mode: req.strategy,
        rhythmic: grid.is_some(),
        target: Frames::from_seconds(req.duration, rate),
        sample_rate: rate,
        crossfade_ms: CROSSFADE_MS,
        grid,
        fade_ms: FADE_MS,
    };
    let aligner = Aligner::new(src, info.channels, BLOCK_SIZE, settings)?;
    Ok((aligner, spec, settings.target))
}

/// The codec `output`'s name asks for: FLAC for `.flac` (integer formats
/// only: FLAC has no float samples), WAV for `.wav`/`.wave` and for `-`
/// (standard output). Any other name is refused rather than given bytes
/// its extension does not promise (`out.mp3` holding RIFF).
fn output_codec(output: &Path, format: SampleFormat) -> Result<Codec, ToolError> {
    if is_stdio(output) {
        return Ok(Codec::Wav);
    }
    let ext = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match (ext.as_deref(), format) {
        (Some("wav" | "wave"), _) => Ok(Codec::Wav),
        (Some("flac"), SampleFormat::Float) => Err(ToolError::Argument(format!(
            "{}: FLAC holds integer samples only: give --format pcm16 or pcm24",
            output.display()
        ))),
        (Some("flac"), _) => Ok(Codec::Flac),
        (other, _) => Err(ToolError::Argument(format!(
            "{}: {}; stemflow writes .wav and .flac files (or `-` for a WAV on standard output)",
            output.display(),
            match other {
                Some(e) => format!("cannot write .{e} files"),
                None => "has no extension to choose the format by".into(),
            }
        ))),
    }
}

/// Streams the aligner as a WAV on standard output: the length is known
/// (`target`), so the header has the final sizes and no seek is needed.
fn stream_aligned(
    aligner: &mut Aligner,
    spec: StreamSpec,
    target: Frames,
) -> Result<(), StageError> {
    let key = crate::seed::stem_key(1, "align");
    let out = std::io::BufWriter::with_capacity(1 << 17, std::io::stdout().lock());
    let dither = (Dither::Tpdf, key);
    let mut writer = WavStream::new(out, "standard output", spec, dither, target.0)?;
    let mut block = Block::new(spec.channels, BLOCK_SIZE);
    while aligner.read(&mut block)? > 0 {
        writer.write(&block)?;
    }
    writer.finish()
}

/// Streams the aligner into a `codec` file at `tmp`, then renames it to
/// `output`.
fn write_aligned(
    aligner: &mut Aligner,
    tmp: &Path,
    output: &Path,
    spec: StreamSpec,
    codec: Codec,
) -> Result<(), StageError> {
    let key = crate::seed::stem_key(1, "align");
    let mut writer = AudioOut::create(tmp, codec, spec, (Dither::Tpdf, key), None)?;
    let mut block = Block::new(spec.channels, BLOCK_SIZE);
    while aligner.read(&mut block)? > 0 {
        writer.write(&block)?;
    }
    writer.finish()?;
    std::fs::rename(tmp, output).map_err(|e| StageError::io(output, e))
}
