//! Data safety (SPEC §11, issue 13): each test reproduces one finding of the
//! adversarial run against the old binary and shows it fixed. The truth is
//! always what is on disk: bytes re-read and compared with a clean render,
//! markers parsed here, locks taken by the test itself.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{Song, no_temp_left, stderr, stemflow, write_float_wav};

/// A 0.5 s 48 kHz mono sine, written with hound (an independent writer).
fn write_input(path: &Path, freq: f32) {
    let samples: Vec<f32> = (0..24_000)
        .map(|i| 0.4 * (i as f32 * freq * std::f32::consts::TAU / 48_000.0).sin())
        .collect();
    write_float_wav(path, 48_000, 1, &samples);
}

/// Song `id` reading `input`, with an archive `<id>.zip`.
fn file_song(id: &str, input: &str, extra: &str) -> Song {
    Song::new(id)
        .with(&format!("duration = 0.5\narchive = \"{id}.zip\"\n{extra}"))
        .file_stem("vox", input)
}

/// A cheap song with no input file.
fn tone_song(id: &str) -> Song {
    Song::new(id)
        .with("duration = 0.5")
        .stem("t", "{ type = \"tone\", freq = 330.0 }")
}

/// Writes `m.toml` (songs `a`, reading vox.wav, and `b`) and vox.wav in `d`.
fn setup(d: &Path, a_extra: &str) {
    write_input(&d.join("vox.wav"), 440.0);
    write_manifest(d, a_extra);
}

/// Writes `m.toml` only: songs `a` (with `a_extra`) and `b`.
fn write_manifest(d: &Path, a_extra: &str) {
    let text = format!("{}{}", file_song("a", "vox.wav", a_extra), tone_song("b"));
    std::fs::write(d.join("m.toml"), text).unwrap();
}

/// Runs `render m.toml --out OUT --json --quiet` plus `extra` in `d`.
fn render(d: &Path, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["render", "m.toml", "--out", out, "--json", "--quiet"];
    args.extend_from_slice(extra);
    stemflow(d, &args)
}

/// The status of song `id` in a run's `--json` summary.
fn status(o: &Output, id: &str) -> String {
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), stderr(o)));
    let song = summary["songs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {summary}"));
    song["status"].as_str().unwrap().to_string()
}

/// Every file under `dir` with its bytes, markers included; the run state
/// folder and summary.json (wall-clock times) left out.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            if rel == Path::new(".stemflow") || rel == Path::new("summary.json") {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// Checks `dir` is a complete song folder by its marker, parsed here: every
/// listed file has the listed size and the bytes of the same file in
/// `clean`, and nothing else is in the folder.
fn assert_complete(dir: &Path, clean: &Path) {
    let text = std::fs::read_to_string(dir.join(".stemflow-song"))
        .unwrap_or_else(|e| panic!("{}: no marker: {e}", dir.display()));
    let marker: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut listed = Vec::new();
    for f in marker["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(rel))
            .unwrap_or_else(|e| panic!("{}: listed {rel} missing: {e}", dir.display()));
        assert_eq!(
            bytes.len() as u64,
            f["bytes"].as_u64().unwrap(),
            "{rel} size"
        );
        assert!(
            bytes == std::fs::read(clean.join(rel)).unwrap(),
            "{rel} differs"
        );
        listed.push(PathBuf::from(rel));
    }
    listed.push(PathBuf::from(".stemflow-song"));
    listed.sort();
    let on_disk: Vec<PathBuf> = tree(dir).into_iter().map(|(p, _)| p).collect();
    assert_eq!(on_disk, listed, "{}", dir.display());
}

#[test]
fn a_folder_stemflow_did_not_write_is_never_touched() {
    // Finding 1: `--out .` with song ids `Documents` and `audio` deleted
    // Documents/thesis.txt and overwrote audio/vox.wav, the song's input.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("Documents")).unwrap();
    std::fs::write(d.join("Documents/thesis.txt"), b"four years of work").unwrap();
    std::fs::create_dir_all(d.join("audio")).unwrap();
    write_input(&d.join("audio/vox.wav"), 440.0);
    let input = std::fs::read(d.join("audio/vox.wav")).unwrap();
    let text = format!(
        "{}{}{}",
        tone_song("Documents"),
        file_song("audio", "audio/vox.wav", ""),
        tone_song("fresh")
    );
    std::fs::write(d.join("m.toml"), text).unwrap();
    for extra in [&[][..], &["--force"]] {
        let o = render(d, ".", extra);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        for id in ["Documents", "audio"] {
            assert_eq!(status(&o, id), "failed");
            let line = err.lines().find(|l| l.contains(&format!("song \"{id}\"")));
            let line = line.unwrap_or_else(|| panic!("no line for {id}: {err}"));
            assert!(line.contains("not written by stemflow"), "{line}");
        }
        assert_eq!(status(&o, "fresh"), "ok");
        assert_eq!(
            std::fs::read(d.join("Documents/thesis.txt")).unwrap(),
            b"four years of work"
        );
        let documents: Vec<_> = std::fs::read_dir(d.join("Documents")).unwrap().collect();
        assert_eq!(documents.len(), 1, "something was added to Documents");
        assert_eq!(std::fs::read(d.join("audio/vox.wav")).unwrap(), input);
        assert_eq!(std::fs::read_dir(d.join("audio")).unwrap().count(), 1);
        no_temp_left(d);
    }
}

