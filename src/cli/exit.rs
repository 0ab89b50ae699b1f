//! Exit codes and the one error type every subcommand returns. Only the
//! command line knows about exit codes: the library's functions return
//! data or typed errors, and `cli` decides what they mean for the shell.

use std::fmt::Display;

/// Exit code: every song ok.
pub const EXIT_OK: i32 = 0;
/// Exit code: one or more songs failed.
pub const EXIT_SONG_FAILED: i32 = 1;
/// Exit code: bad command line or invalid manifest.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: interrupted.
pub const EXIT_INTERRUPTED: i32 = 130;

/// A subcommand that could not do its work: the exit code and the one line
/// `main` prints on stderr.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    /// A bad command line or manifest (exit 2).
    pub fn usage(message: impl Display) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.to_string(),
        }
    }

    /// Work that failed on its input or output (exit 1).
    pub fn failed(message: impl Display) -> Failure {
        Failure {
            code: EXIT_SONG_FAILED,
            message: message.to_string(),
        }
    }
}

/// An exit code, or a failure to print.
pub type CliResult = Result<i32, Failure>;
