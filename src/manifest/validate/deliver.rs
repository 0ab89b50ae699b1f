//! `[[songs.deliver]]` (SPEC §10): the delivery versions of a song. Their
//! names become file names in `deliver/`, so they follow the rules of
//! archive names (plain, no reserved name) and must be unique; a rate must
//! be one a delivery can be asked for; float cannot go into FLAC.

use std::collections::HashSet;

use toml::Spanned;

use super::{At, Validator};
use crate::manifest::error::ManifestError;
use crate::manifest::locate::{Table, table_region};
use crate::manifest::raw::RawDeliver;
use crate::manifest::{is_reserved_name, is_valid_name};
use crate::plan::{Codec, DeliverPlan, Dither};
use crate::types::{SampleFormat, StreamSpec};

/// The rates a delivery version may have: the standard audio rates (a
/// typo such as 4410 is an error, not a file nobody can play).
pub const DELIVER_RATES: [u32; 13] = [
    8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000, 352800, 384000,
];

/// Most delivery versions one song may have.
const MAX_VERSIONS: usize = 16;

impl Validator<'_> {
    /// The song's delivery versions, in manifest order; `spec` and
    /// `dither` are the song's, which a version inherits.
    pub(super) fn deliver(
        &self,
        at: At<'_>,
        raw: Vec<Spanned<RawDeliver>>,
        spec: StreamSpec,
        dither: Dither,
    ) -> Result<Vec<DeliverPlan>, ManifestError> {
        if raw.len() > MAX_VERSIONS {
            let what = format!("{} versions; at most {MAX_VERSIONS} are allowed", raw.len());
            return Err(self.err(at, Some("deliver"), what));
        }
        let mut names = HashSet::new();
        raw.into_iter()
            .map(|spanned| {
                let span = table_region(self.text, spanned.span(), Table::Other);
                let at = At { span: &span, ..at };
                let raw = spanned.into_inner();
                // Compared ignoring case: on a case-insensitive file system
                // `Radio` and `radio` would be one file.
                if !names.insert(raw.name.to_ascii_lowercase()) {
                    let what = format!("duplicate delivery version {:?}", raw.name);
                    return Err(self.err(at, Some("deliver.name"), what));
                }
                self.version(at, raw, spec, dither)
            })
            .collect()
    }

    /// One version, checked in key order: name, sample_rate, format and
    /// codec, normalize_lufs, limit_true_peak_db.
    fn version(
        &self,
        at: At<'_>,
        raw: RawDeliver,
        spec: StreamSpec,
        dither: Dither,
    ) -> Result<DeliverPlan, ManifestError> {
        let name = &raw.name;
        if !is_valid_name(name) {
            let what = "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63} (it names a file)";
            return Err(self.err(at, Some("deliver.name"), what));
        }
        if is_reserved_name(name) {
            let what = format!("{name:?} is a name stemflow writes itself");
            return Err(self.err(at, Some("deliver.name"), what));
        }
        let sample_rate = raw.sample_rate.unwrap_or(spec.sample_rate);
        if !DELIVER_RATES.contains(&sample_rate) {
            let what = format!("must be one of {DELIVER_RATES:?} Hz, got {sample_rate}");
            return Err(self.err(at, Some("deliver.sample_rate"), what));
        }
        let format = raw.format.unwrap_or(spec.format);
        let codec = raw.codec.unwrap_or(Codec::Wav);
        if codec == Codec::Flac && format == SampleFormat::Float {
            let what = "\"flac\" needs format \"pcm16\" or \"pcm24\" (FLAC has no float samples)";
            return Err(self.err(at, Some("deliver.codec"), what));
        }
        let normalize_lufs = self.bounded(
            at,
            "deliver.normalize_lufs",
            raw.normalize_lufs,
            -70.0..=0.0,
            "must be between -70 and 0 LUFS",
        )?;
        let limit_true_peak_db = self.bounded(
            at,
            "deliver.limit_true_peak_db",
            raw.limit_true_peak_db,
            -30.0..=0.0,
            "must be between -30 and 0 dBTP",
        )?;
        Ok(DeliverPlan {
            name: raw.name,
            spec: StreamSpec {
                sample_rate,
                format,
                ..spec
            },
            codec,
            normalize_lufs,
            limit_true_peak_db,
            dither: raw.dither.unwrap_or(dither),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::tests::{SONG, parse_str};
    use crate::plan::Codec;
    use crate::types::SampleFormat;

    /// The test song with `tables` appended.
    fn with(tables: &str) -> String {
        format!("{SONG}{tables}")
    }

    #[test]
    fn versions_inherit_the_song_and_keep_their_order() {
        let text = with(
            "[[songs.deliver]]\nname = \"stream\"\nsample_rate = 44100\nformat = \"pcm16\"\n\
             codec = \"flac\"\nnormalize_lufs = -14\nlimit_true_peak_db = -1\n\
             [[songs.deliver]]\nname = \"plain\"\n",
        );
        let song = &parse_str(&text).unwrap().songs[0];
        let [stream, plain] = &song.deliver[..] else {
            panic!("two versions expected")
        };
        assert_eq!(stream.spec.sample_rate, 44100);
        assert_eq!(stream.spec.format, SampleFormat::Pcm16);
        assert_eq!(stream.codec, Codec::Flac);
        assert_eq!(stream.normalize_lufs, Some(-14.0));
        assert_eq!(stream.file(), "deliver/stream.flac");
        assert_eq!(plain.spec, song.spec);
        assert_eq!((plain.normalize_lufs, plain.dither), (None, song.dither));
    }

    #[test]
    fn bad_versions_name_the_key_and_line() {
        let cases = [
            (
                "name = \"a\"\n[[songs.deliver]]\nname = \"A\"",
                17,
                "deliver.name",
                "duplicate",
            ),
            (
                "name = \"report.json\"",
                15,
                "deliver.name",
                "stemflow writes",
            ),
            ("name = \"../x\"", 15, "deliver.name", "must match"),
            (
                "name = \"a\"\nsample_rate = 44000",
                16,
                "deliver.sample_rate",
                "44100",
            ),
            (
                "name = \"a\"\ncodec = \"flac\"",
                16,
                "deliver.codec",
                "pcm16",
            ),
            (
                "name = \"a\"\nnormalize_lufs = 3",
                16,
                "deliver.normalize_lufs",
                "-70",
            ),
            (
                "name = \"a\"\nlimit_true_peak_db = 1",
                16,
                "deliver.limit_true_peak_db",
                "-30",
            ),
        ];
        for (table, line, key, what) in cases {
            let e = parse_str(&with(&format!("[[songs.deliver]]\n{table}\n")))
                .unwrap_err()
                .to_string();
            let head = format!("m.toml:{line}: song \"s1\": key `{key}`: ");
            assert!(e.starts_with(&head) && e.contains(what), "{e}");
        }
    }

    #[test]
    fn an_unknown_key_in_a_version_is_not_blamed_on_the_stem_before_it() {
        let text = with("[[songs.deliver]]\nname = \"a\"\nloudness = 3\n");
        let e = parse_str(&text).unwrap_err().to_string();
        let head = "m.toml:16: song \"s1\": key `loudness`: unknown key";
        assert!(e.starts_with(head), "{e}");
    }

    #[test]
    fn versions_are_part_of_the_digest() {
        let plain = parse_str(SONG).unwrap().songs[0].digest.clone();
        let text = with("[[songs.deliver]]\nname = \"a\"\n");
        assert_ne!(parse_str(&text).unwrap().songs[0].digest, plain);
    }
}
