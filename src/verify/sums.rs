//! Σ x² kept in lanes keyed by the absolute sample index, for the RMS and
//! the loudness meter. Keyed lanes make the sum independent of how the
//! stream is split into blocks (each lane adds its samples in stream
//! order, and the lanes are summed in a fixed tree), so every block size
//! gives the same bits. Sixteen lanes, not four: an f64 addition waits for
//! the previous one into the same lane, and four lanes are one AVX vector,
//! one chain of additions at four samples per addition latency (perf: a
//! third of the stats' time spent on that one chain).

/// Lanes of a sum; sample i goes to lane i mod `LANES`.
pub const LANES: usize = 16;

/// Partial sums of squares, one per lane.
pub type Lanes = [f64; LANES];

/// Adds the squares of `values`, whose first has absolute index `start`.
#[inline(always)]
pub fn add_squares<T: Copy + Into<f64>>(lanes: &mut Lanes, start: u64, values: &[T]) {
    let lead = ((LANES as u64 - start % LANES as u64) % LANES as u64).min(values.len() as u64);
    let (head, rest) = values.split_at(lead as usize);
    for (k, &v) in head.iter().enumerate() {
        let v: f64 = v.into();
        lanes[(start as usize + k) % LANES] += v * v;
    }
    // From here the absolute index of chunk element k is ≡ k (mod LANES).
    let mut chunks = rest.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            let v: f64 = c[k].into();
            lanes[k] += v * v;
        }
    }
    for (k, &v) in chunks.remainder().iter().enumerate() {
        let v: f64 = v.into();
        lanes[k] += v * v;
    }
}

/// The lanes' total, summed pairwise in a fixed order.
pub fn total(lanes: &Lanes) -> f64 {
    let mut level = *lanes;
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for k in 0..width {
            level[k] = level[2 * k] + level[2 * k + 1];
        }
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_split_gives_the_same_bits_and_the_total_is_the_sum() {
        let x: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5).collect();
        let mut whole = [0.0; LANES];
        add_squares(&mut whole, 0, &x);
        for split in [1, 3, 16, 17, 999] {
            let mut parts = [0.0; LANES];
            let mut at = 0;
            for piece in x.chunks(split) {
                add_squares(&mut parts, at, piece);
                at += piece.len() as u64;
            }
            assert_eq!(parts.map(f64::to_bits), whole.map(f64::to_bits), "split {split}");
        }
        let exact: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
        assert!((total(&whole) - exact).abs() < 1e-12 * exact);
    }
}
