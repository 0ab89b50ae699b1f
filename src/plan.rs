//! The validated render plan: what the manifest means, with every default
//! resolved. Everything downstream reads these types, never the raw TOML.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::timing::{Meter, Timing};
use crate::types::{Frames, StreamSpec};

/// A whole manifest, validated.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Where the manifest lives; relative paths start here.
    pub base_dir: PathBuf,
    pub songs: Vec<SongPlan>,
}

/// One song, ready to render.
#[derive(Clone, Debug)]
pub struct SongPlan {
    pub id: String,
    /// Free-text name for people (spaces, accents): shown in tables, the
    /// overview and the `bext` description; the id still names the folder.
    pub title: Option<String>,
    /// Position in the manifest (used by `--shard`).
    pub index: usize,
    pub bpm: f64,
    /// Time signature: how many beats make a bar.
    pub meter: Meter,
    /// Target duration in seconds; `None` until taken from the reference
    /// when the manifest gives none (the batch resolves it before rendering).
    pub duration: Option<f64>,
    pub spec: StreamSpec,
    pub seed: u64,
    pub dither: Dither,
    pub verify: VerifyLimits,
    pub master: MasterPlan,
    /// Archive file name inside the song folder, `None` for no archive.
    pub archive: Option<String>,
    /// False: the WAVs end up only inside the archive.
    pub keep_files: bool,
    pub compression: Compression,
    pub reference: Option<ReferencePlan>,
    pub timing: Timing,
    pub stems: Vec<StemPlan>,
    /// What the delivered files are: stem tap point, codec, BWF metadata.
    pub delivery: DeliveryPlan,
    /// `[[songs.deliver]]`: further masters made from the unclipped mix.
    pub deliver: Vec<DeliverPlan>,
    /// A stable digest of everything above: a rerun with the same digest
    /// produces the same bytes.
    pub digest: String,
    /// The digest extended with what the song's input files hold; set by the
    /// batch runner just before rendering, empty until then. Reports record
    /// it, and resume compares it.
    pub fingerprint: String,
}

impl SongPlan {
    /// What people call the song: its `title`, else its id.
    pub fn display_name(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }

    /// The target duration in seconds, once resolved.
    pub fn seconds(&self) -> f64 {
        self.duration
            .expect("duration resolved from the reference before rendering")
    }

    /// The target length `T` in frames.
    pub fn target_frames(&self) -> Frames {
        Frames::from_seconds(self.seconds(), self.spec.sample_rate)
    }

    /// `T` in frames, or 0 while the duration waits for the reference
    /// (for displays that run before it is resolved).
    pub fn target_frames_or_zero(&self) -> Frames {
        self.duration.map_or(Frames(0), |d| {
            Frames::from_seconds(d, self.spec.sample_rate)
        })
    }
}

/// A reference recording the song is checked against.
#[derive(Clone, Debug)]
pub struct ReferencePlan {
    pub path: PathBuf,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    pub min_duration: Option<f64>,
}

/// One stem of a song.
#[derive(Clone, Debug)]
pub struct StemPlan {
    pub name: String,
    pub source: SourceSpec,
    pub align: AlignMode,
    /// Whether `auto` alignment treats this stem as rhythmic (loops it).
    pub rhythmic: bool,
    /// Linear mix gain.
    pub gain: f64,
    /// -1 (left) .. 1 (right); only used in stereo songs.
    pub pan: f64,
    pub effects: Vec<EffectSpec>,
    pub crossfade_ms: f64,
    pub fade_ms: f64,
    /// Loop length in bars for grid-locked loops; `None`: the source length
    /// rounded to whole bars.
    pub loop_bars: Option<u32>,
    /// Where in the song the stem plays (SPEC §9); `None`: all of it.
    pub placement: Option<Placement>,
    /// Tempo the source was recorded at: it is stretched by
    /// `source_bpm / bpm` before alignment (SPEC §9); `None`: as it is.
    pub source_bpm: Option<f64>,
    /// Pitch shift of the source in semitones, duration kept; 0: none.
    pub transpose: f64,
}

/// Where a placed stem plays, and how it enters and leaves.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Regions as song frames `start..end`, sorted, disjoint and never
    /// touching (adjacent sections are merged). An end past the song (an
    /// `end_bar` beyond it, or none given) is cut at the target length
    /// when the song renders.
    pub regions: Vec<std::ops::Range<u64>>,
    pub restart: Restart,
    /// Raised-cosine fade at the start of each region.
    pub fade_in_ms: f64,
    /// Raised-cosine fade at the end of each region.
    pub fade_out_ms: f64,
}

impl Placement {
    /// The regions cut to a song of `target` frames; empty ones dropped.
    pub fn regions_in(&self, target: u64) -> Vec<std::ops::Range<u64>> {
        self.regions
            .iter()
            .map(|r| r.start.min(target)..r.end.min(target))
            .filter(|r| !r.is_empty())
            .collect()
    }
}

/// What a placed stem's source does at each region (SPEC §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Restart {
    /// The source starts again at frame 0 at every region, aligned to the
    /// region's length.
    Region,
    /// The stem runs on the song's timeline and is only gated.
    Song,
}

/// Tone waveform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wave {
    Sine,
    Square,
    Saw,
    Triangle,
}

/// Where a stem's audio comes from. A generator's `length` is seconds of
/// audio before alignment; `None` means the song's target duration.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    Tone {
        freq: f64,
        amp: f64,
        wave: Wave,
        length: Option<f64>,
    },
    Drums {
        amp: f64,
        hats: bool,
        length: Option<f64>,
    },
    Noise {
        amp: f64,
        length: Option<f64>,
    },
    Silence {
        length: Option<f64>,
    },
    File {
        path: PathBuf,
    },
}

