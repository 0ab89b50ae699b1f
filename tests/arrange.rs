//! Musical time and arrangement (SPEC §9, issue 12): meters and bars in the
//! timing, stems placed by section or bar, and their manifest errors.
//! The truth is computed here from the spec's formulas (beat frames, the
//! raised cosine) and from the source written by hound, never taken from
//! stemflow's own numbers.

use std::f64::consts::PI;
use std::path::Path;

use crate::util::{Song, read_wav, render_ok, stderr, stdout, stemflow, write_float_wav};

const RATE: u32 = 48000;

/// A stem file of song `song`.
fn stem(dir: &Path, song: &str, name: &str) -> Vec<f32> {
    read_wav(&dir.join(format!("out/{song}/stems/{name}.wav"))).1
}

/// The spec's raised-cosine ramp: 0.5 − 0.5·cos(π·i/len), 1 from len on.
fn rise(i: u64, len: u64) -> f64 {
    if i >= len {
        1.0
    } else {
        0.5 - 0.5 * (PI * i as f64 / len as f64).cos()
    }
}

/// The placement envelope at frame `n`: 0 outside `regions`, the product
/// of the fade-in and fade-out ramps inside.
fn envelope(n: u64, regions: &[(u64, u64)], fade_in: u64, fade_out: u64) -> f64 {
    regions
        .iter()
        .find(|(s, e)| (*s..*e).contains(&n))
        .map_or(0.0, |(s, e)| {
            rise(n - s, fade_in) * rise(e - 1 - n, fade_out)
        })
}

/// Frame of beat `k`: round(k · 60/bpm · rate).
fn beat_frame(k: u64, bpm: f64) -> u64 {
    (k as f64 * 60.0 / bpm * RATE as f64).round() as u64
}

/// An 8-s song at 120 BPM with song `keys` (one line) and four 2-s
/// sections: intro, chorus, verse, chorus2.
fn four_sections(id: &str, keys: &str) -> Song {
    Song::new(id)
        .with(&format!("duration = 8.0\n{keys}"))
        .section("intro", 4)
        .section("chorus", 4)
        .section("verse", 4)
        .section("chorus2", 4)
}

/// A deterministic, non-periodic test signal in [-0.5, 0.5].
fn signal(frames: usize) -> Vec<f32> {
    (0..frames)
        .map(|i| (((i as u64).wrapping_mul(2_654_435_761) % 10_007) as f32 / 10_007.0) - 0.5)
        .collect()
}

#[test]
fn a_stem_placed_in_the_choruses_restarts_there_and_is_silent_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let region = 2 * RATE as usize;
    let src = signal(region);
    write_float_wav(&tmp.path().join("pad.wav"), RATE, 1, &src);
    let song = |id: &str, format: &str| {
        four_sections(id, &format!("format = \"{format}\""))
            .file_stem("pad", "pad.wav")
            .with("align = \"none\"\nsections = [\"chorus2\", \"chorus\"]")
    };
    let text = format!("{}{}", song("float", "float"), song("pcm", "pcm16"));
    render_ok(tmp.path(), &text);
    let regions = [
        (beat_frame(4, 120.0), beat_frame(8, 120.0)),
        (beat_frame(12, 120.0), beat_frame(16, 120.0)),
    ];
    let fade = 240; // 5 ms at 48 kHz, the default for a placed stem
    let out = stem(tmp.path(), "float", "pad");
    assert_eq!(out.len(), 8 * RATE as usize);
    for (n, v) in out.iter().enumerate() {
        let n = n as u64;
        match regions.iter().find(|(s, e)| (*s..*e).contains(&n)) {
            None => assert!(*v == 0.0 && v.to_bits() == 0, "frame {n} outside: {v}"),
            Some((s, _)) => {
                let want =
                    (src[(n - s) as usize] as f64 * envelope(n, &regions, fade, fade)) as f32;
                assert!((v - want).abs() <= 1e-7, "frame {n}: {v} vs {want}");
            }
        }
    }
    for (s, e) in regions {
        assert_eq!(
            out[s as usize], 0.0,
            "the fade-in starts on the region's first frame"
        );
        assert_eq!(
            out[e as usize - 1],
            0.0,
            "the fade-out ends on its last frame"
        );
        // Past the fade, each region is the source from its frame 0, exactly.
        assert_eq!(
            out[(s + fade) as usize..(s + 1000) as usize],
            src[fade as usize..1000]
        );
    }
    // PCM with TPDF dither: silence outside the regions is still exact 0,
    // in the stem and in the master.
    for file in ["stems/pad.wav", "master.wav"] {
        let (_, pcm) = read_wav(&tmp.path().join("out/pcm").join(file));
        for (n, v) in pcm.iter().enumerate() {
            if envelope(n as u64, &regions, 1, 1) == 0.0
                && !regions
                    .iter()
                    .any(|r| r.0 == n as u64 || r.1 - 1 == n as u64)
            {
                assert_eq!(*v, 0.0, "{file} frame {n} dithered");
            }
        }
    }
}

