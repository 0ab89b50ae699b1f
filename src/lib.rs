//! stemflow: renders song manifests into duration-aligned stems, a master
//! mix and a zip of deliverables, streaming block by block in flat memory.
//!
//! The modules follow the data, and every import points down this list
//! (`../shared/tools/structure-check` finds no cycle):
//!
//! | stage | module | what it does |
//! |---|---|---|
//! | read | [`manifest`] | strict TOML (raw serde types, source locations, validation steps) to a [`plan`] |
//! | plan | [`plan`], [`timing`] | the validated song: every default resolved; sections in beats, seconds and frames |
//! | sources | [`source`] | generators and decoded, resampled files behind one `Source` trait |
//! | align | [`align`] | brings each stem to exactly T frames (strategy, matched seams, bar grid, release) |
//! | arrange | [`arrange`] | places a stem in its sections: an aligner per region, exact silence outside |
//! | effects | [`effects`] | filters, gain, echo; `effects::iir` runs biquad cascades in chunks |
//! | mix | [`mix`] | gains and pan into the master; the master bus (gain, limiter, clip) |
//! | verify | [`verify`] | statistics, loudness, true peak, envelope, checks |
//! | render | [`pipeline`] | one song's processors wired with bounded channels of recycled blocks |
//! | deliver | [`output`] | what consumes a finished song: report, overview, archive |
//! | run | [`store`], [`batch`] | OUT's folders (marker, locks, atomic swap) and many songs at once |
//! | command line | [`cli`], [`tools`] | subcommands, exit codes; the single-file `verify` and `align` |
//!
//! Shared below every stage: [`types`] (frames, blocks, stream specs),
//! [`error`], [`io`] (WAV/RF64/BWF and FLAC files), [`seed`] (seeded hashing),
//! [`cpu`] (the SIMD level, chosen once) and [`progress`] (bars).

pub mod align;
pub mod arrange;
pub mod batch;
pub mod cli;
pub mod cpu;
pub mod effects;
pub mod error;
pub mod io;
pub mod manifest;
pub mod mix;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod seed;
pub mod source;
pub mod store;
pub mod timing;
pub mod tools;
pub mod types;
pub mod verify;

/// The built-in demo manifest (SPEC §7).
pub const DEMO_MANIFEST: &str = include_str!("../fixtures/demo.toml");
