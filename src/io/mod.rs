//! Files below the pipeline: the WAV/RF64 writer and reader every stage
//! shares, and what the filesystem can tell about free space. Nothing here
//! knows about songs or stems.

pub mod wav;

/// Bytes free for an unprivileged writer on the filesystem holding `path`;
/// `None` where the platform cannot tell (the caller then skips its check).
#[cfg(unix)]
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is a plain C struct of integers, for which all-zero
    // bytes are a valid value; the call below overwrites it on success.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Bytes free on the filesystem holding `path`: unknown on this platform.
#[cfg(not(unix))]
pub fn free_bytes(_path: &std::path::Path) -> Option<u64> {
    None
}
