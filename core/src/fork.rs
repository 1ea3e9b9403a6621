//! What a child process repairs after `fork()`.
//!
//! `fork()` copies memory, not threads: a process-wide mutex that the
//! watchdog thread held at that instant stays locked in the child for ever,
//! and the child's first lock operation that needs it hangs (seen: 8 of
//! 1000 forks with 300 watched locks). PHP forks from its main thread at
//! any moment (`pcntl_fork()`, Laravel's fork driver, spatie/fork), so the
//! child repairs, in the `pthread_atfork` child handler (`pid`), every
//! process-wide mutex a watchdog thread can take: one found locked is
//! unlocked and its contents set aside (leaked, not dropped: they may be
//! half-changed) for an empty value. Those contents are process-local
//! caches and registries whose entries the child may not use anyway (they
//! are the parent's: holds, orphans, skip lists, metrics).
//!
//! Lazily built statics (the scripts) are built before the watchdog thread
//! starts ([`before_threads`]): a child would otherwise wait for ever on a
//! build that the thread had begun.

use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

/// Makes `mutex` usable in a child whose fork found it locked: unlocks it
/// and replaces its contents with `fresh()`, leaking the old ones.
///
/// # Safety
/// Only in a `fork()` child, before any other thread exists there: the
/// thread that held the lock is not in this process.
pub(crate) unsafe fn repair<T>(mutex: &Mutex<T>, fresh: impl FnOnce() -> T) {
    if mutex.is_locked() {
        // SAFETY: the caller guarantees no thread of this process holds it.
        unsafe { mutex.force_unlock() };
        let mut guard = mutex.lock();
        std::mem::forget(std::mem::replace(&mut *guard, fresh()));
    }
}

/// [`repair`] for a lazily made static mutex: nothing to do if never made.
///
/// # Safety
/// As [`repair`].
pub(crate) unsafe fn repair_lazy<T: Default>(mutex: &Lazy<Mutex<T>>) {
    if let Some(mutex) = Lazy::get(mutex) {
        // SAFETY: as the caller's.
        unsafe { repair(mutex, T::default) };
    }
}

/// [`repair`] for a lazily made static metrics record.
///
/// # Safety
/// As [`repair`].
pub(crate) unsafe fn repair_stats(stats: &Lazy<Arc<Mutex<crate::stats::Stats>>>) {
    if let Some(stats) = Lazy::get(stats) {
        // SAFETY: as the caller's.
        unsafe { repair(stats, crate::stats::Stats::new) };
    }
}

/// The `pthread_atfork` child handler's work (see the module docs).
pub(crate) fn repair_in_child() {
    // SAFETY: called from the child handler, in the child, before it runs
    // anything else: the watchdog thread (or any other) is not there.
    unsafe {
        crate::client::repair_after_fork();
        crate::plain_holds::repair_after_fork();
        crate::orphans::repair_after_fork();
        crate::redlock::repair_after_fork();
        crate::sentinel::repair_after_fork();
        crate::stats::repair_after_fork();
        crate::semaphore::repair_after_fork();
        crate::multi::repair_after_fork();
    }
}

/// Test support: a thread that holds the process-wide mutexes a lock cycle
/// takes (the plain holds, the recently contended names, the orphans, the
/// metrics) for `hold`, as a watchdog thread may at the instant PHP forks.
/// Returns once they are held.
#[doc(hidden)]
pub fn hold_process_mutexes_for(hold: std::time::Duration) -> std::thread::JoinHandle<()> {
    let (held, is_held) = std::sync::mpsc::channel();
    let stats = crate::stats::Stats::global();
    let thread = std::thread::spawn(move || {
        let _holds = crate::plain_holds::HOLDS.lock();
        let _contended = crate::client::CONTENDED.lock();
        let _orphans = crate::orphans::ORPHANS.lock();
        let _stats = stats.lock();
        let _ = held.send(());
        std::thread::sleep(hold);
    });
    let _ = is_held.recv();
    thread
}

/// Builds every lazily built static a watchdog thread may use, so that no
/// build is under way in another thread when the process forks.
pub(crate) fn before_threads() {
    crate::scripts::build_all();
    crate::semaphore::build_scripts();
    crate::pid::current(); // registers the child handler
}
