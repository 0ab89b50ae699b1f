//! Batch behaviour: many songs, jobs, shards, isolation, fail-fast,
//! interruption and resume, and quiet stderr off a terminal.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::util::{Song, files, no_temp_left, output_tree, stderr, stdout, stemflow};

/// Song `i` of a batch, with no stems yet (tempos vary so songs differ).
fn song(i: usize) -> Song {
    Song::at_bpm(&format!("song-{i:03}"), 90 + i % 60).with("duration = 0.5")
}

/// Song `i` with a looped lead and drums.
fn normal_song(i: usize) -> Song {
    song(i)
        .stem(
            "lead",
            &format!(
                "{{ type = \"tone\", freq = {}.0, length = 0.3 }}",
                200 + 7 * i
            ),
        )
        .with("align = \"loop\"\ngain = 0.5")
        .stem("drums", "{ type = \"drums\", length = 0.5 }")
        .with("gain = 0.5")
}

/// Song `i` reading a file that does not exist.
fn missing_file_song(i: usize, path: &str) -> Song {
    song(i).file_stem("vox", path)
}

fn hundred(broken: Option<usize>) -> String {
    (0..100)
        .map(|i| {
            if Some(i) == broken {
                missing_file_song(i, "missing.flac").to_string()
            } else {
                normal_song(i).to_string()
            }
        })
        .collect()
}

fn render(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["render", "m.toml", "--out", out];
    args.extend_from_slice(extra);
    stemflow(dir, &args)
}

/// Renders m.toml into `out` as shards 0/3, 1/3 and 2/3, checking that
/// each renders exactly its songs.
fn render_in_three_shards(d: &Path, out: &str) {
    for k in 0..3 {
        let o = render(d, out, &["--shard", &format!("{k}/3")]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(out).join("summary.json")).unwrap())
                .unwrap();
        let ids: Vec<&str> = s["songs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.iter()
                .all(|id| id[5..].parse::<usize>().unwrap() % 3 == k),
            "shard {k}: {ids:?}"
        );
    }
}

#[test]
fn hundred_songs_with_jobs_and_shards_give_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("m.toml"), hundred(None)).unwrap();
    let o = render(d, "j2", &["--jobs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        o.stderr.is_empty(),
        "no progress output off a terminal: {}",
        stderr(&o)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("j2/summary.json")).unwrap()).unwrap();
    let songs = summary["songs"].as_array().unwrap();
    assert_eq!(songs.len(), 100);
    assert!(songs.iter().all(|s| s["status"] == "ok"));
    let full = output_tree(&d.join("j2"));
    assert_eq!(
        full.len(),
        100 * 6,
        "2 stems, master, overview, report, zip per song"
    );

    let o = render(d, "j1", &["--jobs", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        output_tree(&d.join("j1")) == full,
        "--jobs 1 differs from --jobs 2"
    );

    render_in_three_shards(d, "shards");
    assert!(
        output_tree(&d.join("shards")) == full,
        "the union of the shards differs from the full run"
    );

    // One song with a missing file: only it fails; the rest are identical.
    std::fs::write(d.join("m.toml"), hundred(Some(42))).unwrap();
    let o = render(d, "broken", &["--jobs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("broken/song-042/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["status"], "failed");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("missing.flac"),
        "{report}"
    );
    let others: Vec<_> = full
        .iter()
        .filter(|(p, _)| !p.starts_with("song-042"))
        .cloned()
        .collect();
    let got: Vec<_> = output_tree(&d.join("broken"))
        .into_iter()
        .filter(|(p, _)| !p.starts_with("song-042"))
        .collect();
    assert!(
        got == others,
        "the other 99 songs differ from the run without the broken one"
    );
}

