//! Error types. A [`StageError`] says what went wrong inside one processor;
//! a [`StageFailure`] adds the stage it happened in (what the code calling a
//! processor knows), and a [`SongError`] the song and stem (what the code
//! running a whole song knows). Each layer adds only what it knows, so no
//! error is ever built with a placeholder song or stem.

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

impl SongError {
    /// `error` at `stage` of song `song`, outside any one stem.
    pub fn new(song: &str, stage: Stage, error: StageError) -> SongError {
        SongError {
            song: song.to_string(),
            stage,
            stem: None,
            error,
        }
    }

    /// The same error, placed in stem `stem` of its song.
    pub fn in_stem(self, stem: &str) -> SongError {
        SongError {
            stem: Some(stem.to_string()),
            ..self
        }
    }
}

/// A [`StageError`] with the stage it happened in, before the song and stem
/// are added (see [`StageFailure::in_song`]).
#[derive(Debug)]
pub struct StageFailure {
    pub stage: Stage,
    pub error: StageError,
}

impl StageFailure {
    /// The song stopped at `stage` because of an interrupt or another
    /// stage's failure: not an error of its own.
    pub fn cancelled(stage: Stage) -> StageFailure {
        StageFailure {
            stage,
            error: StageError::Cancelled,
        }
    }

    /// The failure as song `song`'s, in stem `stem` if it happened in one.
    pub fn in_song(self, song: &str, stem: Option<&str>) -> SongError {
        let error = SongError::new(song, self.stage, self.error);
        match stem {
            Some(stem) => error.in_stem(stem),
            None => error,
        }
    }
}

/// Tags a processor's error with the stage that called it:
/// `writer.write(block).at(Stage::Write)?`.
pub trait AtStage<T> {
    fn at(self, stage: Stage) -> Result<T, StageFailure>;
}

impl<T> AtStage<T> for Result<T, StageError> {
    fn at(self, stage: Stage) -> Result<T, StageFailure> {
        self.map_err(|error| StageFailure { stage, error })
    }
}
