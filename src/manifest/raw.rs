//! The manifest exactly as TOML spells it, before any check. Kept apart from
//! validation so the serde shapes (and so the parser's own "unknown field"
//! and "invalid type" errors) can be read at a glance, and so validation
//! never sees a half-checked value: it only turns these into the plan.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::plan::{AlignMode, Clip, Codec, Compression, Dither, Restart, StemFiles, Wave};
use crate::types::SampleFormat;

/// The whole file. Songs keep their spans so errors can point into them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    /// `None` when the file has no `songs` key at all (the song tables
    /// may then be parsed one by one, see `split`).
    pub(super) songs: Option<Vec<Spanned<RawSong>>>,
}

/// One song table parsed on its own (see `split`): a document holding just
/// `[[songs]]` and its sub-tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSongTable {
    pub(super) songs: Vec<Spanned<RawSong>>,
}

/// `[limits]`: raises the guards against typos asking for days of audio.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) max_duration: Option<f64>,
    pub(super) max_stems: Option<usize>,
}

/// `[defaults]`: what a song inherits unless it says otherwise.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) sample_rate: Option<u32>,
    pub(super) format: Option<SampleFormat>,
    pub(super) channels: Option<u16>,
    pub(super) seed: Option<u64>,
    pub(super) dither: Option<Dither>,
    pub(super) compression: Option<Compression>,
    pub(super) stem_files: Option<StemFiles>,
    pub(super) codec: Option<Codec>,
    pub(super) bwf: Option<bool>,
    #[serde(default)]
    pub(super) verify: RawVerify,
}

/// The limits of a `verify` table, each optional so a song's table can
/// override single values of `[defaults.verify]`.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerifyTable {
    pub(super) duration_tolerance: Option<f64>,
    pub(super) max_clip_ratio: Option<f64>,
    pub(super) min_rms: Option<f64>,
    pub(super) target_lufs: Option<f64>,
    pub(super) lufs_tolerance: Option<f64>,
    pub(super) max_true_peak_db: Option<f64>,
}

impl RawVerifyTable {
    /// Each limit from `self` (the song), else from `defaults`.
    pub(super) fn or(&self, defaults: &RawVerifyTable) -> RawVerifyTable {
        RawVerifyTable {
            duration_tolerance: self.duration_tolerance.or(defaults.duration_tolerance),
            max_clip_ratio: self.max_clip_ratio.or(defaults.max_clip_ratio),
            min_rms: self.min_rms.or(defaults.min_rms),
            target_lufs: self.target_lufs.or(defaults.target_lufs),
            lufs_tolerance: self.lufs_tolerance.or(defaults.lufs_tolerance),
            max_true_peak_db: self.max_true_peak_db.or(defaults.max_true_peak_db),
        }
    }
}

/// Loudness delivery presets for `verify = "..."`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "lowercase")]
enum VerifyPreset {
    /// Streaming platforms: −14 LUFS ± 1, true peak ≤ −1 dBTP.
    Streaming,
    /// EBU R128 broadcast: −23 LUFS ± 1, true peak ≤ −1 dBTP.
    Broadcast,
}

impl VerifyPreset {
    fn table(self) -> RawVerifyTable {
        let target = match self {
            VerifyPreset::Streaming => -14.0,
            VerifyPreset::Broadcast => -23.0,
        };
        RawVerifyTable {
            target_lufs: Some(target),
            lufs_tolerance: Some(1.0),
            max_true_peak_db: Some(-1.0),
            ..RawVerifyTable::default()
        }
    }
}

/// `verify` is either a preset name or a table of limits.
#[derive(Default, Clone)]
pub(super) struct RawVerify(pub(super) RawVerifyTable);

