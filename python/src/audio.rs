//! `loudness` and `align` on numpy arrays, streaming: the array is read in
//! place, one block of frames at a time, by the crate's own meter and
//! aligner — no copy of the input, the same figures and samples as the
//! command line, and the GIL released while they run.
//!
//! The aligner owns its source as a `Box<dyn Source>` (`'static`), but a
//! numpy array is only borrowed for the call. [`ArraySource`] therefore
//! reads through a raw view whose validity this module guarantees: the
//! aligner that owns it is created and dropped inside one function that
//! holds the borrow (see `aligned`).

use numpy::ndarray::{ArrayView2, ArrayViewD, Axis, Ix2, RawArrayView};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use stemflow::align::{AlignSettings, Aligner, Grid};
use stemflow::error::StageError;
use stemflow::plan::AlignMode;
use stemflow::source::Source;
use stemflow::timing::Meter;
use stemflow::types::{Block, Frames};
use stemflow::verify::{Loudness, LoudnessMeter};

use crate::manifest::to_python;

/// Frames per block read from the array (never changes a result).
const BLOCK_SIZE: usize = 4096;
/// Seam crossfade and truncation fade defaults, as `stemflow align` uses.
const CROSSFADE_MS: f64 = 50.0;
const FADE_MS: f64 = 10.0;

/// A sample type numpy hands us.
trait Sample: Copy + Send + Sync + 'static {
    fn to_f32(self) -> f32;
}

impl Sample for f32 {
    fn to_f32(self) -> f32 {
        self
    }
}

impl Sample for f64 {
    fn to_f32(self) -> f32 {
        self as f32
    }
}

/// A float32 or float64 array, borrowed read-only.
enum Input<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
}

impl<'py> Input<'py> {
    fn extract(array: &Bound<'py, PyAny>) -> PyResult<Input<'py>> {
        if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'py, f32>>() {
            Ok(Input::F32(a))
        } else if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'py, f64>>() {
            Ok(Input::F64(a))
        } else {
            Err(PyTypeError::new_err(
                "array must be a numpy array of float32 or float64 samples",
            ))
        }
    }

    /// Dimensions of the array: 1 (mono) or 2 (frames × channels).
    fn ndim(&self) -> usize {
        match self {
            Input::F32(a) => a.ndim(),
            Input::F64(a) => a.ndim(),
        }
    }
}

/// The array as frames × channels (1-D is mono), 1 or 2 channels.
fn frames_view<T: Sample>(a: ArrayViewD<'_, T>) -> PyResult<ArrayView2<'_, T>> {
    let a = match a.ndim() {
        1 => a.insert_axis(Axis(1)),
        2 => a,
        n => {
            return Err(PyValueError::new_err(format!(
                "array must be 1-D (mono) or 2-D (frames × channels), got {n} dimensions"
            )));
        }
    };
    let a = a
        .into_dimensionality::<Ix2>()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    if !(1..=2).contains(&a.ncols()) {
        return Err(PyValueError::new_err(format!(
            "array has {} channels; only mono and stereo are supported",
            a.ncols()
        )));
    }
    Ok(a)
}

fn check_rate(sample_rate: u32) -> PyResult<()> {
    if !(1000..=768_000).contains(&sample_rate) {
        return Err(PyValueError::new_err(format!(
            "sample_rate must be 1000..768000, got {sample_rate}"
        )));
    }
    Ok(())
}

/// Copies frames `chunk` into `block` as f32.
fn fill<T: Sample>(block: &mut Block, chunk: ArrayView2<'_, T>) {
    block.set_frames(chunk.nrows());
    for (frame, row) in block.frames_mut().zip(chunk.rows()) {
        for (s, v) in frame.iter_mut().zip(row) {
            *s = v.to_f32();
        }
    }
}

/// EBU R128 figures of a signal: integrated loudness (LUFS), loudness range
/// (LU) and true peak (dBTP); None where undefined (silence). `array`:
/// float32/float64, 1-D (mono) or frames × channels (1 or 2 channels).
#[pyfunction]
pub fn loudness<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    sample_rate: u32,
) -> PyResult<Bound<'py, PyAny>> {
    check_rate(sample_rate)?;
    let figures = match Input::extract(array)? {
        Input::F32(a) => {
            let v = frames_view(a.as_array())?;
            py.detach(|| measure(v, sample_rate))
        }
        Input::F64(a) => {
            let v = frames_view(a.as_array())?;
            py.detach(|| measure(v, sample_rate))
        }
    };
    to_python(
        py,
        &serde_json::json!({
            "integrated": figures.lufs,
            "range": figures.loudness_range,
            "true_peak": figures.true_peak_db,
        }),
    )
}