#[test]
fn restart_song_is_the_ungated_stem_times_the_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let pad = |id: &str, place: &str| {
        four_sections(id, "")
            .stem(
                "pad",
                "{ type = \"tone\", wave = \"saw\", freq = 210.0, amp = 0.5, length = 5.0 }",
            )
            .with("align = \"loop\"\nrole = \"melodic\"")
            .with("effects = [{ type = \"echo\", delay_ms = 150.0, decay = 0.6, taps = 3 }]")
            .with(place)
    };
    let text = format!(
        "{}{}",
        pad("ungated", ""),
        pad(
            "gated",
            "sections = [\"chorus\", \"verse\"]\nrestart = \"song\"\nfade_in_ms = 10\nfade_out_ms = 25"
        )
    );
    render_ok(tmp.path(), &text);
    let ungated = stem(tmp.path(), "ungated", "pad");
    let gated = stem(tmp.path(), "gated", "pad");
    // chorus and verse are adjacent: one region, beats 4..12.
    let regions = [(beat_frame(4, 120.0), beat_frame(12, 120.0))];
    let (fade_in, fade_out) = (480, 1200);
    assert_eq!(gated.len(), ungated.len());
    let mut inside = 0;
    for (n, (g, u)) in gated.iter().zip(&ungated).enumerate() {
        let e = envelope(n as u64, &regions, fade_in, fade_out);
        let want = (*u as f64 * e) as f32;
        assert!((g - want).abs() <= 1e-7, "frame {n}: {g} vs {want}");
        if e == 0.0 {
            assert_eq!(g.to_bits(), 0, "frame {n}: not digital silence");
        } else {
            inside += 1;
        }
    }
    assert_eq!(inside, regions[0].1 - regions[0].0 - 2);
}