impl<'de> Deserialize<'de> for RawVerify {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawVerify;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a preset (\"streaming\" or \"broadcast\") or a table of limits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawVerify, E> {
                let preset =
                    VerifyPreset::deserialize(serde::de::value::StrDeserializer::<E>::new(v))?;
                Ok(RawVerify(preset.table()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawVerify, A::Error> {
                RawVerifyTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawVerify)
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[[songs]]` table. Stems keep their spans so errors can point into them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSong {
    pub(super) id: String,
    /// Free text shown in tables, the overview and `bext`.
    pub(super) title: Option<String>,
    pub(super) bpm: f64,
    /// `"N/D"`, parsed by validation so its errors name the key.
    pub(super) meter: Option<String>,
    pub(super) duration: Option<f64>,
    pub(super) archive: Option<String>,
    pub(super) keep_files: Option<bool>,
    pub(super) sample_rate: Option<u32>,
    pub(super) format: Option<SampleFormat>,
    pub(super) channels: Option<u16>,
    pub(super) seed: Option<u64>,
    pub(super) dither: Option<Dither>,
    pub(super) compression: Option<Compression>,
    pub(super) stem_files: Option<StemFiles>,
    pub(super) codec: Option<Codec>,
    pub(super) bwf: Option<bool>,
    /// Origination date of the `bext` chunk.
    pub(super) date: Option<String>,
    #[serde(default)]
    pub(super) verify: RawVerify,
    #[serde(default)]
    pub(super) master: RawMaster,
    pub(super) reference: Option<RawReference>,
    #[serde(default)]
    pub(super) sections: Vec<RawSection>,
    #[serde(default)]
    pub(super) stems: Vec<Spanned<RawStem>>,
    /// `[[songs.deliver]]` versions.
    #[serde(default)]
    pub(super) deliver: Vec<Spanned<RawDeliver>>,
}

/// One `[[songs.deliver]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeliver {
    pub(super) name: String,
    pub(super) sample_rate: Option<u32>,
    pub(super) format: Option<SampleFormat>,
    pub(super) codec: Option<Codec>,
    pub(super) normalize_lufs: Option<f64>,
    pub(super) limit_true_peak_db: Option<f64>,
    pub(super) dither: Option<Dither>,
}

/// `[songs.master]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaster {
    pub(super) clip: Option<Clip>,
    pub(super) normalize_lufs: Option<f64>,
    pub(super) limit_true_peak_db: Option<f64>,
}

/// `[songs.reference]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReference {
    pub(super) path: String,
    pub(super) sample_rate: Option<u32>,
    pub(super) channels: Option<u16>,
    pub(super) min_duration: Option<f64>,
}

/// One `[[songs.sections]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSection {
    pub(super) name: String,
    /// Exactly one of `beats` and `bars`.
    pub(super) beats: Option<u32>,
    pub(super) bars: Option<u32>,
}

/// A stem's `role`, which picks its alignment when `align = "auto"`.
#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Role {
    Rhythmic,
    Melodic,
}

/// One `[[songs.stems]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStem {
    pub(super) name: String,
    pub(super) source: RawSource,
    pub(super) align: Option<AlignMode>,
    pub(super) role: Option<Role>,
    pub(super) gain: Option<f64>,
    pub(super) gain_db: Option<f64>,
    pub(super) pan: Option<f64>,
    #[serde(default)]
    pub(super) effects: Vec<RawEffect>,
    pub(super) crossfade_ms: Option<f64>,
    pub(super) fade_ms: Option<f64>,
    pub(super) loop_bars: Option<u32>,
    // Tempo and key of the source (SPEC §9).
    pub(super) source_bpm: Option<f64>,
    pub(super) transpose: Option<f64>,
    // Placement (SPEC §9). Not a flattened sub-struct: serde's `flatten`
    // would switch off `deny_unknown_fields` and the parser's positions.
    pub(super) sections: Option<Vec<String>>,
    pub(super) start_bar: Option<u32>,
    pub(super) end_bar: Option<u32>,
    pub(super) restart: Option<Restart>,
    pub(super) fade_in_ms: Option<f64>,
    pub(super) fade_out_ms: Option<f64>,
}

/// A stem's `source`, tagged by `type`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum RawSource {
    Tone {
        freq: f64,
        amp: Option<f64>,
        wave: Option<Wave>,
        length: Option<f64>,
    },
    Drums {
        amp: Option<f64>,
        hats: Option<bool>,
        length: Option<f64>,
    },
    Noise {
        amp: Option<f64>,
        length: Option<f64>,
    },
    Silence {
        length: Option<f64>,
    },
    File {
        path: String,
    },
}

/// One entry of a stem's `effects`, tagged by `type`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum RawEffect {
    Lowpass {
        cutoff: f64,
        order: Option<u8>,
    },
    Highpass {
        cutoff: f64,
        order: Option<u8>,
    },
    Bandpass {
        freq: f64,
        q: f64,
    },
    Notch {
        freq: f64,
        q: f64,
    },
    Peak {
        freq: f64,
        q: f64,
        gain_db: f64,
    },
    Lowshelf {
        freq: f64,
        gain_db: f64,
    },
    Highshelf {
        freq: f64,
        gain_db: f64,
    },
    Gain {
        db: f64,
    },
    Echo {
        delay_ms: f64,
        decay: f64,
        taps: Option<u32>,
    },
}
