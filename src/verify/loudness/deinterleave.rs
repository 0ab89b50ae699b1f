//! One channel of a block as a line of its own, for the meters' filters.
//! `Block::channel_into` steps through the interleaved samples with a
//! run-time stride, which the compiler cannot vectorise; the meters copy
//! every sample of every stem this way (K-weighting in f64, the true peak
//! in f32), so mono and stereo get loops with the stride and the channel
//! fixed at compile time.

use crate::types::Block;

/// Appends channel `c` of `block` to `out`, each sample through `convert`
/// (the same values as `Block::channel_into`).
pub(super) fn append_channel<T>(block: &Block, c: usize, out: &mut Vec<T>, convert: impl Fn(f32) -> T) {
    let samples = block.samples();
    match (block.channels(), c) {
        (1, _) => out.extend(samples.iter().map(|&v| convert(v))),
        (2, 0) => out.extend(samples.as_chunks::<2>().0.iter().map(|f| convert(f[0]))),
        (2, _) => out.extend(samples.as_chunks::<2>().0.iter().map(|f| convert(f[1]))),
        _ => block.channel_into(c, out, convert),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_same_samples_as_the_block() {
        for channels in [1u16, 2, 3, 6] {
            let mut b = Block::new(channels, 37);
            for (i, v) in b.samples_mut().iter_mut().enumerate() {
                *v = i as f32 * 0.5 - 3.0;
            }
            for c in 0..channels as usize {
                let (mut ours, mut want) = (vec![1.0f64], vec![1.0f64]);
                append_channel(&b, c, &mut ours, f64::from);
                b.channel_into(c, &mut want, f64::from);
                assert_eq!(ours, want, "{channels} channels, channel {c}");
            }
        }
    }
}