/// `timing --json` sections: (beats, bars, start_bar, start_frame, end_frame).
fn timing_json(args: &[&str]) -> Vec<(u64, f64, f64, u64, u64)> {
    let tmp = tempfile::tempdir().unwrap();
    let mut all = vec!["timing", "--json"];
    all.extend_from_slice(args);
    let o = stemflow(tmp.path(), &all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["beats"].as_u64().unwrap(),
                s["bars"].as_f64().unwrap(),
                s["start_bar"].as_f64().unwrap(),
                s["start_frame"].as_u64().unwrap(),
                s["end_frame"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn meters_put_sections_on_the_formula_frames() {
    // 3/4 at 90 BPM, sections in bars: 5, 3, 7 bars of 3 beats.
    let got = timing_json(&[
        "--bpm",
        "90",
        "--meter",
        "3/4",
        "--bars",
        "--sections",
        "a=5,b=3,c=7",
    ]);
    let mut bar = 0;
    for ((beats, bars, start_bar, start, end), n) in got.into_iter().zip([5u64, 3, 7]) {
        assert_eq!((beats, bars, start_bar), (3 * n, n as f64, bar as f64));
        assert_eq!(start, beat_frame(3 * bar, 90.0));
        assert_eq!(end, beat_frame(3 * (bar + n), 90.0));
        bar += n;
    }
    // 6/8 at 120 (eighth notes), sections in beats, one not whole bars.
    let got = timing_json(&[
        "--bpm",
        "120",
        "--meter",
        "6/8",
        "--sections",
        "a=12,b=9,c=6",
    ]);
    let mut beat = 0;
    for ((beats, bars, start_bar, start, end), n) in got.into_iter().zip([12u64, 9, 6]) {
        assert_eq!(
            (beats, bars, start_bar),
            (n, n as f64 / 6.0, beat as f64 / 6.0)
        );
        assert_eq!(
            (start, end),
            (beat_frame(beat, 120.0), beat_frame(beat + n, 120.0))
        );
        beat += n;
    }
}

#[test]
fn meter_and_bars_reach_the_report_and_place_stems_on_bars() {
    let tmp = tempfile::tempdir().unwrap();
    let text = Song::at_bpm("waltz", 90)
        .with("meter = \"3/4\"\nduration = 7.0")
        .with("\n[[songs.sections]]\nname = \"a\"\nbars = 2")
        .with("\n[[songs.sections]]\nname = \"b\"\nbeats = 4")
        .stem("click", "{ type = \"tone\", freq = 300.0, amp = 0.3 }")
        .with("start_bar = 1\nend_bar = 3\nfade_in_ms = 0\nfade_out_ms = 0")
        .to_string();
    render_ok(tmp.path(), &text);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/waltz/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["meter"], "3/4");
    let t = &report["timing"];
    assert_eq!(
        (t[0]["beats"].as_u64(), t[0]["bars"].as_f64()),
        (Some(6), Some(2.0))
    );
    assert_eq!(t[1]["start_bar"].as_f64(), Some(2.0));
    assert_eq!(t[1]["start_frame"].as_u64(), Some(beat_frame(6, 90.0)));
    // Bars 1..3 are beats 3..9; with no fades the edges are the source's.
    let (s, e) = (beat_frame(3, 90.0) as usize, beat_frame(9, 90.0) as usize);
    let out = stem(tmp.path(), "waltz", "click");
    assert!(out[..s].iter().chain(&out[e..]).all(|v| v.to_bits() == 0));
    assert_eq!(out[s], 0.0, "a sine starts at phase 0");
    let want = (0.3 * (2.0 * PI * 300.0 / RATE as f64).sin()) as f32;
    assert!((out[s + 1] - want).abs() < 1e-6, "{} vs {want}", out[s + 1]);
    assert!(out[e - 1] != 0.0);
    let check = stemflow(tmp.path(), &["check", "m.toml"]);
    assert!(stdout(&check).contains("start bar"), "{}", stdout(&check));
}

/// `check` on `text`: exit 2 and one line containing every part of `want`.
fn manifest_error(text: &str, want: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.toml"), text).unwrap();
    let o = stemflow(tmp.path(), &["check", "m.toml"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for w in want {
        assert!(err.contains(w), "{err:?} lacks {w:?}");
    }
}

#[test]
fn arrangement_mistakes_are_manifest_errors() {
    let placed = |keys: &str| {
        four_sections("s", "")
            .stem("pad", "{ type = \"tone\", freq = 220.0, length = 1.0 }")
            .with(keys)
            .to_string()
    };
    // The stem's header is line 23 (after four sections of 4 lines each),
    // its first placement key line 26.
    manifest_error(
        &placed("sections = [\"chorus\", \"bridge\"]"),
        &[
            "m.toml:27:",
            "song \"s\" stem \"pad\"",
            "key `sections`",
            "unknown section \"bridge\"",
        ],
    );
    manifest_error(
        &placed("start_bar = 1\nend_bar = 1"),
        &["m.toml:28:", "key `end_bar`", "after start_bar"],
    );
    manifest_error(&placed("start_bar = 2\nend_bar = 1"), &["key `end_bar`"]);
    manifest_error(
        &placed("start_bar = 4"),
        &["m.toml:27:", "key `start_bar`", "past the song"],
    );
    manifest_error(
        &placed("loop_bars = 0"),
        &["stem \"pad\"", "key `loop_bars`", "at least 1"],
    );
    manifest_error(
        &placed("align = \"none\"\nsections = [\"verse\"]"),
        &["m.toml:27:", "key `align`", "cannot fit"],
    );
    manifest_error(&placed("restart = \"song\""), &["key `restart`"]);
    manifest_error(&placed("restart = \"bar\""), &["key `restart`"]);
    manifest_error(
        &placed("sections = [\"verse\"]\nstart_bar = 1"),
        &["key `start_bar`"],
    );
    for meter in ["5/3", "0/4", "4"] {
        let text = four_sections("s", &format!("meter = \"{meter}\""))
            .silent_stem("x")
            .to_string();
        manifest_error(&text, &["m.toml:6:", "song \"s\"", "key `meter`"]);
    }
    let both = Song::new("s")
        .with("duration = 4.0")
        .with("\n[[songs.sections]]\nname = \"a\"\nbeats = 4\nbars = 1")
        .silent_stem("x")
        .to_string();
    manifest_error(&both, &["key `sections.bars`", "not both"]);
}

#[test]
fn placement_keys_are_in_the_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = |keys: &str| {
        let text = four_sections("s", "")
            .stem("pad", "{ type = \"tone\", freq = 220.0 }")
            .with(keys)
            .to_string();
        render_ok(tmp.path(), &text);
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join("out/s/report.json")).unwrap(),
        )
        .unwrap();
        r["digest"].as_str().unwrap().to_string()
    };
    let plain = digest("");
    let placed = digest("sections = [\"verse\"]");
    let faded = digest("sections = [\"verse\"]\nfade_in_ms = 9");
    let song = digest("sections = [\"verse\"]\nrestart = \"song\"");
    let looped = digest("loop_bars = 2");
    let all = [&plain, &placed, &faded, &song, &looped];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}
