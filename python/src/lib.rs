//! `stemflow._stemflow`: the Python binding of the stemflow crate.
//!
//! A thin layer over the crate — its public API (manifest, render, check,
//! timing) and, through the `internals` feature, the loudness meter and
//! the aligner that the array functions drive — so Python gets the same
//! bytes and figures as the command line. What this
//! layer adds is only what Python needs: manifests from dicts and strings,
//! the GIL released while audio is processed, Ctrl-C turned into the
//! batch's interrupt flag, and numpy arrays read in place as a `Source`.
//!
//! `manifest` turns Python arguments into a manifest and its errors into
//! `ManifestError`; `render` runs and inspects manifests; `audio` streams numpy
//! arrays through the meter and the aligner.

mod audio;
mod manifest;
mod render;

use pyo3::prelude::*;

pub use manifest::ManifestError;

/// The extension module; `stemflow/__init__.py` re-exports it.
#[pymodule]
fn _stemflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ManifestError", m.py().get_type::<ManifestError>())?;
    m.add("DEMO_MANIFEST", stemflow::DEMO_MANIFEST)?;
    m.add_function(wrap_pyfunction!(render::render, m)?)?;
    m.add_function(wrap_pyfunction!(render::check, m)?)?;
    m.add_function(wrap_pyfunction!(render::timing, m)?)?;
    m.add_function(wrap_pyfunction!(audio::loudness, m)?)?;
    m.add_function(wrap_pyfunction!(audio::align, m)?)?;
    Ok(())
}
