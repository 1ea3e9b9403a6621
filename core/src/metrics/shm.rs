//! The host's table in POSIX shared memory (`redis_lock.metrics_shm`).
//!
//! Opened once per process (a forked child keeps its parent's mapping) and
//! never unmapped. It is not trusted blindly: the segment is checked under
//! an exclusive `flock` (so two processes never both replace it), and one
//! that is not the current user's with mode 0600, or whose size or header
//! is not this layout's (a truncated or overwritten file, an older version)
//! is unlinked and made again, with a warning that says why.

use std::ffi::CString;
use std::sync::atomic::AtomicU64;

use super::table::Table;

/// The table opened, with what was wrong with the segment it replaced.
pub(crate) struct Opened {
    pub table: Table,
    pub replaced: Option<String>,
}

/// Opens (or makes) segment `name` for a table of `slots` slots and
/// `names` name entries. An error says why the host table cannot be used.
pub(crate) fn open(name: &str, slots: usize, names: usize) -> Result<Opened, String> {
    if !name.starts_with('/') || name.len() < 2 || name[1..].contains('/') || name.len() > 255 {
        return Err(format!(
            "redis_lock.metrics_shm must be one '/' and a name without '/', not {name:?}"
        ));
    }
    let c_name =
        CString::new(name).map_err(|_| "redis_lock.metrics_shm contains a NUL byte".to_string())?;
    let bytes = Table::words_for(slots, names) * 8;
    let mut replaced = None;
    // Twice at most: the segment found, and the one made in its place.
    for _ in 0..3 {
        let fd = Fd::open(&c_name)?;
        // SAFETY: flock on a descriptor we own; released when it is closed.
        if unsafe { libc::flock(fd.0, libc::LOCK_EX) } != 0 {
            return Err(format!(
                "cannot lock {name}: {}",
                std::io::Error::last_os_error()
            ));
        }
        // Another process may have replaced the segment while this one
        // waited for the lock: then start again with the new one.
        if !fd.is_named(&c_name) {
            continue;
        }
        let stat = fd.stat()?;
        // SAFETY: no arguments, cannot fail.
        let uid = unsafe { libc::geteuid() };
        let problem = if stat.st_uid != uid {
            // Not ours: not ours to replace either.
            return Err(format!(
                "{name} belongs to uid {}, not to this process's uid {uid}",
                stat.st_uid
            ));
        } else if stat.st_mode & 0o077 != 0 {
            Some(format!("its mode is {:o}, not 600", stat.st_mode & 0o777))
        } else if stat.st_size == 0 {
            let words = fd.map(bytes, true)?;
            let table = Table::init(words, slots, names)
                .ok_or_else(|| "the table does not fit its segment".to_string())?;
            return Ok(Opened { table, replaced });
        } else if usize::try_from(stat.st_size).ok() != Some(bytes) {
            Some(format!("its size is {} bytes, not {bytes}", stat.st_size))
        } else {
            let words = fd.map(bytes, false)?;
            match Table::check(words, slots, names) {
                Ok(table) => return Ok(Opened { table, replaced }),
                Err(why) => {
                    // SAFETY: the mapping was made by `map` just now and
                    // nothing else refers to it.
                    unsafe { libc::munmap(words.as_ptr() as *mut libc::c_void, bytes) };
                    Some(why)
                }
            }
        };
        if let Some(why) = problem {
            // SAFETY: a NUL-terminated name.
            unsafe { libc::shm_unlink(c_name.as_ptr()) };
            replaced = Some(format!("the metrics segment {name} was replaced: {why}"));
        }
    }
    Err(format!("{name} kept changing while it was opened"))
}

/// A descriptor, closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // Unlocked explicitly: a mapping keeps the open file, and so its
        // `flock`, alive after the descriptor is closed.
        // SAFETY: our own descriptor, unlocked and closed once.
        unsafe {
            libc::flock(self.0, libc::LOCK_UN);
            libc::close(self.0);
        }
    }
}

