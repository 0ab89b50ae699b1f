//! The end-to-end tests, as one binary (the way ripgrep does it): the
//! helpers in `util` are compiled and linked once rather than once per test
//! file, and one harness runs every test in parallel with every other.
//! Cargo.toml sets `autotests = false`, so the modules beside this file are
//! not also built as test binaries of their own.

mod util;

mod arrange;
mod bad_inputs;
mod batch;
mod cli;
mod conventions;
mod deliver;
mod delivery;
mod edges;
mod files;
mod golden;
mod grid;
mod manifest_reference;
mod packaging;
mod properties;
mod render;
mod safety;
mod scaffold;
mod seeks;
mod sources;
mod stretch;
mod summary;
mod truepeak;
