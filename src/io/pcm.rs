//! Float samples to integer PCM, with the seeded TPDF dither: shared by the
//! WAV and FLAC writers so a FLAC file holds exactly the integers the WAV
//! of the same stream would. The dither is counted per sample of the
//! stream, never per block, so the integers do not depend on block size.

use crate::plan::Dither;
use crate::seed::uniform;
use crate::types::SampleFormat;

/// Quantises one stream's samples in order.
pub struct Quantiser {
    /// Full scale in LSB: 2^(bits−1).
    scale: f64,
    /// Dither stream key, `None` when not dithering.
    dither: Option<u64>,
    /// Samples quantised so far (the dither counter).
    count: u64,
}

impl Quantiser {
    /// A quantiser to `format` (an integer format), dithered with
    /// `dither_key` when `dither` says so.
    pub fn new(format: SampleFormat, dither: Dither, dither_key: u64) -> Quantiser {
        Quantiser {
            scale: (1i64 << (format.bits() - 1)) as f64,
            dither: (dither == Dither::Tpdf).then_some(dither_key),
            count: 0,
        }
    }

    /// The next sample as an integer in the format's range.
    #[inline]
    pub fn next(&mut self, v: f32) -> i32 {
        let n = self.count;
        self.count += 1;
        let d = self.dither.map_or(0.0, |key| {
            // Sum of two uniforms in [-½, ½) LSB: triangular, ±1 LSB.
            0.5 * (uniform(key, 2 * n) + uniform(key, 2 * n + 1))
        });
        // Digital silence stays silent (SPEC §10): dither is for quantising
        // a signal, and exact 0.0 has nothing to quantise. The counter still
        // advances, so every other sample gets the dither it always had.
        if v == 0.0 {
            return 0;
        }
        (v as f64 * self.scale + d)
            .round()
            .clamp(-self.scale, self.scale - 1.0) as i32
    }
}
