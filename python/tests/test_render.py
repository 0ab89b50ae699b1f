"""render / check / timing against the command line and against figures
worked out by hand."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import stemflow
from conftest import long_manifest

# What a summary line holds besides the wall-clock `seconds`.
STABLE_KEYS = ("id", "status", "duration", "lufs", "true_peak_db", "errors")


def stable(summary: dict) -> list:
    return [{k: s.get(k) for k in STABLE_KEYS} for s in summary["songs"]]


def test_demo_summary_and_files_equal_the_cli(cli, tmp_path):
    ours = stemflow.render(None, out=tmp_path / "py")
    run = subprocess.run(
        [cli, "render", "--json", "--quiet", "--out", tmp_path / "cli"],
        capture_output=True,
        check=True,
    )
    theirs = json.loads(run.stdout)
    assert [s["status"] for s in ours["songs"]] == ["ok"]
    assert set(ours["songs"][0]) == set(theirs["songs"][0])
    assert stable(ours) == stable(theirs)
    assert ours["songs"][0]["seconds"] > 0
    # The same bytes: every WAV and the archive of the demo song.
    demo = tmp_path / "cli" / "demo"
    names = sorted(str(p.relative_to(demo)) for p in demo.rglob("*.wav"))
    names += ["audio_deliverables.zip", "overview.svg"]
    assert len(names) == 8
    for name in names:
        a = (tmp_path / "py" / "demo" / name).read_bytes()
        b = (tmp_path / "cli" / "demo" / name).read_bytes()
        assert a == b, name
    # The summary file written beside the songs is the one returned.
    on_disk = json.loads((tmp_path / "py" / "summary.json").read_text())
    assert on_disk == ours


def test_acceptance_command_prints_ok(tmp_path):
    code = "import stemflow; print(stemflow.render(None)['songs'][0]['status'])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"
    assert (tmp_path / "stemflow-out" / "demo").is_dir()


def test_path_text_and_dict_manifests_render_alike(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(stemflow.DEMO_MANIFEST)
    as_dict = tomllib.loads(stemflow.DEMO_MANIFEST)
    results = [
        stemflow.render(m, out=tmp_path / name)
        for name, m in [("p", path), ("s", str(path)), ("t", stemflow.DEMO_MANIFEST), ("d", as_dict)]
    ]
    assert all(stable(r) == stable(results[0]) for r in results)
    master = [(tmp_path / n / "demo" / "master.wav").read_bytes() for n in "pstd"]
    assert master.count(master[0]) == 4


def test_shard_force_and_resume(tmp_path):
    m = long_manifest(3, 0.5)
    first = stemflow.render(m, out=tmp_path, shard=(1, 3))
    assert [s["id"] for s in first["songs"]] == ["long1"]
    assert [s["id"] for s in stemflow.render(m, out=tmp_path, shard="0/3")["songs"]] == ["long0"]
    again = stemflow.render(m, out=tmp_path, shard=(1, 3))
    assert again["songs"][0]["status"] == "skipped"  # up to date
    forced = stemflow.render(m, out=tmp_path, shard=(1, 3), force=True)
    assert forced["songs"][0]["status"] == "ok"
    with pytest.raises(ValueError):
        stemflow.render(m, out=tmp_path, shard=(3, 3))
    with pytest.raises(ValueError):
        stemflow.render(m, out=tmp_path, jobs=0)


def test_failed_song_is_in_the_summary_not_raised(tmp_path):
    m = long_manifest(2, 0.5)
    m["songs"][1]["stems"].append(
        {"name": "gone", "source": {"type": "file", "path": str(tmp_path / "missing.wav")}}
    )
    summary = stemflow.render(m, out=tmp_path / "out")
    assert [s["status"] for s in summary["songs"]] == ["ok", "failed"]
    assert "missing.wav" in " ".join(summary["songs"][1]["errors"])


BAD_KEY = """
[[songs]]
id = "s1"
bpm = 120
duration = 4

[[songs.stems]]
name = "bass"
source = { type = "tone", freq = -5.0 }
"""


def test_manifest_error_carries_line_song_stem_key_as_the_cli_says(cli, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD_KEY)
    with pytest.raises(stemflow.ManifestError) as e:
        stemflow.render(path, out=tmp_path / "out")
    err = e.value
    assert isinstance(err, ValueError)
    assert (err.song, err.stem, err.file) == ("s1", "bass", str(path))
    assert err.key is not None and "freq" in err.key
    assert err.line == 9
    run = subprocess.run([cli, "check", path], capture_output=True, text=True)
    assert run.returncode == 2
    assert str(err) in run.stderr
    assert not (tmp_path / "out").exists()
    # The same error from text and from check().
    with pytest.raises(stemflow.ManifestError) as t:
        stemflow.check(BAD_KEY)
    assert (t.value.line, t.value.song, t.value.stem, t.value.key) == (9, "s1", "bass", err.key)


def test_other_bad_manifests_raise(tmp_path):
    with pytest.raises(stemflow.ManifestError) as e:
        stemflow.render(tmp_path / "nope.toml", out=tmp_path / "o")
    assert "cannot read manifest" in str(e.value)
    with pytest.raises(stemflow.ManifestError):
        stemflow.check("[[songs]]\nid = 3\n")
    with pytest.raises(stemflow.ManifestError):
        stemflow.check({"songs": [{"id": "x", "bpm": 120, "nope": 1}]})
    with pytest.raises(TypeError):
        stemflow.check(42)


def test_check_gives_plan_and_timing():
    plan = stemflow.check(stemflow.DEMO_MANIFEST)
    (song,) = plan["songs"]
    assert song["id"] == "demo"
    assert song["frames"] == 137 * 48000
    assert [s["name"] for s in song["stems"]] == ["bass", "guitars", "synths", "bridge", "drums"]
    assert song["stems"][0]["align"] == "loop"
    names = [s["name"] for s in song["timing"]["sections"]]
    assert names == ["intro", "verse", "chorus", "bridge", "chorus2", "outro"]
    # 274 beats at 120 BPM end at 137 s.
    assert song["timing"]["sections"][-1]["end"] == pytest.approx(137.0)


def test_timing_from_pairs_or_dict_matches_hand_figures(cli):
    t = stemflow.timing(120, [("intro", 16), ("verse", 32)])
    assert t == stemflow.timing(120, {"intro": 16, "verse": 32}, meter="4/4")
    intro, verse = t
    assert (intro["start"], intro["end"], intro["end_frame"]) == (0.0, 8.0, 384000)
    assert (verse["start_beat"], verse["end"], verse["end_frame"]) == (16, 24.0, 1152000)
    run = subprocess.run(
        [cli, "timing", "--bpm", "120", "--sections", "intro=16,verse=32", "--json"],
        capture_output=True,
        check=True,
    )
    assert json.loads(run.stdout)["sections"] == t
    odd = stemflow.timing(90, [("a", 3)], meter="6/8", sample_rate=44100)
    assert odd[0]["end"] == pytest.approx(2.0) and odd[0]["end_frame"] == 88200


@pytest.mark.parametrize(
    "args",
    [
        (0, [("a", 4)]),
        (120, [("a", 0)]),
        (120, [("", 4)]),
        (120, [("a", 4)], "4/3"),
        (120, [("a", 4)], "x"),
        (120, [("a", 4)], "4/4", 10),
    ],
)
def test_timing_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        stemflow.timing(*args)


def test_unusable_out_raises_oserror(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(OSError):
        stemflow.render(long_manifest(1, 0.5), out=not_a_dir)
    assert not_a_dir.read_text() == "x"
