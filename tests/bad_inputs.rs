//! The bad-input corpus: one test per case. Each asserts the exit code, a
//! one-line message naming what is wrong, no panic, nothing written outside
//! OUT, no temporary folder left, and (for song-level failures) that the
//! other song of the manifest still renders.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{
    Song, files, fixtures, lead_song, no_temp_left, random_bytes, stderr, stemflow, write_float_wav,
};

/// The song every case edits or renders beside the bad one.
fn good_song() -> Song {
    lead_song("good", 0.5, 1)
}

/// Files in the work dir outside OUT (the manifest and inputs are allowed).
fn stray_files(dir: &Path, allowed: &[&str]) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| !p.starts_with("out") && !allowed.iter().any(|a| p == Path::new(a)))
        .collect()
}

fn common_checks(o: &Output, dir: &Path, allowed: &[&str]) -> String {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        stray_files(dir, allowed),
        Vec::<PathBuf>::new(),
        "files outside OUT"
    );
    no_temp_left(&dir.join("out"));
    err
}

/// A manifest error: exit 2, one line containing `want`, nothing rendered.
fn manifest_error(text: &str, want: &str) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.toml"), text).unwrap();
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out"]);
    let err = common_checks(&o, tmp.path(), &["m.toml"]);
    assert_eq!(o.status.code(), Some(2), "{err}");
    // Shown with --nocapture: the corpus's messages, for review.
    println!("exit 2: {}", err.trim_end());
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("stemflow: m.toml:"), "{err}");
    assert!(err.contains(want), "{err:?} lacks {want:?}");
    assert!(!tmp.path().join("out").exists(), "rendered something");
}

/// The good song with `from` replaced by `to` (which must apply).
fn good_with(from: &str, to: &str) -> String {
    let good = good_song().to_string();
    assert!(good.contains(from), "fixture lacks {from:?}");
    good.replacen(from, to, 1)
}

/// The good song followed by `n` more (silent) stems.
fn good_with_stems(n: usize) -> Song {
    (0..n).fold(good_song(), |song, i| song.silent_stem(&format!("s{i}")))
}

