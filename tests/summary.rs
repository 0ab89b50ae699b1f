//! `--shard auto` and `stemflow summary`: a catalogue gathered from the
//! output of three shards (each chosen by a scheduler's environment), as a
//! table, JSON, CSV and a self-contained HTML page checked in a headless
//! browser.

use std::path::Path;

use crate::util::{Song, stderr, stdout, stemflow, stemflow_with};

/// Song `i` of a catalogue: 0.4 s of a tone at 8 kHz whose level grows
/// with `i`; every song listed in `silent` is silence, which fails the
/// master's `min_rms` check.
fn catalogue(n: usize, silent: &[usize]) -> String {
    let mut text = String::from("[defaults]\nsample_rate = 8000\n");
    for i in 0..n {
        let mut song = Song::new(&format!("song-{i:02}")).with("duration = 0.4");
        if i == 1 {
            song = song.with("title = \"Élan vital, part 1\"");
        }
        let source = match silent.contains(&i) {
            true => "{ type = \"silence\" }".to_string(),
            false => format!(
                "{{ type = \"tone\", freq = {}.0, amp = {:.2} }}",
                200 + 50 * i,
                0.05 + 0.01 * i as f64
            ),
        };
        text.push_str(&song.stem("tone", &source).to_string());
    }
    text
}

