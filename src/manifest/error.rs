//! The one error type of the manifest. It sits below the parser and the
//! validator so both (and the code that locates an error in the text) can
//! build it without depending on each other.

use std::fmt;

/// A manifest error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    /// The manifest as named on the command line (or `<built-in demo>`).
    pub file: String,
    /// 1-based line, when the error is about the text.
    pub line: Option<usize>,
    /// The `id` of the song it is in.
    pub song: Option<String>,
    /// The `name` of the stem it is in.
    pub stem: Option<String>,
    /// The key that is wrong, dotted below the song or stem (`source.freq`).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ":")?;
        if let Some(song) = &self.song {
            write!(f, " song {song:?}")?;
        }
        if let Some(stem) = &self.stem {
            write!(f, " stem {stem:?}")?;
        }
        if self.song.is_some() || self.stem.is_some() {
            write!(f, ":")?;
        }
        if let Some(key) = &self.key {
            write!(f, " key `{key}`:")?;
        }
        // Keep the error on one line whatever the parser said.
        let msg = self
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        write!(f, " {msg}")
    }
}

impl std::error::Error for ManifestError {}
