//! The library's public face: a validated [`Manifest`], its [`check`]
//! (`Manifest::check`), and [`render`] into an output folder.
//!
//! Why a separate, small surface instead of public stage modules: the plan,
//! the processors and the batch runner change shape with every feature,
//! and callers (scripts, services, the Python binding) need only what the
//! command line offers — the same validation, the same batch with its
//! resume and locks, the same summary — returned as values, never printed.
//! Options and results are `#[non_exhaustive]` so fields can be added
//! without breaking them.
//!
//! [`check`]: Manifest::check

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::batch::{self, BatchError, BatchOptions};
use crate::manifest::{self, ManifestError};
use crate::output::Summary;
use crate::plan::{Plan, SongPlan};
use crate::progress::Progress;
use crate::timing::{Meter, Timing};

/// The largest `block_size` the command line accepts; larger blocks buy
/// nothing and cost memory per stem.
const MAX_BLOCK_SIZE: usize = 1 << 20;

/// A validated manifest: every song's settings resolved, every default
/// applied, every rule of the command line's `check` passed.
///
/// ```
/// let demo = stemflow::Manifest::demo();
/// assert_eq!(demo.song_ids().collect::<Vec<_>>(), ["demo"]);
///
/// let bad = stemflow::Manifest::parse("[[songs]]\nid = \"x\"\nbpm = -1\n", "m.toml", ".");
/// let err = bad.unwrap_err();
/// assert_eq!(err.line, Some(3));
/// assert_eq!(err.key.as_deref(), Some("bpm"));
/// ```
#[derive(Clone, Debug)]
pub struct Manifest {
    plan: Plan,
}

#[allow(
    clippy::result_large_err,
    reason = "the error is what the caller needs whole (file, line, song, stem, key); \
              it is made once per run, so its size costs nothing"
)]
impl Manifest {
    /// Reads and validates the manifest at `path`; relative file paths in
    /// it start at its folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        manifest::load(path.as_ref()).map(|plan| Manifest { plan })
    }

    /// Validates manifest text. `name` is the file name errors show;
    /// relative file paths in it start at `base_dir`.
    pub fn parse(
        text: &str,
        name: &str,
        base_dir: impl AsRef<Path>,
    ) -> Result<Manifest, ManifestError> {
        manifest::parse(text, name, base_dir.as_ref()).map(|plan| Manifest { plan })
    }

    /// The built-in demo ([`crate::DEMO_MANIFEST`]).
    pub fn demo() -> Manifest {
        // The demo is a fixed, tested file: it always validates.
        Manifest::parse(crate::DEMO_MANIFEST, "<built-in demo>", ".")
            .expect("the built-in demo manifest is valid")
    }

    /// The folder relative file paths in the manifest start at.
    pub fn base_dir(&self) -> &Path {
        &self.plan.base_dir
    }

    /// The song ids, in manifest order (the order `shard` counts in).
    pub fn song_ids(&self) -> impl Iterator<Item = &str> {
        self.plan.songs.iter().map(|s| s.id.as_str())
    }

    /// What `stemflow check` shows, song by song: settings, stems, timing
    /// and warnings. Renders nothing and reads no audio.
    ///
    /// ```
    /// let songs = stemflow::Manifest::demo().check();
    /// assert_eq!(songs[0].frames, 137 * 48000);
    /// assert_eq!(songs[0].timing.sections[0].name, "intro");
    /// assert!(songs[0].stems.iter().any(|s| s.name == "bass" && s.align == "loop"));
    /// ```
    pub fn check(&self) -> Vec<SongCheck> {
        self.plan.songs.iter().map(SongCheck::of).collect()
    }
}

/// One song as [`Manifest::check`] describes it.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SongCheck {
    pub id: String,
    pub bpm: f64,
    pub meter: Meter,
    /// Target seconds; `None` when the reference's length decides it.
    pub duration: Option<f64>,
    pub sample_rate: u32,
    pub channels: u16,
    /// `float`, `pcm24` or `pcm16`.
    pub format: &'static str,
    /// Target length in frames (0 while the reference decides it).
    pub frames: u64,
    /// The archive's file name, if the song has one.
    pub archive: Option<String>,
    pub stems: Vec<StemCheck>,
    pub timing: Timing,
    /// What `check` warns about (sections past the duration, ...).
    pub warnings: Vec<String>,
}

/// One stem in a [`SongCheck`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct StemCheck {
    pub name: String,
    /// The manifest's source type: `tone`, `drums`, `noise`, `silence`, `file`.
    pub source: &'static str,
    /// The alignment strategy's manifest name.
    pub align: &'static str,
    /// Linear mix gain.
    pub gain: f64,
    /// How many effects the stem's chain has.
    pub effects: usize,
}

impl SongCheck {
    fn of(song: &SongPlan) -> SongCheck {
        SongCheck {
            id: song.id.clone(),
            bpm: song.bpm,
            meter: song.meter,
            duration: song.duration,
            sample_rate: song.spec.sample_rate,
            channels: song.spec.channels,
            format: song.spec.format.name(),
            frames: song.target_frames_or_zero().0,
            archive: song.archive.clone(),
            stems: song
                .stems
                .iter()
                .map(|s| StemCheck {
                    name: s.name.clone(),
                    source: s.source.kind(),
                    align: s.align.name(),
                    gain: s.gain,
                    effects: s.effects.len(),
                })
                .collect(),
            timing: song.timing.clone(),
            warnings: batch::plan_warnings(song),
        }
    }
}