impl SourceSpec {
    /// The manifest's name of this source type.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Tone { .. } => "tone",
            SourceSpec::Drums { .. } => "drums",
            SourceSpec::Noise { .. } => "noise",
            SourceSpec::Silence { .. } => "silence",
            SourceSpec::File { .. } => "file",
        }
    }

    /// A generator's `length` in seconds, if the manifest gave one.
    pub fn length(&self) -> Option<f64> {
        match self {
            SourceSpec::Tone { length, .. }
            | SourceSpec::Drums { length, .. }
            | SourceSpec::Noise { length, .. }
            | SourceSpec::Silence { length } => *length,
            SourceSpec::File { .. } => None,
        }
    }

    /// The same source, made `seconds` long when it is a generator the
    /// manifest gave no `length` (a placed stem's source fits its region).
    pub fn with_default_length(&self, seconds: f64) -> SourceSpec {
        let mut s = self.clone();
        match &mut s {
            SourceSpec::Tone { length, .. }
            | SourceSpec::Drums { length, .. }
            | SourceSpec::Noise { length, .. }
            | SourceSpec::Silence { length } => {
                length.get_or_insert(seconds);
            }
            SourceSpec::File { .. } => {}
        }
        s
    }
}

/// Alignment strategy of a stem (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AlignMode {
    Auto,
    ZeroPad,
    Loop,
    Crossfade,
    Truncate,
    None,
}

impl AlignMode {
    /// The manifest spelling.
    pub fn name(self) -> &'static str {
        match self {
            AlignMode::Auto => "auto",
            AlignMode::ZeroPad => "zero-pad",
            AlignMode::Loop => "loop",
            AlignMode::Crossfade => "crossfade",
            AlignMode::Truncate => "truncate",
            AlignMode::None => "none",
        }
    }
}

/// Biquad-based filter kinds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FilterKind {
    /// Butterworth low-pass of the given order.
    Lowpass {
        cutoff: f64,
        order: u8,
    },
    /// Butterworth high-pass of the given order.
    Highpass {
        cutoff: f64,
        order: u8,
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
}

/// One effect of a stem's chain.
#[derive(Clone, Debug, PartialEq)]
pub enum EffectSpec {
    Filter(FilterKind),
    Gain {
        db: f64,
    },
    Echo {
        delay_ms: f64,
        decay: f64,
        taps: u32,
    },
}

/// Pass/fail limits for the master (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VerifyLimits {
    pub duration_tolerance: f64,
    pub max_clip_ratio: f64,
    pub min_rms: f64,
    /// Integrated loudness the master must reach, ± `lufs_tolerance`.
    pub target_lufs: Option<f64>,
    pub lufs_tolerance: f64,
    /// Highest true peak the master may have, dBTP.
    pub max_true_peak_db: Option<f64>,
}

/// Master bus clipping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clip {
    Hard,
    None,
}

/// Master bus settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MasterPlan {
    pub clip: Clip,
    /// Gain the master to this integrated loudness (a second pass).
    pub normalize_lufs: Option<f64>,
    /// True-peak ceiling of the lookahead limiter, dBTP.
    pub limit_true_peak_db: Option<f64>,
}

/// Dither applied when writing integer PCM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dither {
    Tpdf,
    None,
}

/// How audio files are stored in the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Stored,
    Deflate,
}

/// Where a stem's file taps its chain (SPEC §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StemFiles {
    /// After gain and pan (and the master's normalisation gain): the stem
    /// files sum to the master before its limiter and clip.
    PostFader,
    /// Before gain and pan: the stem as its chain made it.
    PreFader,
}

/// Container and codec of the written audio files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Wav,
    /// Lossless; integer PCM only.
    Flac,
}

impl Codec {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Wav => "wav",
            Codec::Flac => "flac",
        }
    }
}

/// How a song's files are delivered (SPEC §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPlan {
    pub stem_files: StemFiles,
    pub codec: Codec,
    /// Whether WAVs carry a `bext` chunk.
    pub bwf: bool,
    /// Origination date `yyyy-mm-dd` of the `bext` chunk.
    pub date: String,
    /// Origination time `hh:mm:ss` of the `bext` chunk.
    pub time: String,
}

impl Default for DeliveryPlan {
    fn default() -> DeliveryPlan {
        DeliveryPlan {
            stem_files: StemFiles::PostFader,
            codec: Codec::Wav,
            bwf: true,
            date: "1980-01-01".into(),
            time: "00:00:00".into(),
        }
    }
}

/// One `[[songs.deliver]]` version (SPEC §10): one more master, made from
/// the unclipped mix at its own rate, loudness, ceiling, format and codec.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliverPlan {
    /// File stem of `deliver/<name>.<ext>`.
    pub name: String,
    /// Rate, channels (the song's) and sample format of the file.
    pub spec: StreamSpec,
    pub codec: Codec,
    /// Gain the version to this integrated loudness; `None`: the master's
    /// normalisation gain (1 without one).
    pub normalize_lufs: Option<f64>,
    /// True-peak ceiling of the version's limiter, dBTP.
    pub limit_true_peak_db: Option<f64>,
    pub dither: Dither,
}

impl DeliverPlan {
    /// The file's path inside the song folder, `deliver/<name>.<ext>`.
    pub fn file(&self) -> String {
        format!("deliver/{}.{}", self.name, self.codec.extension())
    }
}
