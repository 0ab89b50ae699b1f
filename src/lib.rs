//! stemflow renders song manifests into duration-aligned stems, a master
//! mix and a zip of deliverables, streaming block by block in flat memory.
//!
//! This is the library behind the `stemflow` command. Its public surface is
//! deliberately small — load and check a manifest, render it into a folder,
//! lay out sections in time, verify a file — so the stages underneath can
//! change shape without breaking callers. Nothing here prints: every
//! function returns its result (the same data `stemflow render --json`,
//! `check`, `timing --json` and `verify --json` print).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use stemflow::{Manifest, RenderOptions, Status};
//!
//! let manifest = Manifest::parse(
//!     r#"
//!     [[songs]]
//!     id = "tiny"
//!     bpm = 120
//!     duration = 0.5
//!     [[songs.stems]]
//!     name = "bass"
//!     source = { type = "tone", freq = 110.0, length = 0.5 }
//!     "#,
//!     "tiny.toml",
//!     ".",
//! )?;
//! let out = tempfile::tempdir()?;
//! let summary = stemflow::render(&manifest, out.path(), &RenderOptions::default())?;
//! assert_eq!(summary.songs[0].status, Status::Ok);
//!
//! // Check a file as `stemflow verify` does: the master is 0.5 s long.
//! let expect = stemflow::Expect { duration: Some(0.5), ..Default::default() };
//! let report = stemflow::verify_file(&out.path().join("tiny/master.wav"), &expect)?;
//! assert!(report.ok, "{:?}", report.failures);
//! assert_eq!(report.frames, 24_000);
//!
//! // Sections in beats, seconds and frames, as `stemflow timing` shows them.
//! let sections = [("intro", 8), ("verse", 16)]
//!     .map(|(name, beats)| stemflow::Section { name: name.into(), beats });
//! let timing = stemflow::Timing::new(120.0, 48_000, &sections);
//! assert_eq!(timing.sections[1].start, 4.0);
//! assert_eq!(timing.sections[1].end_frame, 12 * 48_000);
//! # Ok(())
//! # }
//! ```
//!
//! The stages follow the data, and every import points down this list
//! (`../shared/tools/structure-check` finds no cycle):
//!
//! | stage | module | what it does |
//! |---|---|---|
//! | read | `manifest` | strict TOML (raw serde types, source locations, validation steps) to a `plan` |
//! | plan | `plan`, `timing` | the validated song: every default resolved; sections in beats, seconds and frames |
//! | sources | `source` | generators and decoded, resampled files behind one `Source` trait |
//! | align | `align` | brings each stem to exactly T frames (strategy, matched seams, bar grid, release) |
//! | arrange | `arrange` | places a stem in its sections: an aligner per region, exact silence outside |
//! | effects | `effects` | filters, gain, echo; `effects::iir` runs biquad cascades in chunks |
//! | mix | `mix` | gains and pan into the master; the master bus (gain, limiter, clip) |
//! | verify | `verify` | statistics, loudness, true peak, envelope, checks |
//! | render | `pipeline` | one song's processors wired with bounded channels of recycled blocks |
//! | deliver | `output` | what consumes a finished song: report, overview, archive |
//! | run | `store`, `batch` | OUT's folders (marker, locks, atomic swap) and many songs at once |
//! | tools | `tools` | the single-file `verify` and `align` |
//! | front | `api`, `cli` | this public API; the command's subcommands and exit codes |
//!
//! Shared below every stage: `types` (frames, blocks, stream specs),
//! `error`, `io` (WAV/RF64/BWF and FLAC files), `seed` (seeded hashing),
//! `cpu` (the SIMD level, chosen once) and `progress` (bars).
//!
//! The stage modules are private. The cargo feature `internals` (off by
//! default, no stability promise) makes them public for the code that
//! drives single processors: the benchmarks, the Python binding's array
//! functions and the integration tests.

/// Declares the stage modules: private, or public with the `internals`
/// feature. One list, so the two builds cannot drift apart.
macro_rules! stages {
    ($(mod $name:ident;)*) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

stages! {
    mod align;
    mod arrange;
    mod batch;
    mod cpu;
    mod effects;
    mod error;
    mod io;
    mod manifest;
    mod mix;
    mod output;
    mod parallel;
    mod pipeline;
    mod plan;
    mod progress;
    mod seed;
    mod source;
    mod store;
    mod timing;
    mod tools;
    mod types;
    mod verify;
}

mod api;
// The command line: public only for the `stemflow` binary (`src/main.rs`,
// a crate of its own) to run; not part of the library's API.
// Its doc comments are `--help` text (clap reads them), written for
// terminals: `<id>` there is a placeholder, not an HTML tag.
#[doc(hidden)]
#[allow(rustdoc::invalid_html_tags)]
pub mod cli;

pub use api::{Manifest, RenderError, RenderOptions, SongCheck, StemCheck, render, render_until};
pub use error::StageError;
pub use manifest::ManifestError;
pub use output::{SongSummary, Status, Summary};
pub use timing::{Meter, PastDuration, Section, SectionTiming, Timing};
pub use tools::verify::{Expect, VerifyReport, verify_file};
pub use verify::Loudness;

/// The built-in demo manifest (SPEC §7): what `stemflow init` writes and
/// `stemflow render` renders when given no manifest.
pub const DEMO_MANIFEST: &str = include_str!("../fixtures/demo.toml");
