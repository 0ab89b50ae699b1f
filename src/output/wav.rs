//! WAV writing: float, 24- and 16-bit PCM, with seeded TPDF dither on the
//! integer formats so the bytes depend only on the audio, never on how it
//! was split into blocks.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::StageError;
use crate::plan::Dither;
use crate::source::uniform;
use crate::types::{Block, SampleFormat, StreamSpec};

/// Streams blocks into a WAV file.
pub struct WavOut {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    format: SampleFormat,
    /// Dither stream key, `None` when not dithering.
    dither: Option<u64>,
    /// Samples written so far (the dither counter).
    written: u64,
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
        let wav_spec = hound::WavSpec {
            channels: spec.channels,
            sample_rate: spec.sample_rate,
            bits_per_sample: spec.format.bits(),
            sample_format: match spec.format {
                SampleFormat::Float => hound::SampleFormat::Float,
                _ => hound::SampleFormat::Int,
            },
        };
        let writer =
            hound::WavWriter::create(path, wav_spec).map_err(|e| StageError::wav(path, e))?;
        Ok(WavOut {
            path: path.to_path_buf(),
            writer,
            format: spec.format,
            dither: (spec.format != SampleFormat::Float && dither == Dither::Tpdf)
                .then_some(dither_key),
            written: 0,
        })
    }

    /// Appends a block.
    pub fn write(&mut self, block: &Block) -> Result<(), StageError> {
        let result = match self.format {
            SampleFormat::Float => block
                .samples()
                .iter()
                .try_for_each(|v| self.writer.write_sample(*v)),
            SampleFormat::Pcm24 | SampleFormat::Pcm16 => {
                let bits = self.format.bits();
                let scale = (1i64 << (bits - 1)) as f64;
                let (lo, hi) = (-scale, scale - 1.0);
                let mut n = self.written;
                let dither = self.dither;
                block.samples().iter().try_for_each(|v| {
                    let d = dither.map_or(0.0, |key| {
                        // Sum of two uniforms in [-½, ½) LSB: triangular, ±1 LSB.
                        0.5 * (uniform(key, 2 * n) + uniform(key, 2 * n + 1))
                    });
                    n += 1;
                    let q = (*v as f64 * scale + d).round().clamp(lo, hi) as i32;
                    self.writer.write_sample(q)
                })
            }
        };
        self.written += block.samples().len() as u64;
        result.map_err(|e| StageError::wav(&self.path, e))
    }

    /// Writes the final header and closes the file.
    pub fn finish(self) -> Result<(), StageError> {
        let path = self.path;
        self.writer
            .finalize()
            .map_err(|e| StageError::wav(&path, e))
    }
}