macro_rules! manifest_cases {
    ($($name:ident: $text:expr => $want:expr;)*) => {
        $(#[test] fn $name() { manifest_error(&$text, $want); })*
    };
}

manifest_cases! {
    unknown_key: good_with("bpm = 120", "bpm = 120\ntempo = 3") => "m.toml:5: song \"good\": key `tempo`: unknown key";
    unknown_stem_key: good_with("effects = [", "colour = 1\neffects = [") => "stem \"lead\": key `colour`: unknown key";
    wrong_type: good_with("bpm = 120", "bpm = \"fast\"") => "key `bpm`: invalid type";
    zero_bpm: good_with("bpm = 120", "bpm = 0") => "key `bpm`: must be > 0";
    negative_bpm: good_with("bpm = 120", "bpm = -120") => "key `bpm`: must be > 0";
    nan_bpm: good_with("bpm = 120", "bpm = nan") => "key `bpm`: must be > 0 and <= 1000, got NaN";
    inf_duration: good_with("duration = 0.5", "duration = inf") => "key `duration`: must be > 0";
    nan_gain: good_with("effects = [", "gain = nan\neffects = [") => "stem \"lead\": key `gain`";
    sections_past_the_duration: good_with("beats = 1", "beats = 2") => "key `sections`: sections end at 1.000 s";
    duplicate_stem_names: good_with("effects = [", "[[songs.stems]]\nname = \"lead\"\nsource = { type = \"silence\" }\n\n[[songs.stems]]\nname = \"x\"\nsource = { type = \"silence\" }\neffects = [") => "stem \"lead\": key `name`: duplicate stem name";
    duplicate_song_ids: format!("{0}{0}", good_song()) => "song \"good\": key `id`: duplicate song id";
    id_with_slash: good_with("id = \"good\"", "id = \"a/b\"") => "song \"a/b\": key `id`: must match";
    id_dot_dot: good_with("id = \"good\"", "id = \"..\"") => "song \"..\": key `id`: must match";
    id_dot_dot_slash: good_with("id = \"good\"", "id = \"../x\"") => "song \"../x\": key `id`: must match";
    id_with_nul: good_with("id = \"good\"", "id = \"a\\u0000b\"") => "key `id`: must match";
    id_of_200_characters: good_with("id = \"good\"", &format!("id = \"{}\"", "a".repeat(200))) => "key `id`: must match";
    stem_name_with_slash: good_with("name = \"lead\"", "name = \"a/b\"") => "stem \"a/b\": key `name`: must match";
    stem_name_dot_dot: good_with("name = \"lead\"", "name = \"..\"") => "stem \"..\": key `name`: must match";
    stem_name_with_nul: good_with("name = \"lead\"", "name = \"x\\u0000\"") => "key `name`: must match";
    cutoff_at_nyquist: good_with("cutoff = 8000.0", "cutoff = 24000.0") => "key `effects.cutoff`: must be > 0 and below Nyquist (24000 Hz), got 24000";
    cutoff_above_nyquist: good_with("cutoff = 8000.0", "cutoff = 30000.0") => "key `effects.cutoff`: must be > 0 and below Nyquist";
    unsupported_order: good_with("order = 4", "order = 3") => "key `effects.order`: must be 2, 4, 6 or 8, got 3";
    empty_stems_list: good_song().to_string().split("[[songs.stems]]").next().unwrap() => "key `stems`: the song has no stems";
    no_songs: "[defaults]\nseed = 3\n" => "key `songs`: the manifest has no songs";
    absurd_duration: good_with("duration = 0.5", "duration = 1e12") => "key `duration`: must be > 0 and at most 86400 s";
    absurd_length: good_with("freq = 440.0", "freq = 440.0, length = 1e9") => "key `source.length`: must be between 0 and 86400 s";
    hundred_thousand_stems: good_with_stems(100_000).to_string() => "100001 stems; at most 256 are allowed";
    archive_leaving_the_song_folder: good_with("duration = 0.5", "duration = 0.5\narchive = \"../../escape.zip\"") => "key `archive`: must be a plain file name";
    archive_named_like_an_output: good_with("duration = 0.5", "duration = 0.5\narchive = \"master.wav\"") => "key `archive`: \"master.wav\" is a name stemflow writes itself";
    bad_limit: format!("[limits]\nmax_stems = 0\n{}", good_song()) => "key `limits.max_stems`: must be at least 1";
    toml_syntax: good_with("bpm = 120", "bpm = = 120") => "m.toml:4:";
    id_summary_json: good_with("id = \"good\"", "id = \"summary.json\"") => "m.toml:3: song \"summary.json\": key `id`: \"summary.json\" is a name stemflow writes itself";
    id_dot_stemflow: good_with("id = \"good\"", "id = \".stemflow\"") => "song \".stemflow\": key `id`: must match";
    id_stems: good_with("id = \"good\"", "id = \"stems\"") => "key `id`: \"stems\" is a name stemflow writes itself";
    id_deliver_in_capitals: good_with("id = \"good\"", "id = \"DELIVER\"") => "key `id`: \"DELIVER\" is a name stemflow writes itself";
    archive_named_overview_svg: good_with("duration = 0.5", "duration = 0.5\narchive = \"overview.svg\"") => "m.toml:6: song \"good\": key `archive`: \"overview.svg\" is a name stemflow writes itself";
    archive_named_summary_json: good_with("duration = 0.5", "duration = 0.5\narchive = \"summary.json\"") => "key `archive`: \"summary.json\" is a name stemflow writes itself";
    archive_named_like_the_marker: good_with("duration = 0.5", "duration = 0.5\narchive = \".stemflow-song\"") => "key `archive`: \".stemflow-song\" is a name stemflow writes itself";
    archive_with_a_control_character: good_with("duration = 0.5", "duration = 0.5\narchive = \"a\\u0007.zip\"") => "key `archive`: must be a plain file name inside the song folder (no slashes or control characters)";
    section_name_with_an_escape_sequence: good_with("name = \"a\"", "name = \"a\\u001b[31m\"") => "m.toml:8: song \"good\": key `sections.name`: \"a\\u{1b}[31m\" contains a control character";
    section_name_with_a_newline: good_with("name = \"a\"", "name = \"a\\nb\"") => "key `sections.name`: \"a\\nb\" contains a control character";
    stem_name_with_a_bell: good_with("name = \"lead\"", "name = \"le\\u0007ad\"") => "key `name`: must match";
    song_shorter_than_one_frame: good_with("duration = 0.5", "duration = 1e-6") => "m.toml:5: song \"good\": key `duration`: 0.000001 s is shorter than one frame at 48000 Hz";
}

#[test]
fn raised_limits_allow_what_the_defaults_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("[limits]\nmax_stems = 300\n{}", good_with_stems(299));
    std::fs::write(tmp.path().join("m.toml"), text).unwrap();
    let o = stemflow(tmp.path(), &["check", "m.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// A song-level failure: exit 1, a line naming the song and `want`, the
/// failed song leaves only its report, the good song is complete.
fn song_failure(bad_song: Song, setup: impl Fn(&Path), want: &[&str], allowed: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d);
    std::fs::write(d.join("m.toml"), format!("{}{bad_song}", good_song())).unwrap();
    let o = stemflow(d, &["render", "m.toml", "--out", "out"]);
    let mut allowed = allowed.to_vec();
    allowed.push("m.toml");
    let err = common_checks(&o, d, &allowed);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("song \"bad\""))
        .unwrap_or_else(|| panic!("no line for the bad song: {err}"));
    println!("exit 1: {line}");
    for w in want {
        assert!(line.contains(w), "{line:?} lacks {w:?}");
    }
    assert_eq!(
        files(&d.join("out/bad")),
        vec![PathBuf::from("report.json")]
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/bad/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(
        files(&d.join("out/good")).len(),
        5,
        "the good song is complete"
    );
}

/// The bad song: one stem reading `path`.
fn file_stem_song(path: &str) -> Song {
    Song::new("bad")
        .with("duration = 0.5")
        .file_stem("vox", path)
}

/// A bad song with a reference at `ref.wav` (plus `keys`) and one tone.
fn reference_song(keys: &str) -> Song {
    Song::new("bad")
        .table("reference")
        .with("path = \"ref.wav\"")
        .with(keys)
        .stem("t", "{ type = \"tone\", freq = 100.0 }")
}

fn good_wav_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("sine1k-44k-mono.wav")).unwrap()
}

