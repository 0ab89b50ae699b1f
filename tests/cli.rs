//! The command line: help, timing, check, init, and bad manifests.

use std::path::PathBuf;

use crate::util::{Song, files, lead_song, no_temp_left, stderr, stdout, stemflow};

/// The manifest the command-line cases edit.
fn good() -> String {
    lead_song("ok-song", 2.0, 4).to_string()
}

#[test]
fn help_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let o = stemflow(tmp.path(), &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("help", stdout(&o));
    let o = stemflow(tmp.path(), &["render", "--help"]);
    insta::assert_snapshot!("render_help", stdout(&o));
}

#[test]
fn timing_table_of_the_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let o = stemflow(
        tmp.path(),
        &[
            "timing",
            "--bpm",
            "120",
            "--sections",
            "intro=16,verse=64,chorus=64,bridge=32,chorus2=64,outro=34",
            "--duration",
            "137",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("demo_timing", stdout(&o));
}

#[test]
fn timing_json_and_past_duration() {
    let tmp = tempfile::tempdir().unwrap();
    let o = stemflow(
        tmp.path(),
        &["timing", "--bpm", "90", "--sections", "a=3,b=5", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 3 beats at 90 bpm = 2 s = 96000 frames.
    assert_eq!(v["sections"][1]["start_frame"], 96000);
    assert_eq!(v["sections"][1]["start_beat"], 3);
    let o = stemflow(
        tmp.path(),
        &[
            "timing",
            "--bpm",
            "90",
            "--sections",
            "a=3,b=5",
            "--duration",
            "5",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("after the song's duration"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_prints_the_plan_and_renders_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let o = stemflow(tmp.path(), &["init", "demo.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = stemflow(tmp.path(), &["init", "demo.toml"]);
    assert_eq!(o.status.code(), Some(2), "init does not overwrite");
    let o = stemflow(tmp.path(), &["check", "demo.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("demo_check", stdout(&o));
    assert_eq!(files(tmp.path()), vec![PathBuf::from("demo.toml")]);
}

/// Each bad manifest exits 2 with one line naming the problem, and
/// renders nothing.
#[test]
fn bad_manifests_exit_2_with_one_line() {
    let cases: &[(&str, &str, &str)] = &[
        ("unknown key", "bpm = 120", "bpm = 120\ntempo = 3"),
        ("negative bpm", "bpm = 120", "bpm = -120"),
        ("sections past the duration", "beats = 4", "beats = 5"),
        (
            "duplicate stem names",
            "effects = [",
            "[[songs.stems]]\nname = \"lead\"\nsource = { type = \"silence\" }\n\n[[songs.stems]]\nname = \"x\"\nsource = { type = \"silence\" }\neffects = [",
        ),
        ("id ../x", "id = \"ok-song\"", "id = \"../x\""),
        ("stem name a/b", "name = \"lead\"", "name = \"a/b\""),
        (
            "cutoff above Nyquist",
            "cutoff = 8000.0",
            "cutoff = 30000.0",
        ),
        ("order 3", "order = 4", "order = 3"),
        ("wrong type", "duration = 2", "duration = \"long\""),
        (
            "unknown align",
            "effects = [",
            "align = \"stretch\"\neffects = [",
        ),
    ];
    let want_in_message = [
        "m.toml:5: song \"ok-song\": key `tempo`: unknown key",
        "m.toml:4: song \"ok-song\": key `bpm`: must be > 0",
        "key `sections`: sections end at 2.500 s (5 beats), after the song's duration of 2.000 s",
        "stem \"lead\": key `name`: duplicate stem name",
        "song \"../x\": key `id`: must match",
        "stem \"a/b\": key `name`: must match",
        "stem \"lead\": key `effects.cutoff`: must be > 0 and below Nyquist (24000 Hz), got 30000",
        "stem \"lead\": key `effects.order`: must be 2, 4, 6 or 8, got 3",
        "m.toml:5: song \"ok-song\": key `duration`",
        "unknown variant `stretch`",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let good = good();
    for ((what, from, to), want) in cases.iter().zip(want_in_message) {
        assert!(
            good.contains(from),
            "{what}: fixture does not contain {from:?}"
        );
        std::fs::write(tmp.path().join("m.toml"), good.replacen(from, to, 1)).unwrap();
        let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: not one line: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(err.contains(want), "{what}: {err:?} lacks {want:?}");
        assert!(
            !tmp.path().join("out").exists(),
            "{what}: rendered something"
        );
    }
    // And the unmodified manifest is fine.
    std::fs::write(tmp.path().join("m.toml"), good).unwrap();
    let o = stemflow(tmp.path(), &["check", "m.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn unsupported_source_fails_the_song_not_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file_song = Song::new("file-song")
        .with("duration = 1")
        .file_stem("vox", "vox.flac");
    let text = format!("{}{file_song}", good());
    std::fs::write(tmp.path().join("m.toml"), text).unwrap();
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["songs"][0]["status"], "ok");
    assert_eq!(summary["songs"][1]["status"], "failed");
    assert!(stderr(&o).contains("stem \"vox\""), "{}", stderr(&o));
    // The failed song leaves only its report; no temporary folder remains.
    assert_eq!(
        files(&tmp.path().join("out/file-song")),
        vec![PathBuf::from("report.json")]
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/file-song/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["errors"][0]["stem"], "vox");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // ok-song, file-song, summary.json and the state folder .stemflow.
    assert_eq!(leftovers.len(), 4, "{leftovers:?}");
    no_temp_left(&tmp.path().join("out"));
}

#[test]
fn rerun_skips_songs_that_are_up_to_date() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.toml"), good()).unwrap();
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["songs"][0]["status"], "skipped");
    let o = stemflow(
        tmp.path(),
        &["render", "m.toml", "--out", "out", "--json", "--force"],
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["songs"][0]["status"], "ok");
    // A changed entry is rendered again.
    std::fs::write(tmp.path().join("m.toml"), good().replace("440.0", "441.0")).unwrap();
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["songs"][0]["status"], "ok");
}

#[test]
fn failed_master_checks_fail_the_song_and_name_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "{}{}{}",
        Song::new("too-quiet")
            .with("duration = 1")
            .silent_stem("nothing"),
        Song::new("too-loud").with("duration = 1").stem(
            "square",
            "{ type = \"tone\", wave = \"square\", freq = 100.0, amp = 4.0 }"
        ),
        Song::new("deflated")
            .with("duration = 1\ncompression = \"deflate\"")
            .stem("hum", "{ type = \"tone\", freq = 50.0, amp = 0.5 }"),
    );
    std::fs::write(tmp.path().join("m.toml"), text).unwrap();
    let o = stemflow(
        tmp.path(),
        &["render", "m.toml", "--out", "out", "--json", "--jobs", "1"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report = |id: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join(format!("out/{id}/report.json"))).unwrap(),
        )
        .unwrap()
    };
    let quiet = report("too-quiet");
    assert_eq!(quiet["status"], "failed");
    assert_eq!(quiet["errors"][0]["stage"], "verify");
    assert!(
        quiet["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("min_rms check failed"),
        "{quiet}"
    );
    let loud = report("too-loud");
    assert!(
        loud["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("clip_ratio check failed"),
        "{loud}"
    );
    // The good song is complete, its audio deflated in the archive.
    assert_eq!(report("deflated")["status"], "ok");
    let mut zip = zip::ZipArchive::new(
        std::fs::File::open(tmp.path().join("out/deflated/deflated.zip")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        zip.by_name("stems/hum.wav").unwrap().compression(),
        zip::CompressionMethod::Deflated
    );
}