/// Feeds the array to the meter block by block.
fn measure<T: Sample>(view: ArrayView2<'_, T>, sample_rate: u32) -> Loudness {
    let channels = view.ncols() as u16;
    let mut meter = LoudnessMeter::new(channels, sample_rate);
    let mut block = Block::new(channels, BLOCK_SIZE);
    for chunk in view.axis_chunks_iter(Axis(0), BLOCK_SIZE) {
        fill(&mut block, chunk);
        meter.update(&block);
    }
    meter.loudness()
}

/// A borrowed frames × channels array as a [`Source`].
struct ArraySource<T: Sample> {
    /// Valid for as long as the aligner that owns this source lives (see
    /// `aligned`), and only read.
    raw: RawArrayView<T, Ix2>,
    pos: usize,
}

// SAFETY: the view is only read, and `T: Sync`, so reading it from another
// thread is as safe as sharing `&[T]`.
unsafe impl<T: Sample> Send for ArraySource<T> {}

impl<T: Sample> Source for ArraySource<T> {
    fn len(&self) -> Frames {
        Frames(self.raw.nrows() as u64)
    }

    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        self.pos = (pos.0 as usize).min(self.raw.nrows());
        Ok(())
    }

    fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let n = (self.raw.nrows() - self.pos).min(block.capacity());
        // SAFETY: `aligned` keeps the array borrowed while this source lives.
        let view = unsafe { self.raw.deref_into_view() };
        fill(
            block,
            view.slice_axis(Axis(0), (self.pos..self.pos + n).into()),
        );
        self.pos += n;
        Ok(n)
    }
}

/// Streams `view` through an aligner; returns the interleaved output.
fn aligned<T: Sample>(view: ArrayView2<'_, T>, s: AlignSettings) -> Result<Vec<f32>, StageError> {
    let channels = view.ncols() as u16;
    // The aligner, and with it the source's raw view, is dropped before this
    // function returns, while `view` still borrows the array.
    let source = ArraySource {
        raw: view.raw_view(),
        pos: 0,
    };
    let mut aligner = Aligner::new(Box::new(source), channels, BLOCK_SIZE, s)?;
    let mut out = Vec::with_capacity(s.target.0 as usize * channels as usize);
    let mut block = Block::new(channels, BLOCK_SIZE);
    while aligner.read(&mut block)? > 0 {
        out.extend_from_slice(block.samples());
    }
    Ok(out)
}

/// Brings a signal to exactly `duration` seconds (`round(duration ×
/// sample_rate)` frames) with the crate's aligner — the samples
/// `stemflow align --format float` writes. `strategy`: auto, zero-pad,
/// loop, crossfade, truncate or none; options: `crossfade_ms` (50),
/// `fade_ms` (10), and `bpm` with optional `meter` ("4/4") and `loop_bars`
/// to loop on the bar grid (`align --bpm --meter --loop-bars`). Returns
/// float32 with the input's shape.
#[pyfunction]
#[pyo3(signature = (array, sample_rate, duration, strategy="auto", **options))]
pub fn align<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    sample_rate: u32,
    duration: f64,
    strategy: &str,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    check_rate(sample_rate)?;
    let settings = settings(sample_rate, duration, strategy, options)?;
    let input = Input::extract(array)?;
    let mono = input.ndim() == 1;
    let out = match &input {
        Input::F32(a) => {
            let v = frames_view(a.as_array())?;
            py.detach(|| aligned(v, settings))
        }
        Input::F64(a) => {
            let v = frames_view(a.as_array())?;
            py.detach(|| aligned(v, settings))
        }
    }
    .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let frames = settings.target.0 as usize;
    if mono {
        return Ok(PyArray1::from_vec(py, out).into_any());
    }
    let channels = out.len() / frames.max(1);
    let array = numpy::ndarray::Array2::from_shape_vec((frames, channels), out)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(array.into_pyarray(py).into_any())
}

