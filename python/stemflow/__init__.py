"""stemflow: render song manifests into duration-aligned stems, a master mix
and a zip of deliverables, streaming in flat memory (Python bindings of the
stemflow Rust crate).

    >>> import stemflow
    >>> summary = stemflow.render(None, out="stemflow-out")  # the built-in demo
    >>> summary["songs"][0]["status"]
    'ok'

Every function is implemented in Rust (``stemflow._stemflow``); the GIL is
released while audio is rendered, measured or aligned.
"""

from ._stemflow import (
    DEMO_MANIFEST,
    ManifestError,
    align,
    check,
    loudness,
    render,
    timing,
)

__all__ = [
    "DEMO_MANIFEST",
    "ManifestError",
    "align",
    "check",
    "loudness",
    "render",
    "timing",
]