/// How [`render`] runs; `RenderOptions::default()` is the command line's
/// defaults without progress bars.
///
/// ```
/// let mut opts = stemflow::RenderOptions::default();
/// opts.jobs = 2;
/// opts.shard = Some((0, 4)); // songs 0, 4, 8, ...
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Songs rendered at once; jobs beyond the number of songs render the
    /// stems of a song in parallel. Default: the number of CPUs.
    pub jobs: usize,
    /// Frames per processing block (1 ..= 1 048 576); never changes the
    /// output. Default 4096.
    pub block_size: usize,
    /// `(k, n)`: render only the songs at 0-based positions i with
    /// i % n == k.
    pub shard: Option<(usize, usize)>,
    /// Re-render songs whose previous report says ok.
    pub force: bool,
    /// Start no new song after the first failure.
    pub fail_fast: bool,
    /// Flush every file to disk before a song's folder is put in place.
    pub sync: bool,
    /// Keep the rendered files of a song that fails its checks in
    /// `OUT/.stemflow/failed/<id>/`.
    pub keep_failed: bool,
    /// Draw progress bars on stderr (the only output a render makes).
    pub progress: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            jobs: BatchOptions::default_jobs(),
            block_size: 4096,
            shard: None,
            force: false,
            fail_fast: false,
            sync: false,
            keep_failed: false,
            progress: false,
        }
    }
}

/// Why [`render`] did not run. A song that fails is not an error: it is in
/// the [`Summary`] with its status and errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// An option is out of range.
    #[error("{0}")]
    Options(String),
    /// The output folder or its state cannot be used, or `summary.json`
    /// cannot be written.
    #[error(transparent)]
    Out(#[from] BatchError),
}

/// Renders every song of `manifest` (or of its shard) into `out`, exactly
/// as `stemflow render` does — one folder per song, swapped in whole,
/// resumed songs skipped, `summary.json` written — and returns the summary
/// it wrote.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let text = "[[songs]]\nid = \"a\"\nbpm = 120\nduration = 0.25\n\
///             [[songs.stems]]\nname = \"hum\"\nsource = { type = \"tone\", freq = 60.0 }\n";
/// let manifest = stemflow::Manifest::parse(text, "a.toml", ".")?;
/// let out = tempfile::tempdir()?;
/// let opts = stemflow::RenderOptions::default();
/// let first = stemflow::render(&manifest, out.path(), &opts)?;
/// assert_eq!(first.songs[0].status, stemflow::Status::Ok);
/// assert_eq!(first.songs[0].duration, 0.25);
/// // Nothing changed: the rerun skips the song.
/// let again = stemflow::render(&manifest, out.path(), &opts)?;
/// assert_eq!(again.songs[0].status, stemflow::Status::Skipped);
/// # Ok(())
/// # }
/// ```
pub fn render(
    manifest: &Manifest,
    out: impl AsRef<Path>,
    options: &RenderOptions,
) -> Result<Summary, RenderError> {
    render_until(manifest, out, options, &AtomicBool::new(false))
}

/// [`render`] that stops when `stop` becomes true (what SIGINT does to the
/// command): songs in flight are abandoned and their temporary folders
/// removed, songs not started are listed as interrupted, finished songs stay.
pub fn render_until(
    manifest: &Manifest,
    out: impl AsRef<Path>,
    options: &RenderOptions,
    stop: &AtomicBool,
) -> Result<Summary, RenderError> {
    let opts = batch_options(out.as_ref().to_path_buf(), options)?;
    let songs = batch::selected(&manifest.plan, opts.shard).count();
    let progress = Progress::new(options.progress, songs);
    let summary = batch::run(&manifest.plan, &opts, stop, &progress);
    progress.finish(stop.load(Ordering::SeqCst));
    Ok(summary?)
}

/// The batch runner's options, once `options` is checked.
fn batch_options(out: PathBuf, options: &RenderOptions) -> Result<BatchOptions, RenderError> {
    if options.jobs == 0 {
        return Err(RenderError::Options("jobs must be at least 1".into()));
    }
    if !(1..=MAX_BLOCK_SIZE).contains(&options.block_size) {
        return Err(RenderError::Options(format!(
            "block_size must be 1..={MAX_BLOCK_SIZE}, got {}",
            options.block_size
        )));
    }
    if let Some((k, n)) = options.shard
        && (n == 0 || k >= n)
    {
        return Err(RenderError::Options(format!(
            "shard needs 0 <= k < n, got {k}/{n}"
        )));
    }
    Ok(BatchOptions {
        out,
        jobs: options.jobs,
        block_size: options.block_size,
        shard: options.shard,
        force: options.force,
        fail_fast: options.fail_fast,
        sync: options.sync,
        keep_failed: options.keep_failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_out_of_range_are_refused_before_anything_is_written() {
        let dir = std::env::temp_dir().join("stemflow-api-never-created");
        let demo = Manifest::demo();
        for (change, says) in [
            (
                (|o: &mut RenderOptions| o.jobs = 0) as fn(&mut RenderOptions),
                "jobs",
            ),
            (|o| o.block_size = 0, "block_size"),
            (|o| o.block_size = MAX_BLOCK_SIZE + 1, "block_size"),
            (|o| o.shard = Some((2, 2)), "shard"),
            (|o| o.shard = Some((0, 0)), "shard"),
        ] {
            let mut opts = RenderOptions::default();
            change(&mut opts);
            let e = render(&demo, &dir, &opts).unwrap_err();
            assert!(matches!(e, RenderError::Options(_)), "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
        assert!(!dir.exists());
    }
}
