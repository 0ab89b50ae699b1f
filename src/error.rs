//! Error types. A [`StageError`] says what went wrong inside one processor;
//! a [`SongError`] adds which stage and stem of which song it happened in.

use std::path::PathBuf;

/// A failure inside one pipeline stage.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A requested feature is not available in this build.
    #[error("{0}")]
    Unsupported(String),
    /// The audio or its settings cannot be processed as asked.
    #[error("{0}")]
    Invalid(String),
    /// A verification check failed.
    #[error("{check} check failed: {detail}")]
    Check { check: &'static str, detail: String },
    /// The song was stopped because another stage failed or the run was
    /// interrupted.
    #[error("cancelled")]
    Cancelled,
}

impl StageError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StageError {
        StageError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Where in a song's pipeline an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Reference,
    Source,
    Align,
    Effects,
    Verify,
    Mix,
    Write,
    Archive,
    Output,
}

/// A failure of one song, with its context.
#[derive(Debug, thiserror::Error)]
#[error("song {song:?}{}: {stage:?} stage: {error}", stem.as_ref().map(|s| format!(" stem {s:?}")).unwrap_or_default())]
pub struct SongError {
    pub song: String,
    pub stage: Stage,
    pub stem: Option<String>,
    pub error: StageError,
}
