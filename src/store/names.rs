//! Names inside OUT: the state folder's name, the song-id rule, the unique
//! names of tmp/ and trash/ entries, and how a file type is named in errors.
//!
//! Why on their own: every other file of the store needs one of these, so
//! they sit at the bottom of the store's imports, below everything that
//! touches the file system, and depend on nothing but the error type.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::StoreError;

/// Name of the state folder inside OUT.
pub const STATE_DIR: &str = ".stemflow";

/// Whether `id` can name a song folder: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`,
/// the manifest's rule, checked again here because ids become file names.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// [`is_valid_id`] as an error naming the id.
pub(super) fn check_id(id: &str) -> Result<(), StoreError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(StoreError::BadId { id: id.to_string() })
    }
}

/// A process-unique name `<id>.<pid>.<n>` for tmp/ and trash/ entries; the id
/// comes first so a later run can find the lock that owns the entry.
pub(super) fn unique_name(id: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{id}.{}.{n}", std::process::id())
}

/// What a file type is, for error messages.
pub(super) fn describe(ft: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "FIFO";
        }
        if ft.is_socket() {
            return "socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "device";
        }
    }
    if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "regular file"
    } else {
        "special file"
    }
}
