//! Property test: random manifests (strategies, lengths around the target,
//! effects, rates, formats, channel counts) always give exactly T frames of
//! finite samples, and the same bytes at two random block sizes.

use std::path::Path;

use crate::util::{Rng, Song, files, output_tree, read_wav, stderr, stemflow};

fn random_effect(r: &mut Rng, nyquist: f64) -> String {
    let f = 20.0 + r.unit() * (nyquist * 0.95 - 20.0);
    match r.below(7) {
        0 => format!(
            "{{ type = \"lowpass\", cutoff = {f:.3}, order = {} }}",
            2 * (1 + r.below(4))
        ),
        1 => format!(
            "{{ type = \"highpass\", cutoff = {f:.3}, order = {} }}",
            2 * (1 + r.below(4))
        ),
        2 => format!(
            "{{ type = \"bandpass\", freq = {f:.3}, q = {:.3} }}",
            0.3 + 5.0 * r.unit()
        ),
        3 => format!(
            "{{ type = \"peak\", freq = {f:.3}, q = {:.3}, gain_db = {:.2} }}",
            0.3 + 5.0 * r.unit(),
            24.0 * r.unit() - 12.0
        ),
        4 => format!(
            "{{ type = \"highshelf\", freq = {f:.3}, gain_db = {:.2} }}",
            24.0 * r.unit() - 12.0
        ),
        5 => format!(
            "{{ type = \"echo\", delay_ms = {:.2}, decay = {:.3}, taps = {} }}",
            1.0 + 200.0 * r.unit(),
            r.unit() * 0.9,
            1 + r.below(4)
        ),
        _ => format!("{{ type = \"gain\", db = {:.2} }}", 12.0 * r.unit() - 9.0),
    }
}

fn random_manifest(r: &mut Rng, songs: usize) -> String {
    (0..songs).map(|i| random_song(r, i).to_string()).collect()
}

/// Song `i`: random rate, length, tempo, channels, format, seed and
/// clipping, and one to four random stems.
fn random_song(r: &mut Rng, i: usize) -> Song {
    let rate = [22050u32, 44100, 48000][r.below(3) as usize];
    let duration = 0.05 + r.unit() * 0.8;
    let bpm = format!("{:.2}", 40.0 + r.unit() * 200.0);
    let mut song = Song::at_bpm(&format!("p{i}"), bpm)
        .with(&format!(
            "duration = {duration:.4}\nsample_rate = {rate}\nchannels = {}\nformat = \"{}\"\nseed = {}\narchive = \"\"",
            1 + r.below(2),
            r.pick(&["float", "pcm24", "pcm16"]),
            r.below(1000),
        ))
        .table("master")
        .with(&format!("clip = \"{}\"", r.pick(&["hard", "none"])))
        .table("verify")
        .with("max_clip_ratio = 1.0\nmin_rms = 0.0");
    for s in 0..1 + r.below(4) {
        song = random_stem(r, song, s, rate, duration);
    }
    song
}

/// `song` with stem `s`: a random source whose length is around the
/// song's `duration`, strategy, fades, pan, gain and up to three effects.
fn random_stem(r: &mut Rng, song: Song, s: u64, rate: u32, duration: f64) -> Song {
    // Around the target: shorter, longer, equal, empty, or tiny.
    let length = match r.below(6) {
        0 => 0.0,
        1 => duration,
        2 => 0.001 + r.unit() * 0.01,
        _ => duration * (0.2 + 1.6 * r.unit()),
    };
    let source = match r.below(4) {
        0 => format!(
            "{{ type = \"tone\", wave = \"{}\", freq = {:.2}, amp = {:.3}, length = {length:.5} }}",
            r.pick(&["sine", "square", "saw", "triangle"]),
            30.0 + r.unit() * 3000.0,
            r.unit()
        ),
        1 => format!(
            "{{ type = \"noise\", amp = {:.3}, length = {length:.5} }}",
            r.unit()
        ),
        2 => format!(
            "{{ type = \"drums\", amp = {:.3}, hats = {}, length = {length:.5} }}",
            r.unit(),
            r.below(2) == 0
        ),
        _ => format!("{{ type = \"silence\", length = {length:.5} }}"),
    };
    let effects: Vec<String> = (0..r.below(4))
        .map(|_| random_effect(r, rate as f64 / 2.0))
        .collect();
    song.stem(&format!("s{s}"), &source).with(&format!(
        "align = \"{}\"\ncrossfade_ms = {:.2}\nfade_ms = {:.2}\npan = {:.3}\ngain = {:.3}\neffects = [{}]",
        r.pick(&["auto", "zero-pad", "loop", "crossfade", "truncate"]),
        r.unit() * 80.0,
        r.unit() * 30.0,
        2.0 * r.unit() - 1.0,
        r.unit(),
        effects.join(", ")
    ))
}

fn check_outputs(out: &Path, manifest: &str) {
    let plan = stemflow::manifest::parse(manifest, "p.toml", Path::new(".")).unwrap();
    for song in &plan.songs {
        let target = song.target_frames().0 as usize;
        let dir = out.join(&song.id);
        let wavs: Vec<_> = files(&dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        assert_eq!(wavs.len(), song.stems.len() + 1, "{}", song.id);
        for p in wavs {
            let (spec, x) = read_wav(&dir.join(&p));
            assert_eq!(
                x.len(),
                target * spec.channels as usize,
                "{}/{}: not T frames",
                song.id,
                p.display()
            );
            assert!(
                x.iter().all(|v| v.is_finite()),
                "{}/{}: non-finite sample",
                song.id,
                p.display()
            );
        }
    }
}

#[test]
fn random_manifests_give_t_frames_and_block_size_invariant_bytes() {
    for seed in 1..=4u64 {
        let mut r = Rng(seed * 7919);
        let manifest = random_manifest(&mut r, 8);
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("p.toml"), &manifest).unwrap();
        let blocks = [1 + r.below(300), 300 + r.below(5000)];
        let mut trees = Vec::new();
        for (k, b) in blocks.iter().enumerate() {
            let out = format!("out{k}");
            let o = stemflow(
                tmp.path(),
                &[
                    "render",
                    "p.toml",
                    "--out",
                    &out,
                    "--quiet",
                    "--block-size",
                    &b.to_string(),
                ],
            );
            assert_eq!(
                o.status.code(),
                Some(0),
                "seed {seed}, block {b}: {}\n{manifest}",
                stderr(&o)
            );
            let dir = tmp.path().join(&out);
            check_outputs(&dir, &manifest);
            trees.push(output_tree(&dir));
        }
        assert!(
            trees[0] == trees[1],
            "seed {seed}: bytes differ between block sizes {blocks:?}\n{manifest}"
        );
    }
}