/// Renders `m.toml` into `clean` once, for the tests to compare with.
fn clean_render(d: &Path) -> PathBuf {
    let o = render(d, "clean", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    d.join("clean")
}

/// Runs a `--force` render of OUT `k` that aborts right before swap step
/// `n` (the store's fault hook, as abrupt as kill -9).
fn render_killed_at(d: &Path, n: u32, rename: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stemflow"));
    cmd.args([
        "render", "m.toml", "--out", "k", "--force", "--quiet", "--jobs", "1",
    ])
    .current_dir(d)
    .env("STEMFLOW_FAULT_AT", format!("swap:{n}"));
    if rename {
        cmd.env("STEMFLOW_SWAP", "rename");
    }
    cmd.output().unwrap()
}

#[test]
fn a_kill_at_every_swap_step_leaves_a_complete_song() {
    // Finding 2: kill -9 during --force left a folder with an ok report but
    // without master, stems or zip, and the next run skipped it for good.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // One song, so the fault fires in song a's publish.
    write_input(&d.join("vox.wav"), 440.0);
    std::fs::write(d.join("m.toml"), file_song("a", "vox.wav", "").to_string()).unwrap();
    let clean = clean_render(d);
    for rename in [false, true] {
        for n in 1..=5 {
            let _ = std::fs::remove_dir_all(d.join("k"));
            let o = render(d, "k", &[]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let o = render_killed_at(d, n, rename);
            let what = format!("swap:{n} rename={rename}");
            assert_eq!(o.status.code(), None, "{what}: the fault did not fire");
            if !rename {
                // With the exchange, OUT/a is complete at every instant.
                assert_complete(&d.join("k/a"), &clean.join("a"));
            }
            // What any next run does first: clean up, restoring an old folder
            // the fallback swap had set aside.
            stemflow::store::OutDir::open(&d.join("k")).unwrap();
            assert_complete(&d.join("k/a"), &clean.join("a"));
            no_temp_left(&d.join("k"));
            let o = render(d, "k", &[]);
            assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
            assert_eq!(status(&o, "a"), "skipped", "{what}");
            assert!(tree(&d.join("k")) == tree(&clean), "{what}: rerun differs");
        }
    }
}

#[test]
fn a_failed_rerender_keeps_the_old_output_byte_identical() {
    // Finding 3: an input briefly missing replaced every good song reading
    // it with a failed report.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d, "");
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = tree(&d.join("out"));
    std::fs::rename(d.join("vox.wav"), d.join("away.wav")).unwrap();
    for extra in [&["--force"][..], &[]] {
        let o = render(d, "out", extra);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(status(&o, "a"), "failed");
        assert!(
            err.lines()
                .any(|l| l.contains("song \"a\"") && l.contains("vox.wav")),
            "{err}"
        );
        let summary = std::fs::read_to_string(d.join("out/summary.json")).unwrap();
        assert!(
            summary.contains("\"failed\"") && summary.contains("vox.wav"),
            "{summary}"
        );
        assert!(
            tree(&d.join("out")) == before,
            "{extra:?}: old output changed"
        );
        no_temp_left(&d.join("out"));
    }
    // With no previous output, the failed song gets its report and marker only.
    let o = render(d, "new", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let names: Vec<PathBuf> = tree(&d.join("new/a")).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        names,
        [PathBuf::from(".stemflow-song"), "report.json".into()]
    );
    // The input back: the failed folder is replaced by the song.
    std::fs::rename(d.join("away.wav"), d.join("vox.wav")).unwrap();
    let o = render(d, "new", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(tree(&d.join("new")) == before);
}

/// Takes song `id`'s lock in OUT the way another process would.
fn hold_lock(out: &Path, id: &str) -> File {
    std::fs::create_dir_all(out.join(".stemflow/locks")).unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(out.join(format!(".stemflow/locks/{id}.lock")))
        .unwrap();
    file.lock().unwrap();
    file
}

#[test]
fn a_song_locked_by_another_process_is_busy_and_untouched() {
    // Finding 4: two processes on one OUT deleted each other's files.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d, "");
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = tree(&d.join("out/a"));
    let meta = std::fs::metadata(d.join("out/a/master.wav")).unwrap();
    let held = hold_lock(&d.join("out"), "a");
    let o = render(d, "out", &["--force"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(status(&o, "a"), "busy");
    assert_eq!(status(&o, "b"), "ok");
    assert!(err.contains("song \"a\": busy"), "{err}");
    assert!(tree(&d.join("out/a")) == before);
    let after = std::fs::metadata(d.join("out/a/master.wav")).unwrap();
    assert_eq!(after.modified().unwrap(), meta.modified().unwrap());
    // A song that was never rendered: nothing of it appears.
    let fresh = hold_lock(&d.join("fresh"), "a");
    let o = render(d, "fresh", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(status(&o, "a"), "busy");
    assert!(!d.join("fresh/a").exists());
    drop((held, fresh));
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(status(&o, "a"), "skipped");
}

/// Renders OUT `out`, asserts song a's status and that OUT equals `clean`.
fn rerun(d: &Path, want: &str, clean: &Path, what: &str) {
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
    assert_eq!(status(&o, "a"), want, "{what}");
    assert_eq!(status(&o, "b"), "skipped", "{what}");
    assert!(
        tree(&d.join("out")) == tree(clean),
        "{what}: differs from a clean run"
    );
    no_temp_left(&d.join("out"));
}

#[test]
fn resume_rerenders_what_it_cannot_vouch_for() {
    // Finding 7: resume trusted report.json alone.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d, "");
    let clean = clean_render(d);
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    rerun(d, "skipped", &clean, "unchanged");
    std::fs::remove_file(d.join("out/a/stems/vox.wav")).unwrap();
    rerun(d, "ok", &clean, "stem deleted");
    let master = OpenOptions::new()
        .write(true)
        .open(d.join("out/a/master.wav"))
        .unwrap();
    master.set_len(1000).unwrap();
    drop(master);
    rerun(d, "ok", &clean, "master truncated");
    std::fs::remove_file(d.join("out/a/a.zip")).unwrap();
    rerun(d, "ok", &clean, "zip deleted");

    // Same size, same mtime, other content: only a content hash sees it.
    let input = d.join("vox.wav");
    let mtime = std::fs::metadata(&input).unwrap().modified().unwrap();
    let len = std::fs::metadata(&input).unwrap().len();
    write_input(&input, 660.0);
    assert_eq!(std::fs::metadata(&input).unwrap().len(), len);
    File::options()
        .write(true)
        .open(&input)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&input).unwrap().modified().unwrap(),
        mtime
    );
    let clean = d.join("clean");
    std::fs::remove_dir_all(&clean).unwrap();
    let clean = clean_render(d);
    rerun(d, "ok", &clean, "input swapped");
}

#[test]
fn resume_rerenders_when_keep_files_is_switched_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d, "keep_files = false");
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!d.join("out/a/master.wav").exists());
    // Only the manifest changes: the input keeps its bytes and mtime.
    write_manifest(d, "keep_files = true");
    let clean = clean_render(d);
    assert!(clean.join("a/master.wav").exists());
    rerun(d, "ok", &clean, "keep_files switched to true");
}

#[test]
fn no_temporary_state_outlives_a_run() {
    // Finding 11: a stale song temp (13 MB) stayed forever once the song was
    // later skipped; so did a summary temp.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d, "");
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // What a process killed mid-song and mid-summary leaves (no lock held).
    let state = d.join("out/.stemflow");
    for entry in [
        "tmp/a.999999.0/stems",
        "tmp/summary.json.999999.1",
        "trash/b.999999.2",
    ] {
        std::fs::create_dir_all(state.join(entry)).unwrap();
    }
    std::fs::write(
        state.join("tmp/a.999999.0/stems/vox.wav"),
        vec![0u8; 1 << 20],
    )
    .unwrap();
    std::fs::write(state.join("tmp/summary.json.999999.1/summary.json"), b"{").unwrap();
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(status(&o, "a"), "skipped");
    assert_eq!(status(&o, "b"), "skipped");
    no_temp_left(&d.join("out"));
    // And a skipped song leaves no staging folder of its own either.
    let o = render(d, "out", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    no_temp_left(&d.join("out"));
    let summary = std::fs::read_to_string(d.join("out/summary.json")).unwrap();
    assert!(summary.contains("\"skipped\""), "{summary}");
}
