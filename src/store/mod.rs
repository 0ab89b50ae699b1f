//! The output folder as a store of song folders that stemflow owns (SPEC §5,
//! §11 "Data safety").
//!
//! Why this module exists: several processes may share one OUT (retried
//! shards, overlapping runs), a run may be killed at any instant, and OUT may
//! hold folders stemflow never wrote. Everything that touches `OUT/<id>` goes
//! through here so that the rules hold in one place:
//!
//! - a song being rendered is held by an OS advisory lock ([`SongLock`],
//!   `OUT/.stemflow/locks/<id>.lock`); a second process gets `None` and
//!   reports the song busy;
//! - a song folder is built in `OUT/.stemflow/tmp/` (`Staging`) and
//!   published by an atomic swap, so `OUT/<id>` is at every instant the
//!   complete old folder or the complete new one, also under `kill -9`;
//! - a folder counts as ours only with the marker `OUT/<id>/.stemflow-song`
//!   ([`Marker`]); anything else is reported ([`Existing::NotOurs`]) and never
//!   touched;
//! - what a dead process left in `tmp/` and `trash/` is cleaned (or, for an
//!   interrupted fallback swap, put back) by the next [`OutDir::open`], and
//!   liveness is decided by the song's lock, never by a pid.
//!
//! Layout of the state folder:
//!
//! ```text
//! OUT/.stemflow/locks/<id>.lock        lock files (left in place: deleting races)
//! OUT/.stemflow/tmp/<id>.<pid>.<n>/    staging folders
//! OUT/.stemflow/trash/<id>.<pid>.<n>/  replaced folders being deleted
//! OUT/.stemflow/trash/<id>.<pid>.<n>.old/  an old folder moved aside by the
//!                                      fallback swap; restored if OUT/<id> is missing
//! OUT/.stemflow/failed/                for the batch runner's failed-song records
//! OUT/.stemflow/tmp/<name>.<pid>.<n>/<name>  a file of OUT (summary.json) being
//!                                      replaced, see [`OutDir::write_atomic`]
//! ```
//!
//! Test hooks: `STEMFLOW_FAULT_AT=swap:N` and `STEMFLOW_SWAP=rename`, see
//! `Staging::publish`.
//!
//! Inside, the files form layers and import only downward: [`OutDir`]
//! (`dir.rs`) uses staging and publish (`swap.rs`), cleanup (`clean.rs`)
//! and whole-file replacement (`atomic.rs`), which take the plain
//! `Layout` (`layout.rs`) and use the rename primitives, the marker, the
//! locks, the names and the error type below them. This file only declares
//! and re-exports.

mod atomic;
mod clean;
mod dir;
mod error;
mod layout;
mod lock;
mod marker;
mod names;
mod rename;
mod swap;

#[cfg(test)]
mod crash_tests;

pub use dir::OutDir;
pub use error::StoreError;
pub use lock::SongLock;
pub use marker::{Existing, Marker};
