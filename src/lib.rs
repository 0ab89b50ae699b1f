//! stemflow: renders song manifests into duration-aligned stems, a master
//! mix and a zip of deliverables, streaming block by block in flat memory.
//!
//! Data flows through the modules in this order: [`manifest`] (TOML to a
//! [`plan`]), [`timing`], [`source`] (generators), [`align`], [`effects`],
//! [`verify`], [`mix`], [`output`] (WAV, report, archive, overview);
//! [`pipeline`] wires one song's processors with channels, [`batch`] runs
//! many songs (with [`progress`] bars), [`cli`] parses the command line and
//! [`tools`] holds the single-file `verify` and `align` commands.

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
