//! Manifests from Python: a path, a dict or TOML text becomes a validated
//! plan through the crate's own parser, so every rule and every error
//! message is the command line's. Manifest errors (exit 2 on the command
//! line) become `stemflow.ManifestError` with the error's fields as
//! attributes, so scripts can point at the line, song, stem and key.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use stemflow::Manifest;

pyo3::create_exception!(
    stemflow,
    ManifestError,
    PyValueError,
    "An invalid manifest (what the command line exits 2 for). Attributes: \
     file, line, song, stem, key (None when not known) and message."
);

/// Name a dict manifest is given in errors (its lines are those of the
/// TOML text the dict is written as).
const DICT_NAME: &str = "<dict>";
/// Name a manifest given as TOML text is given in errors.
const TEXT_NAME: &str = "<string>";

/// Turns a crate manifest error into `stemflow.ManifestError`.
pub fn to_py_err(py: Python<'_>, e: &stemflow::ManifestError) -> PyErr {
    let err = ManifestError::new_err(e.to_string());
    let value = err.value(py);
    // Setting attributes on a fresh exception instance cannot fail short of
    // memory exhaustion; the error itself is still worth raising then.
    let _ = value.setattr("file", &e.file);
    let _ = value.setattr("line", e.line);
    let _ = value.setattr("song", e.song.clone());
    let _ = value.setattr("stem", e.stem.clone());
    let _ = value.setattr("key", e.key.clone());
    let _ = value.setattr("message", &e.message);
    err
}

/// A manifest error raised by the binding itself (not the parser).
fn own_error(py: Python<'_>, file: &str, message: String) -> PyErr {
    to_py_err(
        py,
        &stemflow::ManifestError {
            file: file.to_string(),
            line: None,
            song: None,
            stem: None,
            key: None,
            message,
        },
    )
}

/// The validated `manifest`: `None` (the built-in demo), a dict, TOML text
/// (a `str` holding a newline) or a path (`str` or `os.PathLike`).
pub fn manifest_from(py: Python<'_>, manifest: Option<&Bound<'_, PyAny>>) -> PyResult<Manifest> {
    let parsed = match manifest {
        None => Ok(Manifest::demo()),
        Some(m) if m.is_instance_of::<PyDict>() => {
            let text = dict_to_toml(py, m)?;
            Manifest::parse(&text, DICT_NAME, ".")
        }
        Some(m) if m.is_instance_of::<PyString>() && m.extract::<String>()?.contains('\n') => {
            Manifest::parse(&m.extract::<String>()?, TEXT_NAME, ".")
        }
        Some(m) => {
            let path: PathBuf = m.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(
                    "manifest must be None, a dict, TOML text or a path",
                )
            })?;
            Manifest::load(&path)
        }
    };
    parsed.map_err(|e| to_py_err(py, &e))
}

/// Writes a dict as TOML text: through JSON (Python's `json`, so every
/// value must be JSON-able) into `toml`'s serializer.
fn dict_to_toml(py: Python<'_>, dict: &Bound<'_, PyAny>) -> PyResult<String> {
    let json: String = py
        .import("json")?
        .call_method1("dumps", (dict,))?
        .extract()?;
    let value: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| own_error(py, DICT_NAME, format!("not plain data: {e}")))?;
    toml::to_string(&value)
        .map_err(|e| own_error(py, DICT_NAME, format!("cannot be written as TOML: {e}")))
}

/// Plain serialisable data as Python objects (dicts, lists, numbers,
/// strings, None), through JSON.
pub fn to_python<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}
