//! `stemflow init --from-dir DIR` on a folder of mixed WAV, FLAC and MP3
//! stems: one `file` stem per audio file, roles from the names, the
//! duration from the reference or the longest file; the manifest passes
//! `check` and renders.

use std::path::Path;

use crate::util::{fixtures, read_wav, stderr, stdout, stemflow, write_float_wav};

/// `frames` of a sine at 44.1 kHz.
fn sine(frames: usize, freq: f32, amp: f32) -> Vec<f32> {
    (0..frames)
        .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * freq / 44_100.0).sin() * amp)
        .collect()
}

/// The folder: a WAV kick (0.3 s), a FLAC "Lead Vox" (0.4 s, written by
/// stemflow's own FLAC writer), the committed MP3 fixture as a pad (0.5 s),
/// a WAV with a name that says no role (0.35 s) and a text file that is
/// not audio.
fn stems_folder(dir: &Path) {
    std::fs::create_dir_all(dir.join("stems")).unwrap();
    write_float_wav(
        &dir.join("stems/Kick.wav"),
        44_100,
        1,
        &sine(13_230, 60.0, 0.2),
    );
    write_float_wav(&dir.join("vox.wav"), 44_100, 1, &sine(17_640, 440.0, 0.2));
    let o = stemflow(
        dir,
        &[
            "align",
            "vox.wav",
            "stems/Lead Vox.flac",
            "--duration",
            "0.4",
            "--format",
            "pcm16",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::remove_file(dir.join("vox.wav")).unwrap();
    std::fs::copy(
        fixtures().join("sine1k-44k-mono.mp3"),
        dir.join("stems/pad.mp3"),
    )
    .unwrap();
    write_float_wav(
        &dir.join("stems/ambience.wav"),
        44_100,
        1,
        &sine(15_435, 300.0, 0.1),
    );
    std::fs::write(dir.join("stems/notes.txt"), "not audio").unwrap();
}

/// The `role = ...` line of stem `name` in manifest `text`, if any.
fn role_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let at = text.find(&format!("name = \"{name}\""))?;
    let table = text[at..].split("\n\n").next()?;
    table
        .lines()
        .find_map(|l| l.strip_prefix("role = \""))
        .map(|r| r.trim_end_matches('"'))
}

/// The longest file is the MP3 fixture: its length as the decoder (and
/// so `verify`) counts it.
fn fixture_seconds(dir: &Path) -> f64 {
    let o = stemflow(dir, &["verify", "stems/pad.mp3", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["duration"].as_f64().unwrap()
}

#[test]
fn a_folder_of_mixed_stems_becomes_a_manifest_that_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    stems_folder(d);
    let longest = fixture_seconds(d);
    assert!(
        longest > 0.4,
        "the MP3 fixture is the longest file: {longest}"
    );
    let o = stemflow(d, &["init", "song.toml", "--from-dir", "stems"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join("song.toml")).unwrap();
    assert_eq!(role_of(&text, "Kick"), Some("rhythmic"), "{text}");
    assert_eq!(role_of(&text, "Lead_Vox"), Some("melodic"), "{text}");
    assert_eq!(role_of(&text, "pad"), Some("melodic"), "{text}");
    assert_eq!(role_of(&text, "ambience"), None, "{text}");
    assert!(text.contains("path = \"stems/Lead Vox.flac\""), "{text}");

    let o = stemflow(d, &["check", "song.toml", "--strict", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let song = &v["songs"][0];
    // The folder is called `stems`, a name stemflow writes itself.
    assert_eq!(song["id"], "song-stems");
    let names: Vec<&str> = song["stems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Kick", "Lead_Vox", "ambience", "pad"]);
    let duration = song["duration"].as_f64().unwrap();
    assert!((duration - longest).abs() < 1e-6, "{duration} vs {longest}");

    let o = stemflow(d, &["render", "song.toml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (spec, master) = read_wav(&d.join("out/song-stems/master.wav"));
    let want = (duration * 48_000.0).round() as usize;
    assert_eq!((spec.sample_rate, master.len()), (48_000, want));
}

#[test]
fn a_reference_file_sets_the_duration_and_is_not_a_stem() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("Mon Été")).unwrap();
    write_float_wav(
        &d.join("Mon Été/bass.wav"),
        44_100,
        1,
        &sine(44_100, 55.0, 0.3),
    );
    write_float_wav(
        &d.join("Mon Été/drums.wav"),
        44_100,
        1,
        &sine(30_000, 80.0, 0.3),
    );
    // 1.25 s exactly: 55 125 frames at 44.1 kHz.
    write_float_wav(
        &d.join("Mon Été/Reference_mix.wav"),
        44_100,
        1,
        &sine(55_125, 55.0, 0.4),
    );
    // Printed on stdout with `-`: paths relative to the current folder.
    let o = stemflow(d, &["init", "-", "--from-dir", "Mon Été"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("title = \"Mon Été\""), "{text}");
    assert!(text.contains("duration = 1.250000"), "{text}");
    assert!(
        text.contains("[songs.reference]\npath = \"Mon Été/Reference_mix.wav\""),
        "{text}"
    );
    assert!(!text.contains("name = \"Reference_mix\""), "{text}");
    assert_eq!(role_of(&text, "bass"), Some("rhythmic"));
    assert_eq!(role_of(&text, "drums"), Some("rhythmic"));
    std::fs::write(d.join("m.toml"), &text).unwrap();
    let o = stemflow(d, &["render", "m.toml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/Mon__t_/report.json")).unwrap()).unwrap();
    assert_eq!(report["target_frames"], 60_000, "1.25 s at 48 kHz");
    assert_eq!(report["title"], "Mon Été");
    // An empty folder, or one without audio, is refused.
    std::fs::create_dir(d.join("empty")).unwrap();
    std::fs::write(d.join("empty/readme.txt"), "x").unwrap();
    let o = stemflow(d, &["init", "e.toml", "--from-dir", "empty"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no audio stems found"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("e.toml").exists());
}
