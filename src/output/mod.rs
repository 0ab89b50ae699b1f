//! Everything written to OUT: WAV files, the per-song report, the archive
//! and the run's summary.

pub mod archive;
pub mod catalogue;
pub mod catalogue_html;
pub mod overview;

use serde::{Deserialize, Serialize};

use crate::error::SongError;
use crate::pipeline::{DeliverOutcome, MasterOutcome, SongOutcome, StemOutcome};
use crate::plan::SongPlan;
use crate::timing::{Meter, SectionTiming};
use crate::verify::ReferenceInfo;

/// A song's status in reports and the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
    /// Stopped by Ctrl-C or SIGTERM, mid-render or before it started:
    /// nothing of it written.
    Interrupted,
    /// Another process holds the song's lock (SPEC §11): not rendered,
    /// nothing of it touched, and not ok (exit 1).
    Busy,
}

/// One error as reported.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReportError {
    pub stage: String,
    pub stem: Option<String>,
    pub message: String,
}

impl From<&SongError> for ReportError {
    fn from(e: &SongError) -> Self {
        ReportError {
            stage: format!("{:?}", e.stage).to_lowercase(),
            stem: e.stem.clone(),
            message: e.error.to_string(),
        }
    }
}

/// `OUT/<id>/report.json` (SPEC §5). It holds no wall-clock figures, so it
/// (and the archive it goes into) is the same bytes for the same song;
/// timings are in `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report<'a> {
    pub song: &'a str,
    /// The song's free-text title, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'a str>,
    pub status: Status,
    /// Digest of the resolved song settings; a rerun with the same digest
    /// is skipped.
    pub digest: &'a str,
    pub sample_rate: u32,
    pub format: &'static str,
    pub channels: u16,
    pub target_frames: u64,
    pub duration: f64,
    pub bpm: f64,
    /// The time signature the sections' bars count in (`"4/4"`).
    pub meter: Meter,
    pub timing: &'a [SectionTiming],
    pub reference: Option<&'a ReferenceInfo>,
    pub stems: &'a [StemOutcome],
    pub master: Option<&'a MasterOutcome>,
    /// The delivery versions (SPEC §10); left out when the song has none,
    /// so such a song's report is what it always was.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub deliver: &'a [DeliverOutcome],
    pub archive: Option<&'a str>,
    pub warnings: &'a [String],
    pub errors: Vec<ReportError>,
}

impl<'a> Report<'a> {
    /// The report of a song that rendered (or failed with `error`).
    pub fn new(
        song: &'a SongPlan,
        reference: Option<&'a ReferenceInfo>,
        outcome: Option<&'a SongOutcome>,
        error: Option<&SongError>,
        warnings: &'a [String],
    ) -> Report<'a> {
        Report {
            song: &song.id,
            title: song.title.as_deref(),
            status: if error.is_some() {
                Status::Failed
            } else {
                Status::Ok
            },
            digest: &song.fingerprint,
            sample_rate: song.spec.sample_rate,
            format: song.spec.format.name(),
            channels: song.spec.channels,
            target_frames: song.target_frames_or_zero().0,
            duration: song.duration.unwrap_or(0.0),
            bpm: song.bpm,
            meter: song.meter,
            timing: &song.timing.sections,
            reference,
            stems: outcome.map_or(&[], |o| &o.stems),
            master: outcome.map(|o| &o.master),
            deliver: outcome.map_or(&[], |o| &o.deliver),
            archive: song.archive.as_deref().filter(|_| error.is_none()),
            warnings,
            errors: error.map(ReportError::from).into_iter().collect(),
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Plain structs with string keys: serialising cannot fail.
        let mut s = serde_json::to_string_pretty(self).expect("report is plain data");
        s.push('\n');
        s
    }
}

/// The fields of a previous report that decide whether to skip a song.
#[derive(Deserialize)]
pub struct PreviousReport {
    pub status: Status,
    pub digest: String,
    /// The master's figures, kept in the summary of a run that skips the song.
    #[serde(default)]
    pub master: Option<PreviousMaster>,
}

/// The master figures of a previous report.
#[derive(Deserialize)]
pub struct PreviousMaster {
    pub lufs: Option<f64>,
    pub true_peak_db: Option<f64>,
}

/// One song's line in `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SongSummary {
    pub id: String,
    pub status: Status,
    pub seconds: f64,
    /// Target duration of the song in seconds.
    pub duration: f64,
    /// The master's integrated loudness and true peak, when rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lufs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_peak_db: Option<f64>,
    pub errors: Vec<String>,
}

/// `OUT/summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub songs: Vec<SongSummary>,
}

impl Summary {
    /// A table for terminals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<24} {:<8} {:>10} {:>9} {:>9} {:>7} {:>7}  {}\n",
            "song", "status", "duration", "seconds", "realtime", "LUFS", "dBTP", "reason"
        );
        for s in &self.songs {
            let status = match s.status {
                Status::Ok => "ok",
                Status::Failed => "FAILED",
                Status::Skipped => "skipped",
                Status::Interrupted => "interrupted",
                Status::Busy => "BUSY",
            };
            let realtime = if s.seconds > 0.0 && s.status == Status::Ok {
                format!("{:.1}x", s.duration / s.seconds)
            } else {
                "-".into()
            };
            out.push_str(&format!(
                "{:<24} {:<8} {:>9.1}s {:>8.2}s {:>9} {:>7} {:>7}  {}\n",
                s.id,
                status,
                s.duration,
                s.seconds,
                realtime,
                s.lufs.map_or("-".into(), |v| format!("{v:.1}")),
                s.true_peak_db.map_or("-".into(), |v| format!("{v:.1}")),
                s.errors.first().map(String::as_str).unwrap_or("")
            ));
        }
        out
    }
}

/// Bytes a song's outputs take: every stem, the master and the delivery
/// versions as WAV, and the archive's copy of them when it stores audio
/// uncompressed.
pub fn estimate_bytes(song: &SongPlan) -> u64 {
    let target = song.target_frames().0;
    let bytes = |spec: crate::types::StreamSpec, frames: u64| {
        44 + frames * spec.channels as u64 * spec.format.bits() as u64 / 8
    };
    let versions: u64 = song
        .deliver
        .iter()
        .map(|v| {
            let frames = target * v.spec.sample_rate as u64 / song.spec.sample_rate as u64 + 1;
            bytes(v.spec, frames)
        })
        .sum();
    let wavs = bytes(song.spec, target) * (song.stems.len() as u64 + 1) + versions;
    if song.archive.is_some() {
        2 * wavs
    } else {
        wavs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialise_as_the_spec_names_them() {
        for (status, name) in [
            (Status::Ok, "\"ok\""),
            (Status::Failed, "\"failed\""),
            (Status::Skipped, "\"skipped\""),
            (Status::Interrupted, "\"interrupted\""),
            (Status::Busy, "\"busy\""),
        ] {
            assert_eq!(serde_json::to_string(&status).unwrap(), name);
            assert_eq!(serde_json::from_str::<Status>(name).unwrap(), status);
        }
    }
}