impl Fd {
    fn open(name: &CString) -> Result<Fd, String> {
        // SAFETY: a NUL-terminated name; the mode is the user's only.
        let fd = unsafe {
            libc::shm_open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                0o600 as libc::mode_t,
            )
        };
        if fd < 0 {
            return Err(format!(
                "cannot open {}: {}",
                name.to_string_lossy(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Fd(fd))
    }

    fn stat(&self) -> Result<libc::stat, String> {
        // SAFETY: an all-zero stat is a valid value to be overwritten.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: our descriptor and a stat to fill.
        if unsafe { libc::fstat(self.0, &mut stat) } != 0 {
            return Err(format!(
                "cannot stat the metrics segment: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(stat)
    }

    /// Whether `name` still names this descriptor's segment.
    fn is_named(&self, name: &CString) -> bool {
        // SAFETY: a NUL-terminated name, opened without creating.
        let other = unsafe { libc::shm_open(name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC, 0) };
        if other < 0 {
            return false;
        }
        let other = Fd(other);
        match (self.stat(), other.stat()) {
            (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
            _ => false,
        }
    }

    /// Maps `bytes` of the segment for the life of the process (growing an
    /// empty one to that size first when `grow`).
    fn map(&self, bytes: usize, grow: bool) -> Result<&'static [AtomicU64], String> {
        let len = libc::off_t::try_from(bytes).map_err(|_| "the table is too large".to_string())?;
        // The pages are reserved now, not at their first write: a full
        // /dev/shm then fails here, instead of stopping a process that
        // counts with SIGBUS later.
        if grow {
            // SAFETY: our descriptor.
            let failed = unsafe { libc::posix_fallocate(self.0, 0, len) };
            if failed != 0 {
                return Err(format!(
                    "cannot size the metrics segment: {}",
                    std::io::Error::from_raw_os_error(failed)
                ));
            }
        }
        // SAFETY: a new shared mapping of our descriptor; the kernel picks
        // the address.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.0,
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(format!(
                "cannot map the metrics segment: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the mapping is `bytes` long, page-aligned (so aligned for
        // u64), shared memory that every user reads and writes only through
        // atomics, and never unmapped while this slice lives (it is leaked
        // for the process's life; only a header that failed its check is
        // unmapped, before any slice of it escapes).
        Ok(unsafe { std::slice::from_raw_parts(at as *const AtomicU64, bytes / 8) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(test: &str) -> String {
        format!("/redis_lock.test.{test}.{}", std::process::id())
    }

    fn unlink(name: &str) {
        if let Ok(c) = CString::new(name) {
            // SAFETY: a NUL-terminated name.
            unsafe { libc::shm_unlink(c.as_ptr()) };
        }
    }

    #[test]
    fn a_segment_is_made_0600_and_found_again() {
        let n = name("made");
        let first = open(&n, 4, 8).unwrap_or_else(|e| panic!("{e}"));
        assert!(first.replaced.is_none());
        let meta = std::fs::metadata(format!("/dev/shm{n}")).unwrap_or_else(|e| panic!("{e}"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let again = open(&n, 4, 8).unwrap_or_else(|e| panic!("{e}"));
        assert!(again.replaced.is_none(), "{:?}", again.replaced);
        unlink(&n);
    }

    #[test]
    fn garbage_a_short_file_or_another_layout_is_replaced_with_a_reason() {
        let n = name("garbage");
        let path = format!("/dev/shm{n}");
        let bytes = Table::words_for(4, 8) * 8;
        use std::os::unix::fs::OpenOptionsExt;
        for (contents, why) in [(vec![0xA5u8; bytes], "magic"), (vec![0u8; 100], "size")] {
            unlink(&n);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .unwrap_or_else(|e| panic!("{e}"));
            std::io::Write::write_all(&mut f, &contents).unwrap_or_else(|e| panic!("{e}"));
            drop(f);
            let opened = open(&n, 4, 8).unwrap_or_else(|e| panic!("{e}"));
            let replaced = opened.replaced.unwrap_or_default();
            assert!(replaced.contains(why), "{replaced}");
            assert_eq!(opened.table.sum().processes, 0);
        }
        // A table of another size: replaced too.
        let other = open(&n, 2, 8).unwrap_or_else(|e| panic!("{e}"));
        assert!(other.replaced.unwrap_or_default().contains("size"));
        unlink(&n);
    }

    #[test]
    fn a_bad_name_is_refused() {
        for bad in ["", "/", "no-slash", "/a/b", "/nul\0"] {
            assert!(open(bad, 1, 1).is_err(), "{bad:?}");
        }
    }
}
