//! Seeded hashing: the counter-based random numbers behind noise, drum
//! hits and dither, and the stable byte hash behind stem keys and digests.
//!
//! Kept apart from `source` so the manifest, the batch runner and the WAV
//! writer can use it without depending on the generators. Every function is
//! pure: a value depends only on its inputs, never on block size or order.

/// SplitMix64 finaliser: a well-mixed 64-bit value from a counter.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in [-1, 1) for counter `n` of stream `key`.
pub fn uniform(key: u64, n: u64) -> f64 {
    let bits = mix64(key ^ mix64(n)) >> 11; // 53 random bits
    bits as f64 / (1u64 << 52) as f64 - 1.0
}

/// FNV-1a: a stable hash of bytes (std's hasher is not stable across
/// releases, and seeds must be).
pub fn hash64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The noise key of a stem: distinct stems of one song get distinct noise.
pub fn stem_key(seed: u64, stem: &str) -> u64 {
    mix64(seed ^ hash64(stem.as_bytes()))
}
