//! One song: lock it, decide whether to keep what is there, render into a
//! staging folder and publish it, or record why not.
//!
//! Why the order lock -> inspect -> fingerprint: a busy song or a folder
//! stemflow did not write is reported before anything is read or written,
//! and the fingerprint (which hashes every input) is computed only for songs
//! that may render. What a failure leaves is decided here: an existing good
//! output is never replaced by a failure (SPEC §11), a song with no previous
//! output gets a folder holding only its failed report (SPEC §5).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{Shared, resume};
use crate::error::{SongError, Stage, StageError};
use crate::output::{Report, SongSummary, Status, archive};
use crate::pipeline::{self, RenderOptions, SongOutcome};
use crate::plan::SongPlan;
use crate::progress::SongBar;
use crate::store::{Existing, OutDir, SongLock, StoreError};
use crate::types::Frames;
use crate::verify::{self, Loudness, ReferenceInfo};

/// A song's summary line under construction.
struct Line<'a> {
    song: &'a SongPlan,
    start: Instant,
}

impl Line<'_> {
    fn done(&self, status: Status, errors: Vec<String>) -> SongSummary {
        SongSummary {
            id: self.song.id.clone(),
            status,
            seconds: self.start.elapsed().as_secs_f64(),
            duration: self.song.duration.unwrap_or(0.0),
            lufs: None,
            true_peak_db: None,
            errors,
        }
    }
}

/// Locks the song, skips it if what is in OUT is a complete render of the
/// same inputs, otherwise renders and publishes it. Never panics on bad
/// input; never touches a folder stemflow did not write.
pub(super) fn render_one(song: &SongPlan, shared: &Shared) -> SongSummary {
    let line = Line {
        song,
        start: Instant::now(),
    };
    let out = shared.out;
    let lock = match out.try_lock(&song.id) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            let why = format!(
                "song {:?}: busy: another stemflow process is rendering it; left untouched",
                song.id
            );
            return line.done(Status::Busy, vec![why]);
        }
        Err(e) => return line.done(Status::Failed, vec![e.to_string()]),
    };
    let existing = match out.inspect(&song.id) {
        Ok(Existing::NotOurs { why }) => {
            let e = StoreError::NotOurs {
                path: out.song_path(&song.id),
                id: song.id.clone(),
                why,
            };
            return line.done(Status::Failed, vec![e.to_string()]);
        }
        Ok(existing) => existing,
        Err(e) => return line.done(Status::Failed, vec![e.to_string()]),
    };
    let fingerprint = resume::fingerprint(song, shared.render.threads);
    if let Existing::Ours { marker } = &existing
        && !shared.opts.force
        && resume::up_to_date(out, &song.id, marker, &fingerprint)
    {
        // The summary keeps the loudness the kept render measured.
        let previous = resume::previous_status(&out.song_path(&song.id).join("report.json"));
        let master = previous.and_then(|p| p.master);
        return SongSummary {
            lufs: master.as_ref().and_then(|m| m.lufs),
            true_peak_db: master.as_ref().and_then(|m| m.true_peak_db),
            ..line.done(Status::Skipped, vec![])
        };
    }
    let mut song = song.clone();
    song.fingerprint = fingerprint;
    let summary = render_locked(&mut song, &lock, &existing, shared);
    SongSummary {
        seconds: line.start.elapsed().as_secs_f64(),
        duration: song.duration.unwrap_or(0.0),
        ..summary
    }
}

/// Renders the locked song into a staging folder and publishes it; on
/// failure, leaves the previous output alone (see [`publish_failure`]).
fn render_locked(
    song: &mut SongPlan,
    lock: &SongLock,
    existing: &Existing,
    shared: &Shared,
) -> SongSummary {
    let out = shared.out;
    let start = Instant::now();
    let mut warnings = Vec::new();
    let bar = shared.progress.song(&song.id, song.target_frames_or_zero());
    let staging = match out.stage(&song.id, lock) {
        Ok(s) => s,
        Err(e) => return Line { song, start }.done(Status::Failed, vec![e.to_string()]),
    };
    let result = resolve_reference(song, &mut warnings, shared.interrupt)
        .and_then(|reference| check_space(song, out.root()).map(|_| reference))
        .map_err(Failed::from)
        .and_then(|reference| {
            let ctx = RenderCtx {
                song,
                reference: reference.as_ref(),
                tmp: staging.path(),
                render: shared.render,
                interrupt: shared.interrupt,
                bar: &bar,
            };
            ctx.render(&mut warnings)
        });
    let line = Line { song, start };
    match result {
        Ok(loudness) => match staging.publish(&song.fingerprint) {
            Ok(_) => SongSummary {
                lufs: loudness.lufs,
                true_peak_db: loudness.true_peak_db,
                ..line.done(Status::Ok, vec![])
            },
            Err(e) => line.done(Status::Failed, vec![e.to_string()]),
        },
        // An interrupted song leaves what was there before, untouched; the
        // staging folder goes with `staging`.
        Err(Failed { error: e, .. }) if matches!(e.error, StageError::Cancelled) => {
            line.done(Status::Interrupted, vec!["interrupted".to_string()])
        }
        Err(Failed { error, report }) => {
            let mut errors = vec![error.to_string()];
            // Only a song that failed its checks is whole: anything else
            // stopped part-way, and nothing partial is kept.
            if shared.opts.keep_failed && report.is_some() {
                if let Err(why) = staging.keep_failed() {
                    errors.push(why.to_string());
                }
            } else {
                drop(staging);
            }
            let report = report.unwrap_or_else(|| {
                Report::new(song, None, None, Some(&error), &warnings).to_json()
            });
            if let Err(why) = publish_failure(out, lock, song, existing, &report) {
                errors.push(why.to_string());
            }
            line.done(Status::Failed, errors)
        }
    }
}

