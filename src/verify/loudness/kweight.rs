//! The BS.1770 K-weighting: the filter in front of every loudness figure.
//! Kept apart from the gating because it is a pure design (coefficients
//! from the sample rate) whose correctness is a matter of the standard's
//! analogue prototypes, not of the measurement's bookkeeping.

use crate::effects::iir::{Cascade, Section};

/// The BS.1770 K-weighting for `rate`: the high shelf of the head, then
/// the RLB high-pass, with libebur128's analogue prototypes so any sample
/// rate gets the standard's response.
pub(super) fn k_weighting(rate: f64) -> Cascade<2> {
    use std::f64::consts::PI;
    let (f0, gain_db, q) = (1681.974450955533, 3.999843853973347, 0.7071752369554196);
    let k = (PI * f0 / rate).tan();
    let vh = 10f64.powf(gain_db / 20.0);
    let vb = vh.powf(0.4996667741545416);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Section {
        b: [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    let (f0, q) = (38.13547087602444, 0.5003270373238773);
    let k = (PI * f0 / rate).tan();
    let a0 = 1.0 + k / q + k * k;
    let highpass = Section {
        b: [1.0, -2.0, 1.0],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    Cascade::new([shelf, highpass])
}
