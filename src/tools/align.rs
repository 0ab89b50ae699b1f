//! `stemflow align IN OUT`: bring one file to a duration with the same
//! alignment, resampling and writer as `render`.

use std::path::Path;

use super::ToolError;
use crate::align::{AlignInfo, AlignSettings, Aligner, Grid, parse_meter};
use crate::error::StageError;
use crate::io::wav::WavOut;
use crate::plan::{AlignMode, Dither};
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
    #[arg(long, value_parser = parse_meter)]
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
/// and returns what the aligner did.
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
    let mut aligner = Aligner::new(src, info.channels, BLOCK_SIZE, settings)?;
    // Write beside the output and rename, so a failure leaves no partial file.
    let tmp = output.with_extension("stemflow-partial.wav");
    let result = write_aligned(&mut aligner, &tmp, output, spec);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    Ok(Aligned {
        target: settings.target,
        info: aligner.info().clone(),
    })
}

/// Streams the aligner into a WAV at `tmp`, then renames it to `output`.
fn write_aligned(
    aligner: &mut Aligner,
    tmp: &Path,
    output: &Path,
    spec: StreamSpec,
) -> Result<(), StageError> {
    let key = crate::seed::stem_key(1, "align");
    let mut writer = WavOut::create(tmp, spec, Dither::Tpdf, key)?;
    let mut block = Block::new(spec.channels, BLOCK_SIZE);
    while aligner.read(&mut block)? > 0 {
        writer.write(&block)?;
    }
    writer.finish()?;
    std::fs::rename(tmp, output).map_err(|e| StageError::io(output, e))
}