/// Why a song did not render: its error, and, when it was rendered whole
/// but failed its checks, its report (with the figures that failed).
struct Failed {
    error: SongError,
    report: Option<String>,
}

impl From<SongError> for Failed {
    fn from(error: SongError) -> Failed {
        Failed {
            error,
            report: None,
        }
    }
}

/// Records a failed song. Where `OUT/<id>` is absent, or holds an earlier
/// failure of ours, it becomes a folder with only `report.json` (SPEC §5);
/// a previous ok output, or a folder whose marker cannot vouch for it, is
/// left byte-identical (SPEC §11): the failure is then only in the summary,
/// on stderr, in the exit code, and in `OUT/.stemflow/failed/<id>.json`.
fn publish_failure(
    out: &OutDir,
    lock: &SongLock,
    song: &SongPlan,
    existing: &Existing,
    report: &str,
) -> Result<(), StoreError> {
    record_failure(&out.failed_dir().join(format!("{}.json", song.id)), report);
    let replace = match existing {
        Existing::Absent => true,
        Existing::Ours { .. } => {
            resume::previous_status(&out.song_path(&song.id).join("report.json"))
                .is_some_and(|r| r.status == Status::Failed)
        }
        _ => false,
    };
    if !replace {
        return Ok(());
    }
    let staging = out.stage(&song.id, lock)?;
    let path = staging.path().join("report.json");
    // Into the staging folder: published only once complete, so a full disk
    // leaves the old folder (or none), never a 0-byte report.
    std::fs::write(&path, report).map_err(|e| StoreError::io(&path, Some(&song.id), e))?;
    staging.publish(&song.fingerprint).map(|_| ())
}

/// Refuses a song whose outputs cannot fit on OUT's filesystem.
fn check_space(song: &SongPlan, out: &Path) -> Result<(), SongError> {
    let need = crate::output::estimate_bytes(song);
    match crate::io::free_bytes(out) {
        Some(free) if free < need => Err(SongError::new(
            &song.id,
            Stage::Output,
            StageError::Invalid(format!(
                "{}: needs about {} MB for its outputs but only {} MB are free",
                out.display(),
                need.div_ceil(1_000_000),
                free / 1_000_000
            )),
        )),
        _ => Ok(()),
    }
}

/// Best effort: writes the failed report to `path` without following a
/// symbolic link or blocking on a FIFO someone put there (both are removed
/// first: `.stemflow/failed/` is ours).
fn record_failure(path: &Path, report: &str) {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let _ = std::fs::File::create_new(path).and_then(|mut f| f.write_all(report.as_bytes()));
}

/// Verifies the song's reference, if any, and takes the target duration
/// from it when the manifest gives none.
fn resolve_reference(
    song: &mut SongPlan,
    warnings: &mut Vec<String>,
    interrupt: &AtomicBool,
) -> Result<Option<ReferenceInfo>, SongError> {
    let Some(plan) = &song.reference else {
        warnings.extend(plan_warnings(song));
        return Ok(None);
    };
    let fail = |song: &SongPlan, error| SongError::new(&song.id, Stage::Reference, error);
    // Checked per packet, so Ctrl-C stops a long reference within a second.
    let info = verify::check_reference_until(plan, interrupt).map_err(|e| fail(song, e))?;
    match song.duration {
        None => {
            song.duration = Some(info.duration);
            if let Err(e) = song.timing.check_duration(info.duration) {
                return Err(fail(song, StageError::Invalid(e.to_string())));
            }
        }
        Some(target) if (info.duration - target).abs() > song.verify.duration_tolerance => {
            warnings.push(format!(
                "reference lasts {:.3} s, {:.3} s from the target (tolerance {} s)",
                info.duration,
                (info.duration - target).abs(),
                song.verify.duration_tolerance
            ));
        }
        Some(_) => {}
    }
    warnings.extend(plan_warnings(song));
    Ok(Some(info))
}