#[test]
fn truncated_wav_header() {
    song_failure(
        file_stem_song("t.wav"),
        |d| std::fs::write(d.join("t.wav"), &good_wav_bytes()[..30]).unwrap(),
        &["stem \"vox\"", "t.wav"],
        &["t.wav"],
    );
}

#[test]
fn truncated_wav_data() {
    // A valid header announcing more data than the file holds.
    song_failure(
        file_stem_song("t.wav"),
        |d| std::fs::write(d.join("t.wav"), &good_wav_bytes()[..5000]).unwrap(),
        &["stem \"vox\"", "t.wav: is truncated"],
        &["t.wav"],
    );
}

#[test]
fn random_bytes_named_wav() {
    let bytes = random_bytes(4000);
    song_failure(
        file_stem_song("r.wav"),
        |d| std::fs::write(d.join("r.wav"), &bytes).unwrap(),
        &["stem \"vox\"", "r.wav: not a readable audio file"],
        &["r.wav"],
    );
}

#[test]
fn zero_length_file() {
    song_failure(
        file_stem_song("z.wav"),
        |d| std::fs::write(d.join("z.wav"), b"").unwrap(),
        &["stem \"vox\"", "z.wav: is empty"],
        &["z.wav"],
    );
}

#[test]
fn float_wav_holding_nan() {
    let mut x = vec![0.25f32; 1000];
    x[300] = f32::NAN;
    song_failure(
        file_stem_song("n.wav"),
        |d| write_float_wav(&d.join("n.wav"), 48000, 1, &x),
        &["stem \"vox\"", "n.wav: NaN or infinite sample at frame 300"],
        &["n.wav"],
    );
}

#[test]
fn three_channel_file() {
    song_failure(
        file_stem_song("3.wav"),
        |d| write_float_wav(&d.join("3.wav"), 48000, 3, &[0.1; 300]),
        &["stem \"vox\"", "3.wav: has 3 channels"],
        &["3.wav"],
    );
}

#[test]
fn directory_as_path() {
    song_failure(
        file_stem_song("dir.wav"),
        |d| std::fs::create_dir(d.join("dir.wav")).unwrap(),
        &["stem \"vox\"", "dir.wav: is a directory"],
        &[],
    );
}

#[test]
fn missing_path() {
    song_failure(
        file_stem_song("nope.flac"),
        |_| {},
        &["stem \"vox\"", "nope.flac: No such file"],
        &[],
    );
}

#[test]
fn missing_reference() {
    song_failure(
        reference_song(""),
        |_| {},
        &["Reference stage", "ref.wav: No such file"],
        &[],
    );
}

#[test]
fn reference_shorter_than_its_minimum() {
    song_failure(
        reference_song("min_duration = 1"),
        |d| write_float_wav(&d.join("ref.wav"), 48000, 1, &[0.1; 4800]),
        &[
            "reference check failed",
            "ref.wav: lasts 0.100 s, less than the minimum of 1 s",
        ],
        &["ref.wav"],
    );
}

