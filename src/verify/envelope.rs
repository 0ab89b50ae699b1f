//! Per-column minimum and maximum of a stream, gathered while it renders:
//! the data behind `overview.svg`, at a fixed cost in memory however long
//! the song. A meter like the others in `verify`, so the pipeline can feed it
//! without knowing how the picture is drawn.

use crate::types::Block;

/// Columns of the envelope (one SVG x unit each).
pub const COLUMNS: usize = 1000;

/// Minimum and maximum sample of each column of a stream.
#[derive(Clone, Debug)]
pub struct Envelope {
    target: u64,
    pos: u64,
    /// Column of frame `pos`, and the first frame of the next column.
    col: usize,
    next: u64,
    cols: Vec<(f32, f32)>,
}

impl Envelope {
    /// An empty envelope for a stream of `target` frames.
    pub fn new(target: u64) -> Envelope {
        let target = target.max(1);
        Envelope {
            target,
            pos: 0,
            col: 0,
            next: Envelope::column_start(1, target),
            cols: vec![(0.0, 0.0); COLUMNS],
        }
    }

    /// First frame of column `c`: frame n is in column floor(n·COLUMNS/T).
    fn column_start(c: usize, target: u64) -> u64 {
        (c as u128 * target as u128).div_ceil(COLUMNS as u128) as u64
    }

    /// Adds one block (all channels fold into one lane).
    pub fn update(&mut self, block: &Block) {
        let ch = block.channels();
        let mut rest = block.samples();
        while !rest.is_empty() {
            // Columns advance at precomputed boundaries: no division per frame.
            while self.pos >= self.next && self.col < COLUMNS - 1 {
                self.col += 1;
                self.next = Envelope::column_start(self.col + 1, self.target);
            }
            // The frames that stay in this column, folded in one run.
            let frames = if self.col == COLUMNS - 1 {
                rest.len() / ch
            } else {
                ((self.next - self.pos) as usize).min(rest.len() / ch)
            };
            let (run, tail) = rest.split_at(frames * ch);
            let c = &mut self.cols[self.col];
            (c.0, c.1) = min_max(run, (c.0, c.1));
            self.pos += frames as u64;
            rest = tail;
        }
    }
}

impl Envelope {
    /// Each column's (minimum, maximum), `COLUMNS` of them.
    pub fn columns(&self) -> &[(f32, f32)] {
        &self.cols
    }
}

/// The smallest and largest of `values` and `start`, eight lanes at a time.
/// `min`/`max` skip NaN (infinities fail the song before any picture is
/// drawn) and do not depend on the order.
fn min_max(values: &[f32], start: (f32, f32)) -> (f32, f32) {
    let (mut lo, mut hi) = ([start.0; 8], [start.1; 8]);
    let mut chunks = values.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            lo[k] = lo[k].min(c[k]);
            hi[k] = hi[k].max(c[k]);
        }
    }
    for &v in chunks.remainder() {
        lo[0] = lo[0].min(v);
        hi[0] = hi[0].max(v);
    }
    let lo = lo.iter().fold(start.0, |m, &v| m.min(v));
    let hi = hi.iter().fold(start.1, |m, &v| m.max(v));
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_land_in_the_column_floor_n_times_columns_over_t() {
        for target in [1u64, 999, 1000, 1001, 48_000, 6_576_001] {
            let mut e = Envelope::new(target);
            let mut b = Block::new(1, 1);
            for n in 0..target.min(5000) {
                b.samples_mut()[0] = n as f32 + 1.0;
                e.update(&b);
                let want = ((n as u128 * COLUMNS as u128) / target as u128) as usize;
                assert_eq!(e.col, want, "target {target}, frame {n}");
            }
        }
    }
}
