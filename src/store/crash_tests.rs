//! Crash tests: a publish killed (`abort`, as hard as `kill -9` for the
//! file system) before each of its file operations, through the
//! `STEMFLOW_FAULT_AT=swap:N` hook, must leave `OUT/<id>` complete (old or
//! new) and a store the next [`OutDir::open`] cleans fully.
//!
//! The test binary re-runs itself: `fault_child` does one publish when
//! `STEMFLOW_TEST_CRASH_OUT` names an OUT, and does nothing otherwise.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::swap::tests::publish;
use super::{Existing, OutDir};

const CHILD_ENV: &str = "STEMFLOW_TEST_CRASH_OUT";
const OLD: &[(&str, &[u8])] = &[("master.wav", b"old-master"), ("stems/a.wav", b"aaaa")];
const NEW: &[(&str, &[u8])] = &[("master.wav", b"new-master"), ("stems/b.wav", b"bbbbbb")];

#[test]
fn fault_child() {
    let Some(out) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = OutDir::open(Path::new(&out)).expect("child open");
    publish(&dir, "s", NEW, "new");
}

/// Which version `OUT/s` is, checking it is complete and matches its marker.
fn version(out: &Path) -> Option<String> {
    let dir = OutDir::open(out).expect("open");
    check_version(&dir, out)
}

fn check_version(dir: &OutDir, out: &Path) -> Option<String> {
    match dir.inspect("s").expect("inspect") {
        Existing::Absent => None,
        Existing::Ours { marker } => {
            dir.verify_complete("s", &marker).expect("complete");
            let files = if marker.fingerprint == "old" {
                OLD
            } else {
                NEW
            };
            assert_eq!(marker.files.len(), files.len());
            for (path, bytes) in files {
                assert_eq!(fs::read(out.join("s").join(path)).expect("read"), *bytes);
            }
            Some(marker.fingerprint)
        }
        other => panic!("OUT/s is {other:?}"),
    }
}

/// Runs `fault_child` aborting before operation `n`; returns whether it aborted.
fn run_child(out: &Path, n: u32, fallback: bool) -> bool {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "store::crash_tests::fault_child", "--nocapture"])
        .args(["--test-threads=1"])
        .env(CHILD_ENV, out)
        .env("STEMFLOW_FAULT_AT", format!("swap:{n}"));
    if fallback {
        cmd.env("STEMFLOW_SWAP", "rename");
    } else {
        cmd.env_remove("STEMFLOW_SWAP");
    }
    let output = cmd.output().expect("spawn child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let aborted = stderr.contains("aborting (test hook)");
    assert!(aborted || output.status.success(), "child failed: {stderr}");
    assert_eq!(aborted, !output.status.success(), "{stderr}");
    aborted
}

/// Kills a publish before each operation `1..=ops` (and once not at all):
/// `expected(n)` is the version `OUT/s` must be before any cleanup (`None`:
/// missing, allowed only in the fallback's gap) and `after(n)` after reopen.
fn crash_every_step(
    with_old: bool,
    fallback: bool,
    ops: u32,
    expected: impl Fn(u32) -> Option<&'static str>,
    after: impl Fn(u32) -> Option<&'static str>,
) {
    for n in 1..=ops + 1 {
        let t = tempfile::tempdir().expect("tempdir");
        if with_old {
            publish(&OutDir::open(t.path()).expect("open"), "s", OLD, "old");
        }
        let aborted = run_child(t.path(), n, fallback);
        assert_eq!(aborted, n <= ops, "step {n}");
        // Look before cleaning: what a reader sees right after the kill.
        let dir = OutDir::open_without_cleanup(t.path());
        let seen = check_version(&dir, t.path());
        assert_eq!(
            seen.as_deref(),
            expected(n),
            "right after a kill at step {n}"
        );
        assert_eq!(
            version(t.path()).as_deref(),
            after(n),
            "after reopen, step {n}"
        );
        for sub in ["tmp", "trash"] {
            let left = fs::read_dir(t.path().join(".stemflow").join(sub))
                .expect("ls")
                .count();
            assert_eq!(left, 0, "{sub} not cleaned after a kill at step {n}");
        }
    }
}

#[test]
fn a_kill_at_any_step_of_an_exchange_leaves_old_or_new() {
    let v = |n| Some(if n <= 2 { "old" } else { "new" });
    crash_every_step(true, false, 5, v, v);
}

#[test]
fn a_kill_at_any_step_of_the_fallback_swap_is_recovered() {
    let before = |n| match n {
        1 | 2 => Some("old"),
        3 => None,
        _ => Some("new"),
    };
    let after = |n| Some(if n <= 3 { "old" } else { "new" });
    crash_every_step(true, true, 5, before, after);
}

#[test]
fn a_kill_while_publishing_a_new_song_leaves_nothing_or_all() {
    let v = |n| (n > 2).then_some("new");
    crash_every_step(false, false, 2, v, v);
}
