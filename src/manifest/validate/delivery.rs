//! The delivery keys of a song (SPEC §10): where stem files tap their
//! chain, the codec, and the Broadcast WAV metadata. Kept in a step of
//! their own so they resolve against `[defaults]` in one place and the
//! codec can be checked against the format it has to carry.

use super::{At, Validator};
use crate::manifest::error::ManifestError;
use crate::manifest::raw::{RawDefaults, RawSong};
use crate::plan::{Codec, DeliveryPlan, StemFiles};
use crate::types::{SampleFormat, StreamSpec};

impl Validator<'_> {
    /// `stem_files`, `codec`, `bwf` and `date`, each from the song, else
    /// `[defaults]`, else SPEC §10's default.
    pub(super) fn delivery(
        &self,
        at: At<'_>,
        raw: &RawSong,
        defaults: &RawDefaults,
        spec: StreamSpec,
    ) -> Result<DeliveryPlan, ManifestError> {
        let codec = raw.codec.or(defaults.codec).unwrap_or(Codec::Wav);
        if codec == Codec::Flac && spec.format == SampleFormat::Float {
            let what = "\"flac\" needs format \"pcm16\" or \"pcm24\" (FLAC has no float samples)";
            return Err(self.err(at, Some("codec"), what));
        }
        let (date, time) = match raw.date.as_deref() {
            None => ("1980-01-01".to_string(), "00:00:00".to_string()),
            Some(d) => parse_date(d).ok_or_else(|| {
                let what = format!("must be \"yyyy-mm-dd\" or \"yyyy-mm-dd hh:mm:ss\", got {d:?}");
                self.err(at, Some("date"), what)
            })?,
        };
        Ok(DeliveryPlan {
            stem_files: raw
                .stem_files
                .or(defaults.stem_files)
                .unwrap_or(StemFiles::PostFader),
            codec,
            bwf: raw.bwf.or(defaults.bwf).unwrap_or(true),
            date,
            time,
        })
    }
}

/// `yyyy-mm-dd` with an optional ` hh:mm:ss` (or `T` between): the date
/// and the time as the `bext` chunk spells them.
fn parse_date(s: &str) -> Option<(String, String)> {
    let (date, time) = match s.len() {
        10 => (s, "00:00:00"),
        19 if matches!(s.as_bytes()[10], b' ' | b'T') => (&s[..10], &s[11..]),
        _ => return None,
    };
    let fields = |text: &str, sep: char, count: usize| -> Option<Vec<u32>> {
        let parts: Vec<&str> = text.split(sep).collect();
        let ok =
            parts.len() == count && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
        ok.then(|| parts.iter().filter_map(|p| p.parse().ok()).collect())
    };
    let d = fields(date, '-', 3)?;
    let t = fields(time, ':', 3)?;
    let valid = d.len() == 3
        && t.len() == 3
        && date.as_bytes()[4] == b'-'
        && date.as_bytes()[7] == b'-'
        && (1..=12).contains(&d[1])
        && (1..=31).contains(&d[2])
        && t[0] < 24
        && t[1] < 60
        && t[2] < 60
        && time.len() == 8;
    valid.then(|| (date.to_string(), time.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_date;
    use crate::manifest::tests::{SONG, parse_str};
    use crate::plan::{Codec, StemFiles};

    #[test]
    fn dates_parse_strictly() {
        let ok = |s: &str, d: &str, t: &str| {
            assert_eq!(parse_date(s), Some((d.to_string(), t.to_string())), "{s}")
        };
        ok("2024-05-01", "2024-05-01", "00:00:00");
        ok("2024-05-01 13:04:59", "2024-05-01", "13:04:59");
        ok("2024-05-01T13:04:59", "2024-05-01", "13:04:59");
        for bad in [
            "2024-5-1",
            "2024-13-01",
            "2024-05-01 24:00:00",
            "x",
            "2024/05/01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let song = &parse_str(SONG).unwrap().songs[0];
        assert_eq!(song.delivery.stem_files, StemFiles::PostFader);
        assert_eq!(song.delivery.codec, Codec::Wav);
        assert!(song.delivery.bwf);
        let song_keys = SONG.replace(
            "duration = 8\n",
            "duration = 8\nbwf = false\ndate = \"2001-02-03\"\n",
        );
        let text = format!(
            "[defaults]\nstem_files = \"pre-fader\"\nformat = \"pcm16\"\ncodec = \"flac\"\n{song_keys}"
        );
        let song = &parse_str(&text).unwrap().songs[0];
        assert_eq!(song.delivery.stem_files, StemFiles::PreFader);
        assert_eq!(song.delivery.codec, Codec::Flac);
        assert!(!song.delivery.bwf);
        assert_eq!(song.delivery.date, "2001-02-03");
    }

    #[test]
    fn float_flac_is_an_error_naming_the_key() {
        let text = SONG.replace("duration = 8\n", "duration = 8\ncodec = \"flac\"\n");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.contains("`codec`") && e.contains("pcm16"), "{e}");
    }
}