#[test]
fn song_too_big_for_the_disk() {
    // 24 h of 384 kHz stereo float, 8 stems: terabytes.
    let song = (0..8).fold(
        Song::new("bad").with("duration = 86400\nsample_rate = 384000\nchannels = 2"),
        |song, i| song.silent_stem(&format!("s{i}")),
    );
    song_failure(song, |_| {}, &["needs about", "MB are free"], &[]);
}

#[test]
fn out_is_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.toml"), good_song().to_string()).unwrap();
    std::fs::write(tmp.path().join("out"), b"not a folder").unwrap();
    let o = stemflow(tmp.path(), &["render", "m.toml", "--out", "out"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("out:"), "{err}");
    assert!(!err.contains("panicked"));
    assert_eq!(
        std::fs::read(tmp.path().join("out")).unwrap(),
        b"not a folder"
    );
}

/// Runs `stemflow` as an unprivileged user when the tests run as root, so
/// that permissions apply.
fn stemflow_unprivileged(dir: &Path, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_stemflow");
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        // The build folder may sit under a home only root can enter: run a
        // copy from the (world-readable) test folder.
        let copy = dir.join("stemflow-copy");
        std::fs::copy(bin, &copy).unwrap();
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy);
        c
    } else {
        std::process::Command::new(bin)
    };
    cmd.args(args).current_dir(dir).output().unwrap()
}

#[test]
fn out_on_a_read_only_folder() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join("m.toml"), good_song().to_string()).unwrap();
    std::fs::set_permissions(d.join("m.toml"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::set_permissions(d.join("out"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let o = stemflow_unprivileged(d, &["render", "m.toml", "--out", "out"]);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(files(&d.join("out")).is_empty());
}

#[test]
fn write_failure_mid_song_fails_only_that_song() {
    // RLIMIT_FSIZE of 1 MB (ignoring SIGXFSZ, so writes fail with EFBIG):
    // the long song's first WAV cannot be completed; the short one fits.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let bad = Song::new("bad")
        .with("duration = 10\narchive = \"\"")
        .stem("t", "{ type = \"tone\", freq = 100.0 }");
    std::fs::write(d.join("m.toml"), format!("{}{bad}", good_song())).unwrap();
    let bin = env!("CARGO_BIN_EXE_stemflow");
    let o = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("trap '' XFSZ; ulimit -f 2048; exec '{bin}' render m.toml --out out --jobs 1"),
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let err = common_checks(&o, d, &["m.toml"]);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = err.lines().find(|l| l.contains("song \"bad\"")).unwrap();
    assert!(line.contains("File too large"), "{line}");
    assert_eq!(
        files(&d.join("out/bad")),
        vec![PathBuf::from("report.json")]
    );
    let report = std::fs::read_to_string(d.join("out/bad/report.json")).unwrap();
    assert!(report.contains("File too large"), "{report}");
    assert_eq!(files(&d.join("out/good")).len(), 5);
}

#[test]
fn sigterm_mid_render_leaves_no_partial_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let song = Song::new("long")
        .with("duration = 3000")
        .stem("a", "{ type = \"tone\", freq = 100.0 }")
        .with("effects = [{ type = \"lowpass\", cutoff = 5000.0, order = 8 }]");
    std::fs::write(d.join("m.toml"), song.to_string()).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stemflow"))
        .args(["render", "m.toml", "--out", "out"])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the song is writing, then terminate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let writing = || {
        std::fs::read_dir(d.join("out/.stemflow/tmp"))
            .into_iter()
            .flatten()
            .any(|e| e.unwrap().path().join("master.wav").exists())
    };
    while !writing() {
        assert!(std::time::Instant::now() < deadline, "render never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    let left: Vec<PathBuf> = files(&d.join("out"))
        .into_iter()
        .filter(|p| p != Path::new("summary.json"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    no_temp_left(&d.join("out"));
}

#[test]
fn an_rf64_input_without_its_ds64_chunk_is_refused_clearly() {
    // A RIFF file relabelled RF64: its sizes are nowhere to be found.
    let mut bytes = good_wav_bytes();
    bytes[..4].copy_from_slice(b"RF64");
    song_failure(
        file_stem_song("long.wav"),
        |d| std::fs::write(d.join("long.wav"), &bytes).unwrap(),
        &[
            "stem \"vox\"",
            "long.wav: is an RF64 file stemflow cannot read (it reads 16- and 24-bit PCM and 32-bit float with a ds64 chunk)",
        ],
        &["long.wav"],
    );
}
