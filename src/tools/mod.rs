//! The single-file subcommands, `verify` and `align`, built from the same
//! sources, processors and writers as `render`. They return data or typed
//! errors; printing and exit codes belong to `cli`.

pub mod align;
pub mod verify;

use crate::error::StageError;

/// Why a single-file tool did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// An argument is out of range: the command line's fault.
    #[error("{0}")]
    Argument(String),
    /// Reading, processing or writing the audio failed.
    #[error(transparent)]
    Stage(#[from] StageError),
}
