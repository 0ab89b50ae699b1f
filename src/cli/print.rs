//! Printing for the command line that never panics. `println!` panics when
//! stdout is a closed pipe (`stemflow check m.toml | head -1`) or a full
//! disk (`> /dev/full`), which would lose the exit code of work already
//! done. Here a closed pipe stops further printing quietly (the reader has
//! what it wanted), any other error is said once on stderr, and either way
//! the caller's exit code stands. Rust ignores SIGPIPE, so a closed pipe
//! shows up as an `EPIPE` error on the write.

use std::fmt::Arguments;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout failed: nothing more is written to it.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout, flushed, unless stdout already failed.
pub fn out_str(text: &str) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut lock = io::stdout().lock();
    if let Err(e) = lock.write_all(text.as_bytes()).and_then(|_| lock.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            err_str(&format!("stemflow: cannot write to standard output: {e}\n"));
        }
    }
}

/// Writes `text` to stderr; a failure there has nowhere to be told.
/// Control characters other than newline and tab (from a file name, say)
/// are shown as U+FFFD so they cannot drive the terminal.
pub fn err_str(text: &str) {
    let clean: String = text
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect();
    let _ = io::stderr().lock().write_all(clean.as_bytes());
}

/// `print!`-style formatting to [`out_str`].
pub fn out_fmt(args: Arguments<'_>) {
    out_str(&args.to_string());
}

/// `eprint!`-style formatting to [`err_str`].
pub fn err_fmt(args: Arguments<'_>) {
    err_str(&args.to_string());
}

/// `println!` that never panics (see the module docs).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::print::out_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::print::err_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, outln};
