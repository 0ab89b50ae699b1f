"""The GIL is released while rendering, Ctrl-C stops a render cleanly, and
repeated calls do not grow memory."""

import gc
import os
import signal
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import stemflow
from conftest import long_manifest


def temp_entries(out: Path) -> list:
    """Temporary state a render leaves: `.stemflow*` entries in OUT other
    than the state folder, and anything in its tmp/ or trash/."""
    left = [p for p in out.iterdir() if p.name.startswith(".stemflow") and p.name != ".stemflow"]
    for sub in ("tmp", "trash"):
        if (out / ".stemflow" / sub).is_dir():
            left += list((out / ".stemflow" / sub).iterdir())
    return left


def test_two_renders_from_two_threads_overlap(tmp_path):
    # Long enough to take well over 0.2 s however fast rendering gets
    # (60 s of audio took 0.19 s by the end of issue 15).
    m = long_manifest(1, 180.0)
    spans, barrier = {}, threading.Barrier(2)

    def work(name):
        barrier.wait()
        start = time.perf_counter()
        summary = stemflow.render(m, out=tmp_path / name, jobs=1)
        spans[name] = (start, time.perf_counter(), summary["songs"][0]["status"])

    threads = [threading.Thread(target=work, args=(n,)) for n in "ab"]
    beats = []
    for t in threads:
        t.start()
    # The main thread keeps running Python meanwhile: it could not while a
    # render held the GIL.
    while any(t.is_alive() for t in threads):
        beats.append(time.perf_counter())
        time.sleep(0.005)
    for t in threads:
        t.join()
    (a0, a1, sa), (b0, b1, sb) = spans["a"], spans["b"]
    assert sa == sb == "ok"
    shorter = min(a1 - a0, b1 - b0)
    assert shorter > 0.2, "render too short to show anything"
    overlap = min(a1, b1) - max(a0, b0)
    # With the GIL held the second render could only start once the first
    # returned: the overlap would be ~0.
    assert overlap > 0.5 * shorter
    inside = [t for t in beats if max(a0, b0) <= t <= min(a1, b1)]
    assert len(inside) > 10
    assert max(np.diff(inside)) < 0.5 * shorter


def test_keyboard_interrupt_stops_render_and_leaves_no_temp(tmp_path):
    out = tmp_path / "out"
    m = long_manifest(4, 1200.0)
    main = threading.get_ident()
    timer = threading.Timer(0.7, signal.pthread_kill, (main, signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        stemflow.render(m, out=out, jobs=2)
    elapsed = time.perf_counter() - start
    timer.join()
    assert elapsed < 30, f"interrupt took {elapsed:.1f} s"
    assert out.is_dir()
    assert temp_entries(out) == []
    # The interrupted songs have no folder (nothing of them published).
    assert not any((out / f"long{i}").exists() for i in range(4))
    # Still usable afterwards.
    assert stemflow.render(long_manifest(1, 0.5), out=out)["songs"][0]["status"] == "ok"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_no_memory_growth_over_100_calls(tmp_path):
    x = np.random.default_rng(1).standard_normal((48000, 2)) * 0.1
    m = long_manifest(1, 0.25)

    def calls():
        stemflow.loudness(x, 48000)
        stemflow.align(x, 48000, 1.7, "loop")
        stemflow.timing(120, [("a", 8), ("b", 8)])
        stemflow.check(m)
        stemflow.render(m, out=tmp_path, force=True)
        try:
            stemflow.check("[[songs]]\nid = 1\n")
        except stemflow.ManifestError:
            pass

    for _ in range(10):
        calls()
    gc.collect()
    tracemalloc.start()
    rss0, py0 = rss_bytes(), tracemalloc.get_traced_memory()[0]
    for _ in range(100):
        calls()
    gc.collect()
    rss1, py1 = rss_bytes(), tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # One call's arrays are ~1 MB; a leak of them would be 100 MB.
    assert py1 - py0 < 1 << 20, f"Python heap grew {py1 - py0} bytes"
    assert rss1 - rss0 < 8 << 20, f"RSS grew {rss1 - rss0} bytes"