/// The song folders directly in `out`.
fn song_folders(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out)
        .map(|r| {
            r.filter_map(Result::ok)
                .filter(|e| e.path().join("report.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn three_shards_from_scheduler_environments_make_one_catalogue() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("m.toml"), catalogue(7, &[3])).unwrap();
    let render = |out: &str, shard: &str, env: &[(&str, &str)]| {
        let args = [
            "render", "m.toml", "--out", out, "--quiet", "--shard", shard,
        ];
        stemflow_with(d, &args, b"", env)
    };
    // Shard 0 by hand, 1 from a Kubernetes Indexed Job, 2 from a Slurm
    // array declared --array=5-7.
    let o = render("out/a", "0/3", &[]);
    assert_eq!(o.status.code(), Some(1), "song-03 fails: {}", stderr(&o));
    let k8s = [("JOB_COMPLETION_INDEX", "1"), ("STEMFLOW_SHARDS", "3")];
    let o = render("out/b", "auto", &k8s);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "7"),
        ("SLURM_ARRAY_TASK_MIN", "5"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let o = render("out/c", "auto", &slurm);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        song_folders(&d.join("out/a")),
        ["song-00", "song-03", "song-06"]
    );
    assert_eq!(song_folders(&d.join("out/b")), ["song-01", "song-04"]);
    assert_eq!(song_folders(&d.join("out/c")), ["song-02", "song-05"]);
    // A missing environment is refused before anything is rendered.
    let o = render("out/d", "auto", &[("STEMFLOW_SHARDS", "3")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no scheduler index"), "{}", stderr(&o));
    assert!(!d.join("out/d").exists());

    let o = stemflow(d, &["summary", "out"]);
    assert_eq!(o.status.code(), Some(1), "a song failed: {}", stderr(&o));
    let table = stdout(&o);
    insta::assert_snapshot!("catalogue_table", table);
    // Every report of every shard is a row, with its own figures.
    let json = stemflow(d, &["summary", "out", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let songs = v["songs"].as_array().unwrap();
    assert_eq!(songs.len(), 7);
    for (i, s) in songs.iter().enumerate() {
        let id = format!("song-{i:02}");
        assert_eq!(s["id"], id.as_str());
        let shard = ["a", "b", "c"][i % 3];
        assert_eq!(s["folder"], format!("{shard}/{id}").as_str());
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.join("out").join(shard).join(&id).join("report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(s["status"], report["status"]);
        assert_eq!(s["lufs"], report["master"]["lufs"], "{id}");
        assert_eq!(s["true_peak_db"], report["master"]["true_peak_db"], "{id}");
        assert_eq!(s["clip_ratio"], report["master"]["clip_ratio"], "{id}");
        let line = table.lines().find(|l| l.starts_with(&id)).unwrap();
        match report["master"]["lufs"].as_f64() {
            Some(lufs) => {
                assert!(line.contains(&format!(" {lufs:.1} ")), "{line}");
                // BS.1770 of a sine of amplitude a: -0.691 + 10 lg(a²/2),
                // within the K-filter's fraction of a dB at 200-500 Hz.
                let a = 0.05 + 0.01 * i as f64;
                let want = -0.691 + 10.0 * (a * a / 2.0).log10();
                assert!((lufs - want).abs() < 0.5, "{id}: {lufs} vs {want}");
            }
            None => assert!(line.contains("failed"), "{line}"),
        }
    }
    assert_eq!(songs[1]["title"], "Élan vital, part 1");
    assert!(songs[3]["errors"][0].as_str().unwrap().contains("min_rms"));
    let csv = stdout(&stemflow(d, &["summary", "out", "--csv"]));
    assert_eq!(csv.lines().count(), 8);
    assert!(
        csv.starts_with("id,title,status,duration,lufs,true_peak_db,clip_ratio,errors,folder\n")
    );
    assert!(
        csv.contains("song-01,\"Élan vital, part 1\",ok,0.4,"),
        "{csv}"
    );
    // An empty folder has no catalogue.
    std::fs::create_dir(d.join("empty")).unwrap();
    let o = stemflow(d, &["summary", "empty"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no song reports"), "{}", stderr(&o));
}

/// The headless browser, if one is installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Runs `browser` headless, isolated from any profile and the network,
/// with `args`; gives up after two minutes.
fn headless(browser: &str, profile: &Path, args: &[&str]) -> std::process::Output {
    let profile = format!("--user-data-dir={}", profile.display());
    std::process::Command::new("timeout")
        .args(["120", browser])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            profile.as_str(),
        ])
        .args(args)
        .output()
        .expect("timeout runs")
}

#[test]
fn the_html_catalogue_checks_itself_in_a_headless_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let failing = [7, 21, 42];
    std::fs::write(d.join("m.toml"), catalogue(50, &failing)).unwrap();
    let o = stemflow(d, &["render", "m.toml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = stemflow(d, &["summary", "out", "--html"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let page = stdout(&o);
    // Self-contained: nothing is fetched from anywhere.
    for external in ["src=\"http", "href=", "<link", "@import", "url("] {
        assert!(!page.contains(external), "{external}");
    }
    assert_eq!(page.matches("<tr class=\"song").count(), 50);
    assert_eq!(page.matches("<img class=\"overview\"").count(), 47);
    // Failures first, in id order.
    let first_rows: Vec<usize> = failing
        .iter()
        .map(|i| page.find(&format!("<td>song-{i:02}</td>")).unwrap())
        .collect();
    let first_ok = page.find("<td>song-00</td>").unwrap();
    assert!(first_rows.windows(2).all(|w| w[0] < w[1]));
    assert!(first_rows.iter().all(|p| *p < first_ok));
    let html = d.join("catalogue.html");
    std::fs::write(&html, &page).unwrap();

    let Some(browser) = chromium() else {
        eprintln!(
            "skipped the browser check: chromium is not installed (apt-get install chromium)"
        );
        return;
    };
    let url = format!("file://{}", html.display());
    let profile = tempfile::tempdir().unwrap();
    let o = headless(
        browser,
        profile.path(),
        &["--dump-dom", &format!("{url}#selfcheck")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dom = stdout(&o);
    let verdict = dom
        .split("<p id=\"check\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or("");
    assert_eq!(
        verdict,
        "selfcheck rows=50/50 pictures=47/47 failures-first=true sorted=true: PASS"
    );
    // A screenshot of the catalogue, kept beside the test binary's files.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("catalogue-50.png");
    let _ = std::fs::remove_file(&shot);
    let o = headless(
        browser,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2400",
            "--hide-scrollbars",
            &url,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let be32 = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((be32(16), be32(20)), (1400, 2400), "IHDR size");
    eprintln!("catalogue screenshot: {}", shot.display());
}
