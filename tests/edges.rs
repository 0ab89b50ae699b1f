//! Edge cases of SPEC §11 outside the manifest corpus: inputs that are not
//! regular files, a manifest too big or endless, output to a closed pipe or
//! a full disk, an interrupt during the reference pre-pass or after the
//! last song, and the memory a 10,000-song manifest costs.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::util::{Song, lead_song, stderr, stemflow, write_float_wav};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stemflow"))
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Waits for `child` at most `limit`; kills it (and fails) past that.
fn wait_within(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}: it blocked");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    bin()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn check_of_dev_zero_fails_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let o = stemflow(tmp.path(), &["check", "/dev/zero"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(
        err,
        "stemflow: /dev/zero: cannot read manifest: is a character device, not a regular file\n"
    );
}

#[test]
fn a_manifest_over_the_size_limit_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    // Sparse: 64 MiB + 1 byte of nothing, costing no disk.
    let f = std::fs::File::create(tmp.path().join("m.toml")).unwrap();
    f.set_len(64 * 1024 * 1024 + 1).unwrap();
    let o = stemflow(tmp.path(), &["check", "m.toml"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "m.toml: cannot read manifest: larger than the limit of 67108864 bytes (64 MiB)"
        ),
        "{err}"
    );
}

#[test]
fn a_fifo_as_manifest_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    mkfifo(&tmp.path().join("m.toml"));
    let o = wait_within(
        spawn(tmp.path(), &["render", "m.toml", "--out", "out"]),
        Duration::from_secs(5),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("m.toml: cannot read manifest: is a FIFO (named pipe)"),
        "{err}"
    );
}

/// A FIFO as a stem's file and as a reference: each song fails at once
/// naming it, the good song renders.
#[test]
fn fifo_inputs_fail_their_song_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    mkfifo(&d.join("pipe.wav"));
    let stem = Song::new("stem")
        .with("duration = 0.5")
        .file_stem("vox", "pipe.wav");
    let reference = Song::new("ref")
        .table("reference")
        .with("path = \"pipe.wav\"")
        .stem("t", "{ type = \"tone\", freq = 100.0 }");
    let text = format!("{}{stem}{reference}", lead_song("good", 0.5, 1));
    std::fs::write(d.join("m.toml"), text).unwrap();
    let o = wait_within(
        spawn(d, &["render", "m.toml", "--out", "out", "--jobs", "1"]),
        Duration::from_secs(20),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for song in ["stem", "ref"] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("song \"{song}\"")))
            .unwrap_or_else(|| panic!("no line for {song}: {err}"));
        assert!(
            line.contains("pipe.wav: is a FIFO (named pipe), not a regular file"),
            "{line}"
        );
    }
    assert!(d.join("out/good/master.wav").is_file());
}

/// A render whose stdout reader has gone: no panic, quiet, exit 0.
#[test]
fn render_json_into_a_closed_pipe_keeps_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("m.toml"),
        lead_song("a", 0.5, 1).to_string(),
    )
    .unwrap();
    let mut child = spawn(tmp.path(), &["render", "m.toml", "--out", "out", "--json"]);
    drop(child.stdout.take());
    let o = wait_within(child, Duration::from_secs(30));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err, "", "a closed pipe is not an error to report");
}

#[test]
fn render_to_a_full_disk_says_so_once_and_keeps_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("m.toml"),
        lead_song("a", 0.5, 1).to_string(),
    )
    .unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = bin()
        .args(["render", "m.toml", "--out", "out"])
        .current_dir(tmp.path())
        .stdout(full)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(
        err,
        "stemflow: cannot write to standard output: No space left on device (os error 28)\n"
    );
}

#[test]
fn check_piped_into_head_stops_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    // Enough output to fill the pipe long after the reader left.
    let text: String = (0..3000)
        .map(|i| lead_song(&format!("s{i}"), 0.5, 1).to_string())
        .collect();
    std::fs::write(tmp.path().join("m.toml"), text).unwrap();
    let mut child = spawn(tmp.path(), &["check", "m.toml"]);
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("song \"s0\""), "{first}");
    let o = wait_within(child, Duration::from_secs(30));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err, "");
}

