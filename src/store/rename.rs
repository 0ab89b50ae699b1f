//! The file-system primitives of a publish: `renameat2` with
//! `RENAME_EXCHANGE` / `RENAME_NOREPLACE`, their portable fallbacks, the
//! marker-first delete, and the crash test hook.
//!
//! Why separate: these are the only places that decide what is atomic, and
//! the only `unsafe` of the store (the raw system call); keeping them small
//! and apart from the publish logic makes both easier to check.
//!
//! `renameat2` is called through `libc::syscall(SYS_renameat2, ...)` rather
//! than the C library's wrapper, which older glibc and musl lack. A flag the
//! kernel or file system does not support (`EINVAL`, `ENOSYS`,
//! `EOPNOTSUPP`), or a system other than Linux, selects the fallback.
//!
//! Test hook (not for production use): `STEMFLOW_FAULT_AT=swap:N`, read once
//! per process, makes [`fault_point`] abort the process right before
//! operation N of a publish (see [`Staging::publish`](super::Staging::publish)).

use std::fs;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use super::marker::MARKER;

/// Aborts the process before operation `op` of a publish when
/// `STEMFLOW_FAULT_AT=swap:<op>` is set (test hook).
pub(super) fn fault_point(op: u32) {
    static AT: OnceLock<Option<u32>> = OnceLock::new();
    let at = AT.get_or_init(|| {
        let value = std::env::var("STEMFLOW_FAULT_AT").ok()?;
        value.strip_prefix("swap:")?.parse().ok()
    });
    if *at == Some(op) {
        eprintln!("stemflow: STEMFLOW_FAULT_AT=swap:{op}: aborting (test hook)");
        std::process::abort();
    }
}

/// Whether publish may use `RENAME_EXCHANGE` (`STEMFLOW_SWAP=rename` says no).
pub(super) fn exchange_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("STEMFLOW_SWAP").as_deref() != Ok("rename"))
}

/// `renameat2(2)` through the raw system call (the C library's wrapper is
/// missing from older glibc and musl).
#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both pointers are NUL-terminated strings that outlive the call;
    // AT_FDCWD resolves them like rename(2) does; the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::c_long::from(libc::AT_FDCWD),
            from.as_ptr(),
            libc::c_long::from(libc::AT_FDCWD),
            to.as_ptr(),
            libc::c_long::from(flags),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Swaps the names `a` and `b` atomically (both must exist).
#[cfg(target_os = "linux")]
pub(super) fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Whether a rename flag is not supported here (so the fallback applies).
pub(super) fn is_unsupported(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    if let Some(code) = e.raw_os_error() {
        return matches!(code, libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP);
    }
    e.kind() == io::ErrorKind::Unsupported
}

/// Renames `from` to `to` only if nothing is at `to` (`AlreadyExists`
/// otherwise). Without `RENAME_NOREPLACE` the check and the rename are two
/// steps; the song lock keeps other stemflow processes out of that gap.
pub(super) fn place_new(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    match renameat2(from, to, libc::RENAME_NOREPLACE) {
        Err(e) if is_unsupported(&e) => {}
        other => return other,
    }
    match fs::symlink_metadata(to) {
        Ok(_) => return Err(io::ErrorKind::AlreadyExists.into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::rename(from, to)
}

/// Deletes a folder stemflow owns: the marker first, so a half-deleted
/// folder is never taken for a complete one, then the rest. Anything but a
/// real directory is left alone (an error); a missing one is fine.
pub(super) fn discard(path: &Path, faults: bool) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(io::Error::other("not a directory; left alone")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if faults {
        fault_point(4);
    }
    match fs::remove_file(path.join(MARKER)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if faults {
        fault_point(5);
    }
    fs::remove_dir_all(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_new_never_replaces_an_empty_folder_or_a_file() {
        let t = tempfile::tempdir().expect("tempdir");
        let from = t.path().join("from");
        fs::create_dir(&from).expect("mkdir");
        for (name, make_dir) in [("empty", true), ("file", false)] {
            let to = t.path().join(name);
            if make_dir {
                fs::create_dir(&to).expect("mkdir");
            } else {
                fs::write(&to, b"keep").expect("write");
            }
            let err = place_new(&from, &to).expect_err(name);
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{name}: {err}");
            assert!(from.is_dir());
        }
        assert_eq!(fs::read(t.path().join("file")).expect("read"), b"keep");
        place_new(&from, &t.path().join("new")).expect("absent target");
        assert!(t.path().join("new").is_dir() && !from.exists());
    }

    #[cfg(unix)]
    #[test]
    fn discard_leaves_a_symlink_and_its_target_alone() {
        let t = tempfile::tempdir().expect("tempdir");
        let target = t.path().join("target");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join(MARKER), b"m").expect("write");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(discard(&link, false).is_err());
        assert!(link.is_symlink() && target.join(MARKER).is_file());
        discard(&target, false).expect("discard");
        assert!(!target.exists());
        discard(&target, false).expect("already gone is fine");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_swaps_two_folders() {
        let t = tempfile::tempdir().expect("tempdir");
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        fs::create_dir(&a).expect("mkdir");
        fs::create_dir(&b).expect("mkdir");
        fs::write(a.join("x"), b"from a").expect("write");
        match exchange(&a, &b) {
            Ok(()) => {
                assert_eq!(fs::read(b.join("x")).expect("read"), b"from a");
                assert!(!a.join("x").exists());
            }
            // A file system without RENAME_EXCHANGE: publish falls back.
            Err(e) => assert!(is_unsupported(&e), "{e}"),
        }
    }
}
