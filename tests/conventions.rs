//! SPEC §12 conventions of the command line: `-` for standard input and
//! output, the output codec from the extension, completions and the man
//! page, `--json` on every subcommand that prints results, help on every
//! argument, `--jobs 0`, error texts without Rust type names, `check`
//! on missing files and the free-text `title`.

use std::path::Path;

use crate::util::{
    Song, fixtures, lead_song, read_wav, stderr, stdout, stemflow, stemflow_with, write_float_wav,
};

/// A short mono float WAV of a known signal: 0.3 s of a 441 Hz sine.
fn input_wav(dir: &Path) -> Vec<f32> {
    let x: Vec<f32> = (0..13_230)
        .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 441.0 / 44_100.0).sin() * 0.5)
        .collect();
    write_float_wav(&dir.join("in.wav"), 44_100, 1, &x);
    x
}

#[test]
fn align_streams_a_wav_to_a_pipe_that_every_decoder_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let x = input_wav(d);
    let args = ["align", "in.wav", "-", "--duration", "0.25"];
    // The test harness reads stdout through a pipe: it cannot seek.
    let piped = stemflow_with(d, &args, b"", &[]);
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    assert!(
        stderr(&piped).contains("11025 frames"),
        "{}",
        stderr(&piped)
    );
    let o = stemflow(d, &["align", "in.wav", "file.wav", "--duration", "0.25"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        piped.stdout == std::fs::read(d.join("file.wav")).unwrap(),
        "the streamed WAV has the bytes of the file"
    );
    // hound reads the stream from memory: exact length, samples = source
    // (truncate keeps the source up to the fade, 10 ms at the end).
    let mut r = hound::WavReader::new(std::io::Cursor::new(&piped.stdout)).unwrap();
    assert_eq!(r.duration(), 11_025);
    let y: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    assert_eq!(y.len(), 11_025);
    assert_eq!(&y[..11_025 - 441], &x[..11_025 - 441]);
    // symphonia (stemflow's decoder) reads it from a pipe too.
    let o = stemflow_with(d, &["verify", "-", "--json"], &piped.stdout, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["frames"].as_u64(), v["file"].as_str()),
        (Some(11_025), Some("-"))
    );
    // ffmpeg, if installed, decodes it from its standard input.
    let ffmpeg = std::process::Command::new("ffmpeg")
        .args([
            "-v", "error", "-f", "wav", "-i", "pipe:0", "-f", "f32le", "pipe:1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    match ffmpeg {
        Err(_) => eprintln!("skipped the ffmpeg decode: ffmpeg is not installed"),
        Ok(mut child) => {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let bytes = piped.stdout.clone();
            let feed = std::thread::spawn(move || stdin.write_all(&bytes));
            let out = child.wait_with_output().unwrap();
            feed.join().unwrap().unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout.len(), 11_025 * 4, "ffmpeg decodes every frame");
        }
    }
}

#[test]
fn pcm_streams_and_stdin_inputs_work_too() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    input_wav(d);
    let wav = std::fs::read(d.join("in.wav")).unwrap();
    // Input from stdin, 16-bit output to stdout: pad byte and all.
    let args = ["align", "-", "-", "--duration", "0.5", "--format", "pcm16"];
    let o = stemflow_with(d, &args, &wav, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = hound::WavReader::new(std::io::Cursor::new(&o.stdout)).unwrap();
    assert_eq!((r.duration(), r.spec().bits_per_sample), (22_050, 16));
    assert_eq!(o.stdout.len() as u64 % 2, 0);
    let args = [
        "align",
        "-",
        "out.wav",
        "--duration",
        "0.5",
        "--format",
        "pcm16",
    ];
    let o = stemflow_with(d, &args, &wav, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (spec, y) = read_wav(&d.join("out.wav"));
    assert_eq!((spec.bits_per_sample, y.len()), (16, 22_050));
    assert!(!d.join("-").exists(), "`-` is never a file name");
    // Bad audio on stdin is named `-`, not by a temporary file.
    for args in [
        &["verify", "-"][..],
        &["align", "-", "x.wav", "--duration", "1"][..],
    ] {
        let o = stemflow_with(d, args, b"not audio at all", &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).starts_with("stemflow: -: "), "{}", stderr(&o));
    }
}