/// SIGINT arriving after every song finished (here while the summary is
/// being printed into a pipe nobody reads yet) interrupts nothing: exit 0.
#[test]
fn sigint_after_the_last_song_keeps_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Over 64 KiB of JSON summary: printing it blocks on the pipe.
    let text: String = (0..700)
        .map(|i| {
            Song::new(&format!("song-{i:04}"))
                .with("duration = 0.01\narchive = \"\"")
                .stem("t", "{ type = \"tone\", freq = 440.0 }")
                .to_string()
        })
        .collect();
    std::fs::write(d.join("m.toml"), text).unwrap();
    let mut child = spawn(
        d,
        &["render", "m.toml", "--out", "out", "--json", "--quiet"],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !d.join("out/summary.json").exists() {
        assert!(Instant::now() < deadline, "the batch never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let mut json = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    let o = wait_within(child, Duration::from_secs(30));
    assert!(json.len() > 65536, "the summary did not fill the pipe");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The reference pre-pass stops as soon as the interrupt flag is set,
/// instead of decoding the whole file first.
#[test]
fn the_reference_check_answers_an_interrupt() {
    use stemflow::error::StageError;
    use stemflow::plan::ReferencePlan;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ref.wav");
    write_float_wav(&path, 48000, 1, &vec![0.25f32; 48000 * 30]);
    let plan = ReferencePlan {
        path,
        sample_rate: None,
        channels: None,
        min_duration: None,
    };
    let info = stemflow::verify::check_reference_until(&plan, &AtomicBool::new(false)).unwrap();
    assert_eq!(info.frames, 48000 * 30);
    let start = Instant::now();
    let stopped = stemflow::verify::check_reference_until(&plan, &AtomicBool::new(true));
    assert!(matches!(stopped, Err(StageError::Cancelled)), "{stopped:?}");
    assert!(start.elapsed() < Duration::from_millis(500));
}

/// A full filesystem (a 64 KiB tmpfs, where mounting is allowed): writing
/// `summary.json` returns the error and leaves the old file whole, no
/// 0-byte file and no temporary. (Song files need no such care: they are
/// written into a staging folder that is published only when complete.)
#[test]
fn summary_on_a_full_disk_keeps_the_old_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        let out = stemflow::store::OutDir::open(&mnt).unwrap();
        out.write_atomic("summary.json", b"{\"old\": true}")
            .unwrap();
        let e = out
            .write_atomic("summary.json", &vec![b' '; 200_000])
            .unwrap_err();
        let stemflow::store::StoreError::Io { source, .. } = &e else {
            panic!("not an I/O error: {e}");
        };
        assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{e}");
        let summary = mnt.join("summary.json");
        assert_eq!(std::fs::read(&summary).unwrap(), b"{\"old\": true}");
        let tmp_dir = mnt.join(".stemflow/tmp");
        assert_eq!(
            std::fs::read_dir(&tmp_dir).unwrap().count(),
            0,
            "no temporary left"
        );
    });
    let _ = Command::new("umount").arg(&mnt).status();
    result.unwrap();
}

/// Peak memory (VmHWM, in KiB) of `stemflow args` run in `dir` and its
/// exit code. Read from /proc while it runs (every 2 ms; the last reading
/// before exit): `ru_maxrss` from wait4 would not do, since a child's
/// counts the memory of the test process it was spawned from.
fn peak_kib(dir: &Path, args: &[&str]) -> (Option<i32>, u64) {
    let mut child = bin()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(kib) = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak = peak.max(kib);
        }
        if let Some(exit) = child.try_wait().unwrap() {
            return (exit.code(), peak);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SPEC §11: checking a 10,000-song manifest (about 11 MB) and rendering
/// one song of it stay under 128 MiB (before song-by-song parsing: ~490 MB).
#[test]
fn a_ten_thousand_song_manifest_costs_under_128_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let song = |i: usize| {
        Song::new(&format!("song-{i:05}"))
            .with("duration = 8\narchive = \"\"\nseed = 7\nsample_rate = 48000")
            .section("intro", 4)
            .section("verse", 8)
            .section("outro", 4)
            .stem("bass", "{ type = \"tone\", freq = 110.0, amp = 0.5 }")
            .with("align = \"loop\"\ngain = 0.25\neffects = [{ type = \"lowpass\", cutoff = 8000.0, order = 4 }]")
            .stem("lead", "{ type = \"tone\", freq = 440.0, amp = 0.5, wave = \"saw\" }")
            .with("gain = 0.25\neffects = [{ type = \"lowpass\", cutoff = 8000.0, order = 4 }, { type = \"echo\", delay_ms = 250.0, decay = 0.3, taps = 3 }]")
            .stem("drums", "{ type = \"drums\", amp = 0.5, hats = true }")
            .with("gain = 0.3")
            .stem("pad", "{ type = \"noise\", amp = 0.1 }")
            .with("gain = 0.1\neffects = [{ type = \"highpass\", cutoff = 200.0, order = 2 }, { type = \"peak\", freq = 1000.0, q = 1.0, gain_db = 3.0 }]")
            .stem("vox", "{ type = \"tone\", freq = 330.0, amp = 0.3, wave = \"triangle\" }")
            .with("role = \"melodic\"\ngain_db = -12.0\npan = 0.0")
            .to_string()
    };
    let text: String = (0..10_000).map(song).collect();
    assert!(text.len() > 10_000_000, "{}", text.len());
    std::fs::write(tmp.path().join("m.toml"), text).unwrap();
    let limit = 128 * 1024;
    let (code, kib) = peak_kib(tmp.path(), &["check", "m.toml"]);
    assert_eq!(code, Some(0));
    assert!(kib > 1000, "no reading: {kib} KiB");
    assert!(kib < limit, "check: {kib} KiB");
    let args = [
        "render", "m.toml", "--out", "out", "--shard", "0/10000", "--quiet",
    ];
    let (code, kib) = peak_kib(tmp.path(), &args);
    assert_eq!(code, Some(0));
    assert!(kib < limit, "one-song shard: {kib} KiB");
}
