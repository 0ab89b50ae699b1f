"""loudness against pyloudnorm and EBU Tech 3341 figures; align against
the command line's `stemflow align`, sample for sample."""

import subprocess

import numpy as np
import pyloudnorm
import pytest

import stemflow
from conftest import read_float_wav, write_float_wav

RATE = 48000


def sine(seconds, freq=1000.0, dbfs=-23.0, channels=2, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    x = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def music_like(seconds, channels=2, seed=3):
    """Noise with a swelling envelope and a tone: loudness varies over time."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    env = 0.05 + 0.3 * (1 + np.sin(2 * np.pi * np.arange(n) / (RATE * 4))) / 2
    x = env[:, None] * rng.standard_normal((n, channels)) * 0.3
    x += 0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / RATE)[:, None]
    return x


def test_ebu_3341_case_1_and_true_peak():
    # Tech 3341 case 1: stereo 1 kHz at -23 dBFS reads -23.0 LUFS (± 0.1).
    x = sine(20)
    got = stemflow.loudness(x, RATE)
    assert got["integrated"] == pytest.approx(-23.0, abs=0.1)
    # A steady tone has (almost) no loudness range.
    assert got["range"] == pytest.approx(0.0, abs=0.1)
    assert got["true_peak"] == pytest.approx(-23.0, abs=0.1)
    # Case 2: -33 dBFS reads -33.0.
    assert stemflow.loudness(sine(20, dbfs=-33), RATE)["integrated"] == pytest.approx(-33.0, abs=0.1)


@pytest.mark.parametrize("channels", [1, 2])
def test_loudness_matches_pyloudnorm(channels):
    x = music_like(12, channels)
    ref = pyloudnorm.Meter(RATE).integrated_loudness(x if channels > 1 else x[:, 0])
    got = stemflow.loudness(x, RATE)
    assert got["integrated"] == pytest.approx(ref, abs=0.1)
    assert got["range"] > 1.0


def test_float32_float64_mono_shapes_and_views_agree():
    x = music_like(5, 1)
    a = stemflow.loudness(x, RATE)
    assert stemflow.loudness(x[:, 0], RATE) == a
    assert stemflow.loudness(np.asfortranarray(x), RATE) == a
    x32 = x.astype(np.float32)
    assert stemflow.loudness(x32, RATE)["integrated"] == pytest.approx(a["integrated"], abs=0.01)
    # A strided view is read in place: every other frame of a 96 kHz signal.
    doubled = np.repeat(x, 2, axis=0)
    assert stemflow.loudness(doubled[::2], RATE) == a
    silent = stemflow.loudness(np.zeros(RATE * 2), RATE)
    assert silent == {"integrated": None, "range": None, "true_peak": None}


@pytest.mark.parametrize(
    "seconds,duration,strategy,channels,options",
    [
        (1.3, 3.0, "loop", 1, {}),
        (1.3, 3.0, "auto", 2, {}),
        (2.0, 2.6, "crossfade", 1, {}),
        (3.0, 1.0, "truncate", 2, {}),
        (0.9, 1.5, "zero-pad", 1, {}),
        (2.2, 7.0, "loop", 2, {"bpm": 120}),
        (2.9, 9.0, "auto", 1, {"bpm": 90, "meter": "6/8", "loop_bars": 1}),
    ],
)
def test_align_equals_cli_sample_for_sample(cli, tmp_path, seconds, duration, strategy, channels, options):
    x = music_like(seconds, channels).astype(np.float32)
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    write_float_wav(src, x, RATE)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    subprocess.run(
        [cli, "align", src, out, "--duration", str(duration), "--strategy", strategy, *flags],
        check=True,
        capture_output=True,
    )
    want = read_float_wav(out)
    got = stemflow.align(x, RATE, duration, strategy, **options)
    assert got.dtype == np.float32
    assert got.shape == (round(duration * RATE), channels)
    assert np.array_equal(got, want)
    if channels == 1:
        mono = stemflow.align(x[:, 0], RATE, duration, strategy, **options)
        assert mono.shape == (round(duration * RATE),)
        assert np.array_equal(mono, want[:, 0])


def test_align_options_and_float64():
    x = music_like(1.0, 1)
    plain = stemflow.align(x, RATE, 2.0, "loop")
    # float64 input is rounded to float32 as a float WAV would be.
    assert np.array_equal(plain, stemflow.align(x.astype(np.float32), RATE, 2.0, "loop"))
    # Without a fade the truncated end is the source itself.
    cut = stemflow.align(x, RATE, 0.5, "truncate", fade_ms=0)
    assert np.array_equal(cut[:, 0], x[: RATE // 2, 0].astype(np.float32))
    faded = stemflow.align(x, RATE, 0.5, "truncate", fade_ms=10)
    assert faded[-1, 0] == 0 or abs(faded[-1, 0]) < abs(cut[-1, 0])
    assert not np.array_equal(
        plain, stemflow.align(x, RATE, 2.0, "loop", crossfade_ms=5)
    )


@pytest.mark.parametrize(
    "call,error",
    [
        (lambda: stemflow.loudness(np.zeros(100, dtype=np.int16), RATE), TypeError),
        (lambda: stemflow.loudness([0.0, 1.0], RATE), TypeError),
        (lambda: stemflow.loudness(np.zeros((10, 3)), RATE), ValueError),
        (lambda: stemflow.loudness(np.zeros((2, 2, 2)), RATE), ValueError),
        (lambda: stemflow.loudness(np.zeros(10), 0), ValueError),
        (lambda: stemflow.align(np.zeros(10), RATE, 1.0, "sideways"), ValueError),
        (lambda: stemflow.align(np.zeros(10), RATE, -1.0), ValueError),
        (lambda: stemflow.align(np.zeros(10), RATE, 1.0, wobble=3), TypeError),
        (lambda: stemflow.align(np.zeros(RATE), RATE, 0.5, "none"), ValueError),
        (lambda: stemflow.align(np.zeros(RATE), RATE, 2.0, meter="4/4"), ValueError),
        (lambda: stemflow.align(np.zeros(RATE), RATE, 2.0, bpm=120, meter="4/5"), ValueError),
        (lambda: stemflow.align(np.zeros(RATE), RATE, 2.0, bpm=-1), ValueError),
    ],
)
def test_bad_arguments_raise(call, error):
    with pytest.raises(error):
        call()
