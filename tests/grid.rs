//! Musical time in alignment (SPEC §9): rhythmic loops locked to the bar
//! grid, and crossfade extension that keeps a source's release for the
//! end. The truth is independent of the aligner: onsets found in the
//! written files against the beat formula round(k · 60/bpm · rate), and a
//! release synthesised here.

use std::path::Path;

use crate::util::{
    Song, read_wav, render, stderr, stdout, stemflow, windowed_rms, write_float_wav,
};

const RATE: u32 = 48_000;
const BARS: u64 = 64;

fn frames(seconds: f64) -> u64 {
    (seconds * RATE as f64).round() as u64
}

/// A 2-bar 4/4 drum loop drawn here: on every beat a kick that starts at
/// full level (a decaying 60 Hz cosine) over a longer noise "reverb"; `len`
/// frames long, so a file longer than the loop ends in a real tail.
fn drum_loop(bpm: f64, len: u64) -> Vec<f32> {
    let beat = 60.0 / bpm;
    let mut x = vec![0.0f64; len as usize];
    let mut noise = 0x2545_f491_4f6c_dd1du64;
    for j in 0..8u64 {
        let at = frames(j as f64 * beat) as usize;
        for (d, v) in x[at..].iter_mut().enumerate() {
            let t = d as f64 / RATE as f64;
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let n = (noise >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            *v += 0.8 * (std::f64::consts::TAU * 60.0 * t).cos() * (-t / 0.05).exp()
                + 0.1 * n * (-t / 0.3).exp();
        }
    }
    x.into_iter().map(|v| v as f32).collect()
}

/// Onsets: frames at or above `threshold` after at least 40 ms below it.
fn onsets(x: &[f32], threshold: f32) -> Vec<u64> {
    let gap = frames(0.04);
    let mut quiet = gap;
    let mut found = Vec::new();
    for (n, v) in x.iter().enumerate() {
        if v.abs() >= threshold {
            if quiet >= gap {
                found.push(n as u64);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    found
}

struct GridCase {
    name: &'static str,
    /// The source as its stem plays it.
    source: Vec<f32>,
    /// The stem as written, 64 bars long.
    out: Vec<f32>,
}

/// Renders 64 bars at `bpm` with a `drums` source of two bars and the
/// drawn loop as files 20 ms short and 30 ms long; returns each stem with
/// its source (the `drums` one rendered unaligned).
fn render_grid(dir: &Path, bpm: f64) -> Vec<GridCase> {
    let bar = 240.0 / bpm;
    let loop_frames = frames(2.0 * bar);
    let short = frames(2.0 * bar - 0.02);
    let long = frames(2.0 * bar + 0.03);
    write_float_wav(&dir.join("short.wav"), RATE, 1, &drum_loop(bpm, short));
    write_float_wav(&dir.join("long.wav"), RATE, 1, &drum_loop(bpm, long));
    let drums = format!("{{ type = \"drums\", amp = 0.8, length = {} }}", 2.0 * bar);
    let song = |id: &str, bars: u64| {
        Song::at_bpm(id, bpm)
            .with(&format!(
                "duration = {}\nsample_rate = {RATE}",
                bars as f64 * bar
            ))
            .section("all", bars as u32 * 4)
            .stem("drums", &drums)
    };
    let manifest = format!(
        "{}{}",
        song("grid", BARS)
            .file_stem("short", "short.wav")
            .with("role = \"rhythmic\"")
            .file_stem("long", "long.wav")
            .with("role = \"rhythmic\"\nalign = \"loop\"")
            // Three loud stems summed: the master clips, the stems do not.
            .table("verify")
            .with("max_clip_ratio = 1.0"),
        song("source", 2)
    );
    std::fs::write(dir.join("m.toml"), manifest).unwrap();
    let o = stemflow(dir, &["render", "m.toml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stem =
        |song: &str, name: &str| read_wav(&dir.join(format!("out/{song}/stems/{name}.wav"))).1;
    let drums_source = stem("source", "drums");
    assert_eq!(drums_source.len() as u64, loop_frames);
    vec![
        GridCase {
            name: "drums",
            source: drums_source,
            out: stem("grid", "drums"),
        },
        GridCase {
            name: "short",
            source: drum_loop(bpm, short),
            out: stem("grid", "short"),
        },
        GridCase {
            name: "long",
            source: drum_loop(bpm, long),
            out: stem("grid", "long"),
        },
    ]
}

/// Every bar's first beat has an onset within ±1 frame of
/// round(b · bar · rate), shifted by the source's own onset at frame 0
/// (a kick that starts from 0 crosses the threshold a few frames in);
/// returns the (expected, found) of the first and last bars.
fn assert_downbeats(case: &GridCase, bpm: f64) -> [(u64, u64); 2] {
    let peak = case.source.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let threshold = 0.1 * peak;
    let offset = onsets(&case.source, threshold)[0];
    assert!(
        offset < 50,
        "{}: the source's first onset is at {offset}",
        case.name
    );
    let found = onsets(&case.out, threshold);
    // Four beats a bar, none missing, none extra.
    assert_eq!(found.len() as u64, 4 * BARS, "{}: {bpm} BPM", case.name);
    let bar = 240.0 / bpm;
    let at = |b: u64| {
        let want = frames(b as f64 * bar) + offset;
        let got = *found
            .iter()
            .find(|&&f| f + 1 >= want)
            .unwrap_or_else(|| panic!("{}: no onset near bar {b}", case.name));
        assert!(
            got.abs_diff(want) <= 1,
            "{}: bar {b} at {got}, want {want} ± 1 ({bpm} BPM)",
            case.name
        );
        (want, got)
    };
    (1..BARS - 1).for_each(|b| {
        at(b);
    });
    [at(0), at(BARS - 1)]
}

/// Between seams every repeat is the source itself: repeat k starts at
/// round(k · L · rate), plays min(S, L_k) frames of the source (past the
/// faded-in tail of the one before), then silence.
fn assert_repeats_are_the_source(case: &GridCase, bpm: f64) {
    let l = 480.0 / bpm;
    let s = case.source.len() as u64;
    let fade = frames(0.05);
    for k in 0..BARS / 2 {
        let (start, end) = (frames(k as f64 * l), frames((k + 1) as f64 * l));
        let len = end - start;
        // The previous repeat's frames past its own length fade in here.
        let skip = match k {
            0 => 0,
            _ => s
                .saturating_sub(start - frames((k - 1) as f64 * l))
                .min(fade),
        };
        let played = s.min(len);
        let got = &case.out[start as usize..end as usize];
        assert!(
            got[skip as usize..played as usize] == case.source[skip as usize..played as usize],
            "{}: repeat {k} differs from the source ({bpm} BPM)",
            case.name
        );
        assert!(
            got[played as usize..].iter().all(|v| *v == 0.0),
            "{}: repeat {k}",
            case.name
        );
    }
}

#[test]
fn rhythmic_loops_land_every_downbeat_on_the_grid() {
    for bpm in [120.0, 174.0] {
        let tmp = tempfile::tempdir().unwrap();
        for case in render_grid(tmp.path(), bpm) {
            assert_eq!(case.out.len() as u64, frames(BARS as f64 * 240.0 / bpm));
            let [first, last] = assert_downbeats(&case, bpm);
            println!(
                "{bpm} BPM {}: first downbeat at {} (formula + onset offset {}), last at {} ({})",
                case.name, first.1, first.0, last.1, last.0
            );
            assert_repeats_are_the_source(&case, bpm);
        }
        let report = std::fs::read_to_string(tmp.path().join("out/grid/report.json")).unwrap();
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        for stem in report["stems"].as_array().unwrap() {
            assert_eq!(stem["strategy"], "loop", "{stem}");
            assert_eq!(stem["grid"], true, "{stem}");
            assert_eq!(stem["loop_frames"], frames(480.0 / bpm), "{stem}");
        }
    }
}

#[test]
fn align_command_loops_a_file_on_the_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let short = frames(4.0 - 0.02);
    write_float_wav(
        &tmp.path().join("loop.wav"),
        RATE,
        1,
        &drum_loop(120.0, short),
    );
    let args = [
        "align",
        "loop.wav",
        "out.wav",
        "--duration",
        "16",
        "--strategy",
        "loop",
        "--bpm",
        "120",
    ];
    let o = stemflow(tmp.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("looped every 192000 frames on the bar grid"),
        "{}",
        stdout(&o)
    );
    let (_, out) = read_wav(&tmp.path().join("out.wav"));
    // 32 beats, each on round(k · 0.5 s · 48 kHz) exactly.
    let want: Vec<u64> = (0..32).map(|k| k * 24_000).collect();
    assert_eq!(onsets(&out, 0.1), want);
    // Three bars of 3/4 at 120 BPM: 1.5 s each, so the loop is the 4-s
    // file rounded to 3 bars (4.5 s).
    let o = stemflow(tmp.path(), &[&args[..], &["--meter", "3/4"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("looped every 216000 frames"),
        "{}",
        stdout(&o)
    );
    for bad in [
        &["--meter", "5/3"][..],
        &["--loop-bars", "0"],
        &["--bpm", "0"],
    ] {
        let o = stemflow(tmp.path(), &[&args[..], bad].concat());
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(
            stderr(&o).lines().next().unwrap().contains(bad[0]),
            "{}",
            stderr(&o)
        );
    }
}

/// 10 s of 220 Hz: 8 s held at 0.5, then a 2-s exponential release.
fn released_tone() -> Vec<f32> {
    (0..frames(10.0))
        .map(|i| {
            let t = i as f64 / RATE as f64;
            let env = if t < 8.0 {
                1.0
            } else {
                (-(t - 8.0) / 0.4).exp()
            };
            (0.5 * env * (std::f64::consts::TAU * 220.0 * t).sin()) as f32
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn crossfade_sustains_the_body_and_ends_with_the_release() {
    let tmp = tempfile::tempdir().unwrap();
    let src = released_tone();
    write_float_wav(&tmp.path().join("pad.wav"), RATE, 1, &src);
    let manifest = Song::new("pad")
        .with(&format!("duration = 30\nsample_rate = {RATE}"))
        .file_stem("pad", "pad.wav")
        .with("align = \"crossfade\"");
    std::fs::write(tmp.path().join("m.toml"), manifest.to_string()).unwrap();
    let mut outs = Vec::new();
    for block in ["4096", "64", "1000"] {
        let out = format!("out{block}");
        let o = render(tmp.path(), "m.toml", &out, &["--block-size", block]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        outs.push(read_wav(&tmp.path().join(format!("{out}/pad/stems/pad.wav"))).1);
    }
    assert!(
        outs.iter().all(|o| *o == outs[0]),
        "block size changed the output"
    );
    let out = &outs[0];
    let (s, t, release) = (src.len(), out.len(), frames(2.0) as usize);
    assert_eq!(t as u64, frames(30.0));
    // The last 2 s are the source's release, exactly.
    assert!(
        out[t - release..] == src[s - release..],
        "the output does not end in the release"
    );
    // From S - C to the release, the 50 ms RMS holds above half the body's.
    let window = frames(0.05) as usize;
    let body = median(windowed_rms(&src[..frames(8.0) as usize], window, window));
    let ext = windowed_rms(&out[s - window..t - release], window, 48);
    let low = ext.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        low >= 0.5 * body,
        "50 ms RMS falls to {low} (body median {body})"
    );
    println!("extension: lowest 50 ms RMS {low:.4}, body median {body:.4}");
    // And no click (SPEC §4): no step larger than 1.5 times the source's.
    let step = |x: &[f32]| {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    };
    assert!(step(&out[s - window..]) <= 1.5 * step(&src));
    let report = std::fs::read_to_string(tmp.path().join("out4096/pad/report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let reported = report["stems"][0]["release_frames"].as_u64().unwrap();
    // The release is 2 s; its detection may start it up to a few 50 ms
    // windows early, never late.
    assert!(
        (96_000..=96_000 + 3 * 2400).contains(&reported),
        "{reported}"
    );
    println!("release_frames {reported} (the synthesised release: 96000)");
    assert!(out[t - reported as usize..] == src[s - reported as usize..]);
}
