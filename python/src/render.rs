//! `render`, `check` and `timing`: the batch runner and the plan, as the
//! command's `render --json`, `check` and `timing --json` give them.
//!
//! A render runs on its own thread with the GIL released, so other Python
//! threads (and other renders) run meanwhile. The calling thread wakes every
//! 100 ms to let Python handle signals: Ctrl-C sets the batch's interrupt
//! flag — exactly what the command line's SIGINT handler does — and the
//! binding waits for the batch to stop (it removes its temporary folders)
//! before raising `KeyboardInterrupt`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use serde_json::json;
use stemflow::{Manifest, Meter, RenderError, RenderOptions, Section, Summary, Timing};

use crate::manifest::{manifest_from, to_python};

/// How often a waiting render lets Python run its signal handlers.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Renders a manifest into `out` and returns the summary (as
/// `stemflow render --json` prints it). `manifest`: None (the built-in
/// demo), a dict, TOML text or a path. Failed songs are in the summary;
/// an invalid manifest raises ManifestError.
#[pyfunction]
#[pyo3(signature = (manifest=None, out="stemflow-out".into(), jobs=None, shard=None, force=false, progress=false))]
pub fn render<'py>(
    py: Python<'py>,
    manifest: Option<&Bound<'py, PyAny>>,
    out: PathBuf,
    jobs: Option<usize>,
    shard: Option<&Bound<'py, PyAny>>,
    force: bool,
    progress: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let manifest = manifest_from(py, manifest)?;
    let mut opts = RenderOptions::default();
    match jobs {
        Some(0) => return Err(PyValueError::new_err("jobs must be at least 1")),
        Some(j) => opts.jobs = j,
        None => {}
    }
    opts.shard = shard.map(parse_shard).transpose()?;
    opts.force = force;
    opts.progress = progress;
    let summary = run_interruptible(py, &manifest, &out, &opts)?;
    to_python(py, &summary)
}

/// Runs the batch on a helper thread, the GIL released, polling Python's
/// signal handlers while it runs.
fn run_interruptible(
    py: Python<'_>,
    manifest: &Manifest,
    out: &Path,
    opts: &RenderOptions,
) -> PyResult<Summary> {
    let interrupt = AtomicBool::new(false);
    let mut pending: Option<PyErr> = None;
    let result = std::thread::scope(|scope| {
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
        let interrupt = &interrupt;
        let worker = scope.spawn(move || {
            let r = stemflow::render_until(manifest, out, opts, interrupt);
            let _ = done_tx.send(());
            r
        });
        loop {
            let finished = py.detach(|| done_rx.recv_timeout(SIGNAL_POLL).is_ok());
            if finished || worker.is_finished() {
                break;
            }
            if let Err(e) = py.check_signals() {
                // Stop the batch; keep waiting so it cleans up first.
                interrupt.store(true, Ordering::SeqCst);
                pending.get_or_insert(e);
            }
        }
        py.detach(|| worker.join())
    });
    if let Some(e) = pending {
        return Err(e);
    }
    let summary = result
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("the render thread panicked"))?;
    summary.map_err(|e| match e {
        RenderError::Options(m) => PyValueError::new_err(m),
        e => PyOSError::new_err(e.to_string()),
    })
}

/// `(k, n)` or `"K/N"`: render only songs whose index i has i % n == k.
fn parse_shard(shard: &Bound<'_, PyAny>) -> PyResult<(usize, usize)> {
    let (k, n) = if let Ok(text) = shard.extract::<String>() {
        let bad = || PyValueError::new_err(format!("shard {text:?}: expected \"K/N\""));
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        (k, n)
    } else {
        shard.extract::<(usize, usize)>()?
    };
    if n == 0 || k >= n {
        return Err(PyValueError::new_err(format!(
            "shard needs 0 <= K < N, got {k}/{n}"
        )));
    }
    Ok((k, n))
}

/// Validates a manifest without rendering: each song's plan, its stems,
/// its timing and its warnings (what `stemflow check` prints).
#[pyfunction]
pub fn check<'py>(py: Python<'py>, manifest: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let manifest = manifest_from(py, Some(manifest))?;
    to_python(py, &json!({ "songs": manifest.check() }))
}

/// Lays sections end to end at `bpm`: each section's start and end in
/// beats, seconds and frames (what `stemflow timing --json` gives).
/// `sections`: a list of (name, beats) pairs or a dict {name: beats}.
/// `meter` ("4/4", "6/8", ...) is validated as the manifest's; beats count
/// the meter's note value, so it moves no position.
#[pyfunction]
#[pyo3(signature = (bpm, sections, meter="4/4", sample_rate=48000))]
pub fn timing<'py>(
    py: Python<'py>,
    bpm: f64,
    sections: &Bound<'py, PyAny>,
    meter: &str,
    sample_rate: u32,
) -> PyResult<Bound<'py, PyAny>> {
    if !(bpm.is_finite() && bpm > 0.0) {
        return Err(PyValueError::new_err(format!("bpm must be > 0, got {bpm}")));
    }
    if !(8000..=384_000).contains(&sample_rate) {
        return Err(PyValueError::new_err(format!(
            "sample_rate must be 8000..384000, got {sample_rate}"
        )));
    }
    meter.parse::<Meter>().map_err(PyValueError::new_err)?;
    let t = Timing::new(bpm, sample_rate, &parse_sections(sections)?);
    to_python(py, &t.sections)
}

/// Sections from a list of pairs or a dict.
fn parse_sections(sections: &Bound<'_, PyAny>) -> PyResult<Vec<Section>> {
    let pairs: Vec<(String, i64)> = if let Ok(d) = sections.cast::<PyDict>() {
        d.iter()
            .map(|(k, v)| Ok((k.extract()?, v.extract()?)))
            .collect::<PyResult<_>>()?
    } else if sections.is_instance_of::<PyList>() || sections.is_instance_of::<PyTuple>() {
        sections.extract()?
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "sections must be a list of (name, beats) or a dict {name: beats}",
        ));
    };
    pairs
        .into_iter()
        .map(|(name, beats)| {
            if name.trim().is_empty() || !(1..=u32::MAX as i64).contains(&beats) {
                return Err(PyValueError::new_err(format!(
                    "section {name:?}: need a name and a whole number of beats > 0, got {beats}"
                )));
            }
            Ok(Section {
                name,
                beats: beats as u32,
            })
        })
        .collect()
}