#[test]
fn fail_fast_starts_no_song_after_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let text = format!(
        "{}{}{}",
        missing_file_song(0, "missing.wav"),
        normal_song(1),
        normal_song(2)
    );
    std::fs::write(d.join("m.toml"), text).unwrap();
    let o = render(d, "out", &["--jobs", "1", "--fail-fast", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let status: Vec<&str> = s["songs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["failed", "skipped", "skipped"]);
    assert!(!d.join("out/song-001").exists());
}

/// Song `i` of the interrupted run: 240 s, a filtered tone and drums.
fn long_song(i: usize) -> Song {
    let lowpass = "effects = [{ type = \"lowpass\", cutoff = 5000.0, order = 8 }]";
    Song::new(&format!("long-{i}"))
        .with("duration = 240")
        .stem(
            "a",
            &format!("{{ type = \"tone\", freq = {}.0 }}", 100 + 50 * i),
        )
        .with("gain = 0.3")
        .with(lowpass)
        .stem("b", "{ type = \"drums\" }")
        .with("gain = 0.3")
}

/// The long songs (of `count`) whose folder exists in `out`, each with its
/// master's mtime; fails if one of them is partial.
fn complete_songs(out: &Path, count: usize) -> Vec<(usize, SystemTime)> {
    let mut done = Vec::new();
    for i in 0..count {
        let dir = out.join(format!("long-{i}"));
        if dir.exists() {
            // A song folder that exists is complete.
            assert_eq!(
                files(&dir).len(),
                6,
                "long-{i} is partial: {:?}",
                files(&dir)
            );
            let master = std::fs::metadata(dir.join("master.wav")).unwrap();
            done.push((i, master.modified().unwrap()));
        }
    }
    done
}

#[test]
fn interrupted_run_leaves_no_partial_files_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Eight songs long enough that SIGINT lands while some are rendering.
    let text: String = (0..8).map(|i| long_song(i).to_string()).collect();
    std::fs::write(d.join("m.toml"), text).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stemflow"))
        .args(["render", "m.toml", "--out", "out", "--jobs", "2"])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first song is complete, then interrupt.
    let deadline = SystemTime::now() + Duration::from_secs(60);
    while !d.join("out/long-0/report.json").exists() && !d.join("out/long-1/report.json").exists() {
        assert!(SystemTime::now() < deadline, "no song finished in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));

    let out = d.join("out");
    no_temp_left(&out);
    let done = complete_songs(&out, 8);
    assert!(!done.is_empty() && done.len() < 8, "{done:?}");
    // The songs the interrupt stopped say so, in the table and the summary.
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    for (i, entry) in first["songs"].as_array().unwrap().iter().enumerate() {
        let was_done = done.iter().any(|(j, _)| *j == i);
        let want = if was_done { "ok" } else { "interrupted" };
        assert_eq!(entry["status"], want, "long-{i}");
    }
    assert!(stdout(&o).contains("interrupted"), "{}", stdout(&o));

    let o = render(d, "out", &["--jobs", "2", "--json", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (i, entry) in s["songs"].as_array().unwrap().iter().enumerate() {
        let was_done = done.iter().any(|(j, _)| *j == i);
        assert_eq!(
            entry["status"],
            if was_done { "skipped" } else { "ok" },
            "long-{i}"
        );
        // A skipped song keeps the loudness its kept render measured.
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("long-{i}/report.json"))).unwrap(),
        )
        .unwrap();
        assert!(report["master"]["lufs"].is_f64(), "long-{i}");
        assert_eq!(entry["lufs"], report["master"]["lufs"], "long-{i}");
        assert_eq!(
            entry["true_peak_db"], report["master"]["true_peak_db"],
            "long-{i}"
        );
    }
    for (i, mtime) in done {
        let now = std::fs::metadata(out.join(format!("long-{i}/master.wav")))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(now, mtime, "long-{i} was rewritten");
    }
}

#[test]
fn sync_flushes_without_changing_a_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let songs: String = (0..3).map(|i| normal_song(i).to_string()).collect();
    std::fs::write(d.join("m.toml"), songs).unwrap();
    let plain = render(d, "plain", &[]);
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    let synced = render(d, "synced", &["--sync"]);
    assert_eq!(synced.status.code(), Some(0), "{}", stderr(&synced));
    // Timings differ; every song's files are the same.
    let songs_only = |out: &str| -> Vec<_> {
        output_tree(&d.join(out))
            .into_iter()
            .filter(|(p, _)| p.components().count() > 1)
            .collect()
    };
    let (a, b) = (songs_only("plain"), songs_only("synced"));
    assert_eq!(
        a.len(),
        3 * 6,
        "report, overview, zip, master and two stems per song"
    );
    assert!(a == b, "--sync changed the output");
}
