//! Issue 15's bound on looped and crossfaded file stems: a stem decodes no
//! more of its file than the output needs plus a bounded pre-roll per
//! jump. Before, preparing a loop decoded and resampled the whole file just
//! to find its last 50 ms, so a looped file was processed once more than it
//! played.
//!
//! The chain is the renderer's (file → resampler → aligner) with a counter
//! between the file and the resampler. The counter sees what the file
//! delivers; what a FLAC seek decodes inside the file before the first
//! frame it delivers (at most one FLAC frame) is bounded by the file
//! source's own unit test.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use stemflow::align::{AlignSettings, Aligner};
use stemflow::error::StageError;
use stemflow::io::flac::FlacOut;
use stemflow::io::wav::WavOut;
use stemflow::plan::{AlignMode, Dither};
use stemflow::source::{FileSource, Resampled, Source};
use stemflow::types::{Block, Frames, SampleFormat, StreamSpec};

const FILE_RATE: u32 = 44_100;
const SONG_RATE: u32 = 48_000;

/// Counts the frames and the seeks that pass through it.
struct Counting {
    inner: FileSource,
    frames: Arc<AtomicU64>,
    seeks: Arc<AtomicU64>,
}

impl Source for Counting {
    fn len(&self) -> Frames {
        self.inner.len()
    }

    fn seek(&mut self, pos: Frames) -> Result<(), StageError> {
        self.seeks.fetch_add(1, Ordering::Relaxed);
        self.inner.seek(pos)
    }

    fn read(&mut self, block: &mut Block) -> Result<usize, StageError> {
        let n = self.inner.read(block)?;
        self.frames.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A stereo take of `frames` frames: tones under deterministic noise, so
/// FLAC cannot shrink it to nothing and every frame differs.
fn take(frames: usize) -> Block {
    let mut b = Block::new(2, frames);
    b.set_frames(frames);
    let mut x: u64 = 1;
    for (i, s) in b.samples_mut().iter_mut().enumerate() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.05;
        let t = (i / 2) as f32 / FILE_RATE as f32;
        *s = 0.4 * (2.0 * std::f32::consts::PI * 220.0 * t).sin() + noise;
    }
    b
}

fn write(path: &Path, audio: &Block) {
    let spec = StreamSpec {
        sample_rate: FILE_RATE,
        channels: 2,
        format: SampleFormat::Pcm24,
    };
    if path.extension().is_some_and(|e| e == "flac") {
        let mut f = FlacOut::create(path, spec, Dither::None, 0).unwrap();
        f.write(audio).unwrap();
        f.finish().unwrap();
    } else {
        let mut w = WavOut::create(path, spec, Dither::None, 0).unwrap();
        w.write(audio).unwrap();
        w.finish().unwrap();
    }
}

/// Renders `target` song frames of the file through the renderer's chain
/// and returns (frames the file delivered, seeks).
fn render(path: &Path, mode: AlignMode, target: u64) -> (u64, u64) {
    let (frames, seeks) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let counting = Counting {
        inner: FileSource::open(path, 2).unwrap(),
        frames: frames.clone(),
        seeks: seeks.clone(),
    };
    let resampled = Resampled::new(Box::new(counting), FILE_RATE, SONG_RATE, 2).unwrap();
    let settings = AlignSettings {
        mode,
        rhythmic: false,
        target: Frames(target),
        sample_rate: SONG_RATE,
        crossfade_ms: 50.0,
        grid: None,
        fade_ms: 10.0,
    };
    let mut aligner = Aligner::new(Box::new(resampled), 2, 1000, settings).unwrap();
    let mut block = Block::new(2, 1000);
    let mut out = 0;
    while let n @ 1.. = aligner.read(&mut block).unwrap() {
        out += n as u64;
    }
    assert_eq!(out, target);
    (
        frames.load(Ordering::Relaxed),
        seeks.load(Ordering::Relaxed),
    )
}

#[test]
fn looped_and_crossfaded_file_stems_decode_what_they_play_plus_a_bounded_pre_roll() {
    let dir = tempfile::tempdir().unwrap();
    // 20 s of file looped to 50 s: the output needs 2.5 file lengths.
    let file_frames = 20 * FILE_RATE as usize;
    let target = 50 * SONG_RATE as u64;
    let audio = take(file_frames);
    let needed = target * FILE_RATE as u64 / SONG_RATE as u64;
    for name in ["take.flac", "take.wav"] {
        let path = dir.path().join(name);
        write(&path, &audio);
        for mode in [AlignMode::Loop, AlignMode::Crossfade] {
            let (frames, seeks) = render(&path, mode, target);
            // Per jump: the resampler's pre-roll (at most two hops of 882
            // frames) and the read-ahead of one hop and one aligner
            // block; 4096 is a generous bound for those.
            let bound = needed + seeks * 4096;
            eprintln!("{name} {mode:?}: {frames} frames for {needed} needed, {seeks} seeks");
            assert!(
                frames <= bound,
                "{name} {mode:?}: {frames} frames delivered, {seeks} seeks; bound {bound}"
            );
            // A handful of jumps (analysis, seams), not one per block.
            assert!(seeks <= 12, "{name} {mode:?}: {seeks} seeks");
            // Processing the file once more, as before, would exceed it.
            assert!(
                frames + (file_frames as u64) > bound,
                "the test's bound is too loose"
            );
        }
    }
}
