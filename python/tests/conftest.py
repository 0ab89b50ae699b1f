"""Shared fixtures: the command-line binary the binding is compared with,
and small helpers to write and read float WAV files without the binding."""

import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _binary_path() -> Path:
    if os.environ.get("STEMFLOW_BIN"):
        return Path(os.environ["STEMFLOW_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "stemflow"


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `stemflow` binary (built by `cargo build --release` if missing)."""
    path = _binary_path()
    if not path.exists():
        subprocess.run(
            ["cargo", "build", "--release", "--bin", "stemflow"], cwd=ROOT, check=True
        )
    return path


def write_float_wav(path: Path, frames: np.ndarray, rate: int) -> None:
    """IEEE-float WAV (format 3) of a float32 frames x channels array."""
    data = np.ascontiguousarray(frames, dtype="<f4")
    channels = 1 if data.ndim == 1 else data.shape[1]
    payload = data.tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def read_float_wav(path: Path) -> np.ndarray:
    """Samples of a 32-bit float WAV as frames x channels float32, found by
    walking the RIFF chunks (format 3 or extensible)."""
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    pos, channels, data = 12, None, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        chunk = raw[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            channels = struct.unpack("<H", chunk[2:4])[0]
            assert struct.unpack("<H", chunk[14:16])[0] == 32
        elif cid == b"data":
            data = np.frombuffer(chunk, dtype="<f4")
        pos += 8 + size + (size & 1)
    assert channels is not None and data is not None
    return data.reshape(-1, channels)


def long_manifest(songs: int, seconds: float) -> dict:
    """`songs` noise-and-tone songs of `seconds` each, no archive."""
    return {
        "defaults": {"sample_rate": 48000, "format": "float", "channels": 1},
        "songs": [
            {
                "id": f"long{i}",
                "bpm": 120,
                "duration": seconds,
                "stems": [
                    {"name": "noise", "source": {"type": "noise", "amp": 0.1}},
                    {"name": "tone", "source": {"type": "tone", "freq": 220.0}},
                ],
            }
            for i in range(songs)
        ],
    }
