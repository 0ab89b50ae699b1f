"""Type stubs of the stemflow package (implemented in Rust)."""

import os
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

Manifest = Union[str, "os.PathLike[str]", Mapping[str, Any]]
FloatArray = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]

DEMO_MANIFEST: str
"""The built-in demo manifest (TOML text)."""

class ManifestError(ValueError):
    """An invalid manifest (what the command line exits 2 for)."""

    file: str
    line: Optional[int]
    song: Optional[str]
    stem: Optional[str]
    key: Optional[str]
    message: str

def render(
    manifest: Optional[Manifest] = None,
    out: Union[str, "os.PathLike[str]"] = "stemflow-out",
    jobs: Optional[int] = None,
    shard: Union[None, str, Tuple[int, int]] = None,
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Render a manifest into ``out``; return the summary as
    ``stemflow render --json`` prints it (``{"songs": [{"id", "status",
    "seconds", "duration", "lufs", "true_peak_db", "errors"}, ...]}``).

    ``manifest``: None (the built-in demo), a dict, TOML text (a str holding
    a newline) or a path. Failed songs are reported in the summary; an
    invalid manifest raises :class:`ManifestError`. ``shard``: ``(k, n)`` or
    ``"k/n"``. The GIL is released while rendering; Ctrl-C stops the render,
    removes its temporary folders and raises KeyboardInterrupt.
    """

def check(manifest: Manifest) -> dict[str, Any]:
    """Validate a manifest without rendering: each song's settings, stems,
    timing (sections in beats, seconds and frames) and warnings."""

def timing(
    bpm: float,
    sections: Union[Sequence[Tuple[str, int]], Mapping[str, int]],
    meter: str = "4/4",
    sample_rate: int = 48000,
) -> list[dict[str, Any]]:
    """Lay sections end to end at ``bpm``: name, beats, start/end in seconds,
    start_frame/end_frame and start_beat of each. ``meter`` is validated
    ("N/D", as in a manifest); beats count its note value, so it moves no
    position."""

def loudness(array: FloatArray, sample_rate: int) -> dict[str, Optional[float]]:
    """EBU R128 figures of a float32/float64 signal, 1-D (mono) or
    frames x channels (1 or 2): ``integrated`` (LUFS), ``range`` (LU) and
    ``true_peak`` (dBTP), None where undefined (silence). Streams over the
    array in place, GIL released."""

def align(
    array: FloatArray,
    sample_rate: int,
    duration: float,
    strategy: str = "auto",
    *,
    crossfade_ms: float = 50.0,
    fade_ms: float = 10.0,
    bpm: Optional[float] = None,
    meter: Optional[str] = None,
    loop_bars: Optional[int] = None,
) -> npt.NDArray[np.float32]:
    """Bring a signal to exactly ``round(duration * sample_rate)`` frames with
    stemflow's aligner (``strategy``: auto, zero-pad, loop, crossfade,
    truncate, none) — the samples ``stemflow align --format float`` writes.
    ``bpm`` (with ``meter``, ``loop_bars``) loops on the bar grid, as
    ``align --bpm`` does.
    Returns float32 with the input's number of dimensions."""
