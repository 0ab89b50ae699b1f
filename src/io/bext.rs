//! The Broadcast WAV `bext` chunk (EBU Tech 3285 version 2): who made the
//! file, when, and its loudness, where a broadcaster's tools look for them.
//! The loudness is only known once the file has been measured, so the chunk
//! is written whole at the start with the loudness fields unset and
//! [`loudness_bytes`] gives the ten bytes patched in at the end.

/// Bytes of the chunk body: the fixed fields, no coding history.
pub const BODY_LEN: u32 = 602;
/// Offset of the loudness fields in the body: description (256),
/// originator (32), originator reference (32), date (10), time (8), time
/// reference (8), version (2), UMID (64).
pub const LOUDNESS_OFFSET: u64 = 256 + 32 + 32 + 10 + 8 + 8 + 2 + 64;
/// Value of a loudness field that is not set (silence has no loudness).
pub const UNSET: i16 = 0x7FFF;

/// What a file's `bext` chunk says besides its loudness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bext {
    /// Free text, at most 256 bytes (longer is cut).
    pub description: String,
    pub originator: String,
    /// `yyyy-mm-dd`.
    pub date: String,
    /// `hh:mm:ss`.
    pub time: String,
}

/// The loudness fields of a `bext` chunk, in LUFS, LU and dBTP.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BextLoudness {
    pub integrated: Option<f64>,
    pub range: Option<f64>,
    pub max_true_peak: Option<f64>,
    pub max_momentary: Option<f64>,
    pub max_short_term: Option<f64>,
}

/// `text` in a fixed field of `len` bytes, NUL-padded, cut if longer.
fn fixed(out: &mut Vec<u8>, text: &str, len: usize) {
    let bytes = &text.as_bytes()[..text.len().min(len)];
    out.extend_from_slice(bytes);
    out.resize(out.len() + len - bytes.len(), 0);
}

/// The whole chunk, header included, with the loudness fields unset.
pub fn chunk(b: &Bext) -> Vec<u8> {
    let mut c = Vec::with_capacity(8 + BODY_LEN as usize);
    c.extend_from_slice(b"bext");
    c.extend_from_slice(&BODY_LEN.to_le_bytes());
    fixed(&mut c, &b.description, 256);
    fixed(&mut c, &b.originator, 32);
    fixed(&mut c, "", 32);
    fixed(&mut c, &b.date, 10);
    fixed(&mut c, &b.time, 8);
    c.extend_from_slice(&0u64.to_le_bytes()); // time reference: sample 0
    c.extend_from_slice(&2u16.to_le_bytes()); // version 2
    c.extend_from_slice(&[0; 64]); // no UMID
    c.extend_from_slice(&loudness_bytes(&BextLoudness::default()));
    c.resize(8 + BODY_LEN as usize, 0); // reserved
    c
}

/// The ten loudness bytes: each field in hundredths as a little-endian
/// i16, [`UNSET`] where undefined.
pub fn loudness_bytes(l: &BextLoudness) -> [u8; 10] {
    let hundredths = |v: Option<f64>| {
        v.filter(|v| v.is_finite()).map_or(UNSET, |v| {
            (v * 100.0).round().clamp(-32768.0, 32766.0) as i16
        })
    };
    let fields = [
        l.integrated,
        l.range,
        l.max_true_peak,
        l.max_momentary,
        l.max_short_term,
    ];
    let mut out = [0u8; 10];
    for (slot, v) in out.chunks_exact_mut(2).zip(fields) {
        slot.copy_from_slice(&hundredths(v).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_has_the_standard_layout() {
        let b = Bext {
            description: "d".repeat(300),
            originator: "stemflow".into(),
            date: "1980-01-01".into(),
            time: "00:00:00".into(),
        };
        let c = chunk(&b);
        assert_eq!(c.len(), 610);
        assert_eq!(&c[8..264], "d".repeat(256).as_bytes());
        assert_eq!(&c[264..272], b"stemflow");
        assert_eq!(&c[8 + 320..8 + 330], b"1980-01-01");
        assert_eq!(u16::from_le_bytes([c[8 + 346], c[8 + 347]]), 2);
        let l = loudness_bytes(&BextLoudness {
            integrated: Some(-23.004),
            range: None,
            ..BextLoudness::default()
        });
        assert_eq!(i16::from_le_bytes([l[0], l[1]]), -2300);
        assert_eq!(i16::from_le_bytes([l[2], l[3]]), UNSET);
    }
}