/// Everything one song's render needs to know.
struct RenderCtx<'a> {
    song: &'a SongPlan,
    reference: Option<&'a ReferenceInfo>,
    tmp: &'a Path,
    render: RenderOptions,
    interrupt: &'a AtomicBool,
    bar: &'a SongBar,
}

impl RenderCtx<'_> {
    /// Renders into the staging folder and writes report and archive; the
    /// caller publishes the folder. A song failing its checks gets its
    /// report (status failed, every figure measured) and no archive.
    fn render(&self, warnings: &mut Vec<String>) -> Result<Loudness, Failed> {
        let (song, tmp) = (self.song, self.tmp);
        let fail = |stage, error| SongError::new(&song.id, stage, error);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| fail(Stage::Output, StageError::io(path, e))
        };
        let outcome: SongOutcome =
            pipeline::render_song(song, tmp, self.render, self.interrupt, &|done: Frames| {
                self.bar.frames(done)
            })?;
        warnings.extend(source_warnings(song, &outcome));
        let failure = outcome.failure(&song.id);
        let report = Report::new(
            song,
            self.reference,
            Some(&outcome),
            failure.as_ref(),
            warnings,
        );
        let overview_path = tmp.join("overview.svg");
        std::fs::write(&overview_path, crate::output::overview::svg(song, &outcome))
            .map_err(io(&overview_path))?;
        let report_path = tmp.join("report.json");
        let report = report.to_json();
        std::fs::write(&report_path, &report).map_err(io(&report_path))?;
        if let Some(error) = failure {
            let report = Some(report);
            return Err(Failed { error, report });
        }
        if let Some(name) = &song.archive {
            self.archive(name, &outcome)?;
        }
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(fail(Stage::Output, StageError::Cancelled).into());
        }
        Ok(outcome.master.loudness)
    }

    /// Writes the archive of every file so far; without `keep_files`, the
    /// audio then lives only in the archive.
    fn archive(&self, name: &str, outcome: &SongOutcome) -> Result<(), SongError> {
        let (song, tmp) = (self.song, self.tmp);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| SongError::new(&song.id, Stage::Output, StageError::io(path, e))
        };
        self.bar.stage("archive");
        let mut entries: Vec<(String, PathBuf)> = outcome
            .stems
            .iter()
            .map(|s| (s.file.clone(), tmp.join(&s.file)))
            .collect();
        let versions = outcome.deliver.iter().map(|d| d.file.as_str());
        for file in versions.chain([outcome.master.file.as_str(), "overview.svg", "report.json"]) {
            entries.push((file.into(), tmp.join(file)));
        }
        let refs: Vec<(String, &Path)> = entries
            .iter()
            .map(|(n, p)| (n.clone(), p.as_path()))
            .collect();
        archive::write(&tmp.join(name), &refs, song.compression)
            .map_err(|e| SongError::new(&song.id, Stage::Archive, e))?;
        if !song.keep_files {
            let stems = tmp.join("stems");
            std::fs::remove_dir_all(&stems).map_err(io(&stems))?;
            let master = tmp.join(&outcome.master.file);
            std::fs::remove_file(&master).map_err(io(&master))?;
            let versions = tmp.join("deliver");
            if !outcome.deliver.is_empty() {
                std::fs::remove_dir_all(&versions).map_err(io(&versions))?;
            }
        }
        Ok(())
    }
}

/// Warnings known from the plan: an unassigned tail after the sections.
pub fn plan_warnings(song: &SongPlan) -> Vec<String> {
    let Some(duration) = song.duration else {
        return vec![];
    };
    match song.timing.check_duration(duration) {
        Ok(Some(tail)) => vec![tail],
        _ => vec![],
    }
}

/// Sources further from the target than the tolerance. A stem restarted
/// per region is aligned to its region, not the song: its report (and so
/// this check) describes its first region.
fn source_warnings(song: &SongPlan, outcome: &SongOutcome) -> Vec<String> {
    let rate = song.spec.sample_rate;
    outcome
        .stems
        .iter()
        .filter_map(|stem| {
            let target = match &stem.placement {
                Some(p) if p.restart == crate::plan::Restart::Region => p
                    .regions
                    .first()
                    .map_or(0.0, |[s, e]| Frames(e - s).seconds(rate)),
                _ => song.seconds(),
            };
            let off = Frames(stem.align.source_frames).seconds(rate) - target;
            (off.abs() > song.verify.duration_tolerance).then(|| {
                format!(
                    "stem {:?}: source is {:.3} s {} than the target (tolerance {} s)",
                    stem.name,
                    off.abs(),
                    if off < 0.0 { "shorter" } else { "longer" },
                    song.verify.duration_tolerance
                )
            })
        })
        .collect()
}
