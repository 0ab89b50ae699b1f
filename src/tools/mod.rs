//! The single-file subcommands, `verify` and `align`, built from the same
//! sources, processors and writers as `render`. They return data or typed
//! errors; printing and exit codes belong to `cli`.

pub mod align;
pub mod scaffold;
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

/// Whether `path` is `-`: standard input or output (SPEC §12).
pub fn is_stdio(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

/// Standard input copied to a temporary file, removed on drop. A decoder
/// probes its input and reopens it (mono, then stereo), which a pipe
/// cannot replay; the copy is streamed, so memory stays one buffer.
pub struct StdinFile {
    path: std::path::PathBuf,
}

impl StdinFile {
    /// Copies all of standard input; refuses a terminal (nothing to read).
    pub fn read() -> Result<StdinFile, StageError> {
        use std::io::IsTerminal;
        let name = std::path::Path::new("standard input");
        if std::io::stdin().is_terminal() {
            return Err(StageError::Invalid(
                "`-` reads audio from standard input, which is a terminal: pipe a file in".into(),
            ));
        }
        let path = std::env::temp_dir().join(format!(".stemflow-stdin-{}", std::process::id()));
        // create_new: never through a link someone left in the shared
        // temporary folder.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StageError::io(&path, e))?;
        let guard = StdinFile { path };
        std::io::copy(&mut std::io::stdin().lock(), &mut file)
            .map_err(|e| StageError::io(name, e))?;
        Ok(guard)
    }

    /// Where the copy is.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// `message` with the copy's path said as the user gave it: `-`.
    pub fn named(&self, message: String) -> String {
        message.replace(&self.path.display().to_string(), "-")
    }
}

impl Drop for StdinFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