/// The aligner's settings from `align`'s arguments.
fn settings(
    sample_rate: u32,
    duration: f64,
    strategy: &str,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<AlignSettings> {
    if !(duration.is_finite() && duration > 0.0 && duration <= stemflow::manifest::MAX_DURATION_S) {
        return Err(PyValueError::new_err(format!(
            "duration must be > 0 s (at most 24 h), got {duration}"
        )));
    }
    let mode: AlignMode = serde_json::from_value(serde_json::Value::String(strategy.into()))
        .map_err(|_| {
            PyValueError::new_err(format!(
                "strategy {strategy:?}: expected auto, zero-pad, loop, crossfade, truncate or none"
            ))
        })?;
    let mut s = AlignSettings {
        mode,
        rhythmic: false,
        target: Frames::from_seconds(duration, sample_rate),
        sample_rate,
        crossfade_ms: CROSSFADE_MS,
        grid: None,
        fade_ms: FADE_MS,
    };
    let mut grid = GridOptions::default();
    for (key, value) in options.into_iter().flat_map(|d| d.iter()) {
        let key: String = key.extract()?;
        match key.as_str() {
            "crossfade_ms" => s.crossfade_ms = milliseconds(&key, &value)?,
            "fade_ms" => s.fade_ms = milliseconds(&key, &value)?,
            "bpm" => grid.bpm = Some(value.extract()?),
            "meter" => grid.meter = Some(value.extract()?),
            "loop_bars" => grid.loop_bars = Some(value.extract()?),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "align() got an unexpected option {key:?} \
                     (crossfade_ms, fade_ms, bpm, meter, loop_bars)"
                )));
            }
        }
    }
    s.grid = grid.build()?;
    s.rhythmic = s.grid.is_some();
    Ok(s)
}

fn milliseconds(key: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let ms: f64 = value.extract()?;
    if !(ms.is_finite() && ms >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "{key} must be >= 0, got {ms}"
        )));
    }
    Ok(ms)
}

/// `bpm`, `meter` and `loop_bars`: the bar grid a loop locks to, as
/// `stemflow align --bpm --meter --loop-bars` takes it.
#[derive(Default)]
struct GridOptions {
    bpm: Option<f64>,
    meter: Option<String>,
    loop_bars: Option<u32>,
}

impl GridOptions {
    fn build(self) -> PyResult<Option<Grid>> {
        let Some(bpm) = self.bpm else {
            if self.loop_bars.is_some() || self.meter.is_some() {
                return Err(PyValueError::new_err("meter and loop_bars need bpm"));
            }
            return Ok(None);
        };
        if !(bpm.is_finite() && bpm > 0.0 && bpm <= 1000.0) {
            return Err(PyValueError::new_err(format!(
                "bpm must be > 0 and at most 1000, got {bpm}"
            )));
        }
        if self.loop_bars == Some(0) {
            return Err(PyValueError::new_err("loop_bars must be at least 1"));
        }
        let meter = match self.meter {
            Some(m) => m.parse::<Meter>().map_err(PyValueError::new_err)?,
            None => Meter::default(),
        };
        Ok(Some(Grid {
            bar_seconds: meter.bar_seconds(bpm),
            loop_bars: self.loop_bars,
        }))
    }
}