#[test]
fn the_output_codec_follows_the_extension_or_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    input_wav(d);
    for (out, format, says) in [
        ("out.mp3", "float", "cannot write .mp3 files"),
        ("out", "float", "has no extension"),
        ("out.flac", "float", "FLAC holds integer samples only"),
    ] {
        let o = stemflow(
            d,
            &[
                "align",
                "in.wav",
                out,
                "--duration",
                "0.2",
                "--format",
                format,
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{out}");
        assert!(stderr(&o).contains(says), "{out}: {}", stderr(&o));
        assert!(!d.join(out).exists());
    }
    let o = stemflow(
        d,
        &[
            "align",
            "in.wav",
            "ok.FLAC",
            "--duration",
            "0.2",
            "--format",
            "pcm24",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(&std::fs::read(d.join("ok.FLAC")).unwrap()[..4], b"fLaC");
}

#[test]
fn manifests_come_from_stdin_with_paths_from_the_current_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("audio")).unwrap();
    std::fs::copy(
        fixtures().join("sine1k-44k-mono.wav"),
        d.join("audio/sine.wav"),
    )
    .unwrap();
    let text = Song::new("piped")
        .with("duration = 0.5")
        .file_stem("sine", "audio/sine.wav")
        .to_string();
    let o = stemflow_with(d, &["check", "-"], text.as_bytes(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("song \"piped\""));
    assert!(stderr(&o).is_empty(), "the file is found: {}", stderr(&o));
    let o = stemflow_with(
        d,
        &["render", "-", "--out", "out", "--quiet"],
        text.as_bytes(),
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, master) = read_wav(&d.join("out/piped/master.wav"));
    assert_eq!(master.len(), 24_000);
    // A bad manifest on stdin is named as such.
    let o = stemflow_with(d, &["check", "-"], b"[[songs]]\nid = 3\n", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("stemflow: <stdin>:2:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn init_dash_prints_the_demo_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let o = stemflow(tmp.path(), &["init", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let demo = std::fs::read_to_string(fixtures().join("demo.toml")).unwrap();
    assert_eq!(stdout(&o), demo);
    assert!(!tmp.path().join("-").exists());
    let o = stemflow(tmp.path(), &["init", "x.toml", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["path"], "x.toml");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("x.toml")).unwrap(),
        demo
    );
}

/// Every subcommand's name, for the help, completion and man tests.
const SUBCOMMANDS: [&str; 9] = [
    "render",
    "check",
    "timing",
    "verify",
    "align",
    "init",
    "summary",
    "completions",
    "man",
];

#[test]
fn every_subcommand_help_is_snapshotted() {
    let tmp = tempfile::tempdir().unwrap();
    // `render --help` is snapshotted with the top-level help in `cli`.
    for sub in SUBCOMMANDS.into_iter().filter(|s| *s != "render") {
        let o = stemflow(tmp.path(), &[sub, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{sub}");
        insta::assert_snapshot!(format!("help_{sub}"), stdout(&o));
    }
    // The arguments the issue found undescribed.
    let verify = stdout(&stemflow(tmp.path(), &["verify", "-h"]));
    assert!(
        verify.contains("<FILE>  The audio file to check"),
        "{verify}"
    );
    let align = stdout(&stemflow(tmp.path(), &["align", "-h"]));
    assert!(
        align.contains("<INPUT>   The audio file to align"),
        "{align}"
    );
    assert!(align.contains("<OUTPUT>  Where to write"), "{align}");
}

#[test]
fn completions_cover_every_subcommand_in_each_shell() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef stemflow"),
        ("fish", "complete -c stemflow"),
    ] {
        let o = stemflow(tmp.path(), &["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains(marker), "{shell}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
        assert!(script.contains("shard"), "{shell} completes flags");
    }
    let o = stemflow(tmp.path(), &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_man_page_documents_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let o = stemflow(tmp.path(), &["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH stemflow"));
    assert!(page.contains(".TH stemflow"), "a roff title line");
    for sub in SUBCOMMANDS {
        let heading = format!(".SH \"STEMFLOW {}\"", sub.to_uppercase());
        assert!(page.contains(&heading), "{heading}");
    }
    for flag in [
        "\\-\\-shard",
        "\\-\\-strict",
        "\\-\\-from\\-dir",
        "\\-\\-html",
    ] {
        assert!(page.contains(flag), "{flag}");
    }
    // man(1) renders it, where installed.
    let man = std::process::Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "80")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    match man {
        Err(_) => eprintln!("skipped rendering with man(1): not installed"),
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(page.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("STEMFLOW RENDER"), "{text}");
            } else {
                eprintln!("skipped rendering with man(1): it could not run here");
            }
        }
    }
}

#[test]
fn json_on_check_and_align_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    input_wav(d);
    std::fs::write(d.join("m.toml"), lead_song("j", 1.0, 2).to_string()).unwrap();
    let o = stemflow(d, &["check", "m.toml", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let song = &v["songs"][0];
    assert_eq!(song["id"], "j");
    assert_eq!(song["target_frames"], 48_000);
    assert_eq!(song["stems"][0]["name"], "lead");
    assert_eq!(song["timing"]["sections"][0]["name"], "a");
    let o = stemflow(
        d,
        &[
            "align",
            "in.wav",
            "o.wav",
            "--duration",
            "0.6",
            "--json",
            "--strategy",
            "loop",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["frames"].as_u64(), v["source_frames"].as_u64()),
        (Some(26_460), Some(13_230))
    );
    assert_eq!(v["strategy"], "loop");
    for args in [
        &["align", "in.wav", "-", "--duration", "1", "--json"][..],
        &["init", "-", "--json"][..],
    ] {
        let o = stemflow(d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("--json prints on standard output"));
    }
    let o = stemflow(d, &["render", "m.toml", "--jobs", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("must be at least 1"), "{}", stderr(&o));
    assert!(!d.join("stemflow-out").exists());
}

#[test]
fn manifest_errors_name_no_rust_types() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let song = || Song::new("t").with("duration = 1");
    for (text, says) in [
        (
            song().stem("s", "\"tone\"").to_string(),
            "a source table with a `type`",
        ),
        (
            song().stem("s", "3").to_string(),
            "a source table with a `type`",
        ),
        (
            song().silent_stem("s").with("effects = [3]").to_string(),
            "an effect table with a `type`",
        ),
        (song().with("master = 3").to_string(), "expected a table"),
        (song().with("reference = 3").to_string(), "expected a table"),
        ("defaults = 3\n".to_string(), "expected a table"),
        ("limits = 3\n".to_string(), "expected a table"),
    ] {
        std::fs::write(d.join("m.toml"), &text).unwrap();
        let o = stemflow(d, &["check", "m.toml"]);
        assert_eq!(o.status.code(), Some(2), "{text}");
        let e = stderr(&o);
        assert!(e.contains(says), "{text}: {e}");
        for rust in ["Raw", "enum", "struct", "internally tagged"] {
            assert!(!e.contains(rust), "{text}: {e}");
        }
    }
}

#[test]
fn check_warns_on_missing_files_and_strict_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let text = Song::new("m")
        .with("duration = 1")
        .file_stem("gone", "nope/gone.wav")
        .table("reference")
        .with("path = \"ref.wav\"")
        .to_string();
    std::fs::write(d.join("m.toml"), &text).unwrap();
    let o = stemflow(d, &["check", "m.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("warning: song \"m\" stem \"gone\": source nope/gone.wav: file not found"),
        "{e}"
    );
    assert!(
        e.contains("warning: song \"m\": reference ref.wav: file not found"),
        "{e}"
    );
    let o = stemflow(d, &["check", "m.toml", "--strict"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("stem \"gone\""), "{}", stderr(&o));
    // With the files there, --strict passes quietly.
    std::fs::create_dir(d.join("nope")).unwrap();
    input_wav(d);
    std::fs::copy(d.join("in.wav"), d.join("nope/gone.wav")).unwrap();
    std::fs::copy(d.join("in.wav"), d.join("ref.wav")).unwrap();
    let o = stemflow(d, &["check", "m.toml", "--strict"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

/// The bytes of the 256-byte description of a WAV's `bext` chunk.
fn bext_description(wav: &[u8]) -> String {
    let at = wav
        .windows(4)
        .position(|w| w == b"bext")
        .expect("a bext chunk");
    let field = &wav[at + 8..at + 8 + 256];
    let end = field.iter().position(|b| *b == 0).unwrap_or(256);
    String::from_utf8(field[..end].to_vec()).expect("UTF-8 description")
}

#[test]
fn a_title_names_the_song_for_people_and_the_id_names_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let title = "Café del Mar — Nº 5 (live)";
    let text = Song::new("cafe-5")
        .with(&format!("title = \"{title}\""))
        .with("duration = 0.5")
        .stem("lead", "{ type = \"tone\", freq = 440.0, amp = 0.3 }")
        .to_string();
    std::fs::write(d.join("m.toml"), &text).unwrap();
    let o = stemflow(d, &["check", "m.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{text}", stderr(&o));
    assert!(stdout(&o).contains(&format!("song \"cafe-5\" ({title})")));
    let o = stemflow(d, &["render", "m.toml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let song = d.join("out/cafe-5");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(song.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        (report["song"].as_str(), report["title"].as_str()),
        (Some("cafe-5"), Some(title))
    );
    let svg = std::fs::read_to_string(song.join("overview.svg")).unwrap();
    assert!(svg.contains(&format!(">{title} — 0.50 s")), "{svg}");
    let master = std::fs::read(song.join("master.wav")).unwrap();
    assert_eq!(bext_description(&master), format!("song {title}: master"));
    let o = stemflow(d, &["summary", "out"]);
    assert!(stdout(&o).contains(title), "{}", stdout(&o));
    // Control characters are refused; the key is named.
    for bad in ["a\\u0007b", "two\\nlines", "tab\\there", "   "] {
        let t = text.replace(title, bad);
        std::fs::write(d.join("bad.toml"), &t).unwrap();
        let o = stemflow(d, &["check", "bad.toml"]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(stderr(&o).contains("key `title`"), "{bad}: {}", stderr(&o));
    }
}

#[test]
fn progress_bars_on_a_terminal_show_an_eta() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let song = |id: &str| {
        Song::new(id)
            .with("duration = 20\nsample_rate = 8000")
            .stem("t", "{ type = \"tone\", freq = 100.0, amp = 0.1 }")
            .to_string()
    };
    std::fs::write(d.join("m.toml"), song("eta") + &song("other-shard")).unwrap();
    // script(1) gives the run a terminal, as a user's shell would. The
    // overall bar counts the songs of this shard, so it can reach its end.
    let cmd = format!(
        "{} render m.toml --out out --shard 0/2",
        env!("CARGO_BIN_EXE_stemflow")
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(d)
        .stdin(std::process::Stdio::null())
        .output();
    let Some(o) = o.ok().filter(|o| o.status.success()) else {
        eprintln!("skipped: script(1) cannot give the run a terminal here");
        return;
    };
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(screen.contains("ETA"), "{screen}");
    assert!(screen.contains("/1 songs"), "{screen}");
    assert!(!screen.contains("/2 songs"), "{screen}");
}
