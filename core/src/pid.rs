//! This process's id, without a system call per lookup.
//!
//! Ownership checks run on every lock operation (a child after `fork()` must
//! not use its parent's connections or holds), and `getpid()` is a real
//! system call. The id is cached and the cache cleared in the child by a
//! `pthread_atfork` handler, which runs in every `fork()` (PHP's
//! `pcntl_fork()`, PHP-FPM's workers).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static REGISTER: Once = Once::new();

extern "C" {
    fn pthread_atfork(
        prepare: Option<extern "C" fn()>,
        parent: Option<extern "C" fn()>,
        child: Option<extern "C" fn()>,
    ) -> std::ffi::c_int;
}

/// Registers `handler` to run in the child of every later `fork()`.
///
/// # Safety
/// `handler` runs in a child that has only the forking thread: it must not
/// allocate or take a lock another thread may have held.
pub(crate) unsafe fn on_fork_child(handler: extern "C" fn()) {
    // SAFETY: as the caller's; the other handlers are none.
    unsafe {
        pthread_atfork(None, None, Some(handler));
    }
}

extern "C" fn forget_in_child() {
    PID.store(0, Ordering::Relaxed);
}

/// The current process id.
pub fn current() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    REGISTER.call_once(|| {
        // SAFETY: the handler only stores to an atomic: no allocation, no
        // lock another thread could hold. (The repair of the process-wide
        // mutexes is `fork`'s own handler.)
        unsafe { on_fork_child(forget_in_child) };
    });
    let pid = std::process::id();
    PID.store(pid, Ordering::Relaxed);
    pid
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_os() {
        assert_eq!(super::current(), std::process::id());
        assert_eq!(super::current(), std::process::id());
    }
}
