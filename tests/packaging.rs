//! The crate as others consume it: the library API gives what the command
//! gives (same bytes, same validation), and the binary keeps to the memory
//! a low-RAM container grants (SPEC §12). The static build and the empty
//! root are `benches/static_root.sh`: a second full dependency build is
//! too slow for every test run, so here only the command it shares with
//! the Dockerfile is checked.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use stemflow::{Manifest, RenderOptions, Status};

use crate::util::{Song, files, output_tree, stderr, stemflow};

/// Two short songs, 0.5 s at 44.1 kHz: a filtered tone and noise.
fn two_songs() -> String {
    let song = |id: &str, source: &str| {
        Song::new(id)
            .with("duration = 0.5\nsample_rate = 44100")
            .section("a", 1)
            .stem("s", source)
            .with("effects = [{ type = \"lowpass\", cutoff = 2000.0, order = 2 }]")
            .to_string()
    };
    song("one", "{ type = \"tone\", freq = 220.0 }")
        + &song("two", "{ type = \"noise\", amp = 0.1 }")
}

#[test]
fn library_render_writes_the_bytes_the_command_writes() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m.toml"), two_songs()).unwrap();
    let o = stemflow(
        d.path(),
        &[
            "render", "m.toml", "--out", "cli", "--shard", "1/2", "--quiet",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let manifest = Manifest::load(d.path().join("m.toml")).unwrap();
    let mut opts = RenderOptions::default();
    opts.shard = Some((1, 2));
    opts.block_size = 1000;
    let summary = stemflow::render(&manifest, d.path().join("lib"), &opts).unwrap();

    assert_eq!(
        output_tree(&d.path().join("lib")),
        output_tree(&d.path().join("cli"))
    );
    assert!(d.path().join("lib/two/master.wav").is_file());
    assert!(
        !d.path().join("lib/one").exists(),
        "song 0 is not in shard 1/2"
    );
    // The returned summary is the one written, and the command's.
    let written: stemflow::Summary =
        serde_json::from_slice(&std::fs::read(d.path().join("lib/summary.json")).unwrap()).unwrap();
    assert_eq!(summary, written);
    let cli: stemflow::Summary =
        serde_json::from_slice(&std::fs::read(d.path().join("cli/summary.json")).unwrap()).unwrap();
    let ids = |s: &stemflow::Summary| -> Vec<(String, Status, f64)> {
        s.songs
            .iter()
            .map(|x| (x.id.clone(), x.status, x.duration))
            .collect()
    };
    assert_eq!(ids(&summary), [("two".to_string(), Status::Ok, 0.5)]);
    assert_eq!(ids(&summary), ids(&cli));
}

#[test]
fn library_check_gives_the_plan_in_frames() {
    let m = Manifest::parse(&two_songs(), "m.toml", ".").unwrap();
    assert_eq!(m.song_ids().collect::<Vec<_>>(), ["one", "two"]);
    let songs = m.check();
    // 0.5 s at 44.1 kHz; one beat at 120 BPM is 0.5 s = 22050 frames.
    assert_eq!(songs[0].frames, 22_050);
    assert_eq!(songs[0].sample_rate, 44_100);
    assert_eq!(songs[0].timing.sections[0].end_frame, 22_050);
    assert_eq!(songs[1].stems[0].source, "noise");
    assert_eq!(songs[1].stems[0].effects, 1);
    assert!(songs.iter().all(|s| s.warnings.is_empty()));
}

#[test]
fn library_manifest_errors_name_line_and_key_as_the_command_does() {
    let text = two_songs().replace("freq = 220.0", "freq = -3.0");
    let e = Manifest::parse(&text, "m.toml", ".").unwrap_err();
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m.toml"), &text).unwrap();
    let o = stemflow(d.path(), &["check", "m.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).trim(), format!("stemflow: {e}"));
    let line = text
        .lines()
        .position(|l| l.contains("freq = -3.0"))
        .unwrap()
        + 1;
    assert_eq!(e.line, Some(line));
    assert_eq!(e.song.as_deref(), Some("one"));
    assert_eq!(e.stem.as_deref(), Some("s"));
}

#[test]
fn library_render_stopped_before_it_starts_writes_no_song() {
    let d = tempfile::tempdir().unwrap();
    let m = Manifest::parse(&two_songs(), "m.toml", ".").unwrap();
    let stop = AtomicBool::new(true);
    let out = d.path().join("out");
    let summary = stemflow::render_until(&m, &out, &RenderOptions::default(), &stop).unwrap();
    assert!(
        summary
            .songs
            .iter()
            .all(|s| s.status == Status::Interrupted)
    );
    assert_eq!(files(&out), [Path::new("summary.json")]);
}

/// Runs the binary with its address space limited to `bytes` (what
/// `prlimit --as` does): reservations count, not only touched pages, so
/// thread stacks and allocator arenas must fit too.
fn render_demo_limited(dir: &Path, bytes: u64) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stemflow"));
    cmd.args(["render", "--out", "out", "--quiet", "--jobs", "2"])
        .current_dir(dir)
        .stdin(Stdio::null());
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the
    // parent; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.output().unwrap()
}

/// SPEC §12: the demo renders in a 64 MiB address space (the container
/// image's claim, `benches/static_root.sh` for the static binary), and the
/// limit is real: 8 MiB is not enough.
#[test]
fn demo_renders_in_64_mib_of_address_space() {
    let d = tempfile::tempdir().unwrap();
    let o = render_demo_limited(d.path(), 64 << 20);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(d.path().join("out/demo/audio_deliverables.zip").is_file());

    let tight = tempfile::tempdir().unwrap();
    let o = render_demo_limited(tight.path(), 8 << 20);
    assert_ne!(o.status.code(), Some(0), "8 MiB should not be enough");
}

/// The line of `text` that runs `cargo build`, without a `RUN ` prefix.
fn build_command(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim().trim_start_matches("RUN ").trim())
        .filter(|l| l.contains("cargo build"))
        .collect();
    assert_eq!(lines.len(), 1, "one build command: {lines:?}");
    lines[0].to_string()
}

/// The script that stands in for the image builds exactly what the
/// Dockerfile builds, and the image holds nothing but that binary.
#[test]
fn dockerfile_builds_what_the_empty_root_script_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docker = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let script = std::fs::read_to_string(root.join("benches/static_root.sh")).unwrap();
    let build = build_command(&docker);
    assert_eq!(build, build_command(&script));
    assert!(build.contains("+crt-static") && build.contains("--target x86_64-unknown-linux-gnu"));
    let last_stage = docker.rsplit("\nFROM ").next().unwrap();
    assert!(last_stage.starts_with("scratch"), "{last_stage}");
    let copies: Vec<&str> = last_stage
        .lines()
        .filter(|l| l.starts_with("COPY"))
        .collect();
    assert_eq!(
        copies,
        ["COPY --from=build /src/target/x86_64-unknown-linux-gnu/release/stemflow /stemflow"]
    );
}
