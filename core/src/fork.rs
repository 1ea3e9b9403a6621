//! What a child process repairs after `fork()`.
//!
//! `fork()` copies memory, not threads: a process-wide mutex that the
//! watchdog thread held at that instant stays locked in the child for ever,
//! and the child's first lock operation that needs it hangs (seen: 8 of
//! 1000 forks with 300 watched locks). PHP forks from its main thread at
//! any moment (`pcntl_fork()`, Laravel's fork driver, spatie/fork), so the
//! child repairs, in a `pthread_atfork` child handler, every
//! process-wide mutex a watchdog thread can take: one found locked is
//! unlocked and its contents set aside (leaked, not dropped: they may be
//! half-changed) for an empty value. Those contents are process-local
//! caches and registries whose entries the child may not use anyway (they
//! are the parent's: holds, orphans, skip lists, metrics).
//!
//! Lazily built statics (the scripts) are built before the watchdog thread
//! starts ([`before_threads`]): a child would otherwise wait for ever on a
//! build that the thread had begun.

use std::sync::Once;

static REGISTER: Once = Once::new();

/// Registers [`repair_in_child`] as a `pthread_atfork` child handler, once.
/// Called before the first thread that can take the process-wide mutexes
/// starts (the watchdog's): until then a fork cannot find one locked.
fn register() {
    REGISTER.call_once(|| {
        // SAFETY: the handler only unlocks and replaces the mutexes no
        // thread of the child holds (see [`repair_in_child`]).
        unsafe { crate::pid::on_fork_child(repair_in_child) };
    });
}

/// The `pthread_atfork` child handler (see the module docs).
extern "C" fn repair_in_child() {
    // SAFETY: called from the child handler, in the child, before it runs
    // anything else: the watchdog thread (or any other) is not there.
    unsafe {
        crate::kinds::exclusive::repair_after_fork();
        crate::plain_holds::repair_after_fork();
        crate::orphans::repair_after_fork();
        crate::redlock::repair_after_fork();
        crate::sentinel::repair_after_fork();
        crate::stats::repair_after_fork();
        crate::metrics::repair_after_fork();
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
    register();
    let (held, is_held) = std::sync::mpsc::channel();
    let stats = crate::stats::Stats::global();
    let thread = std::thread::spawn(move || {
        let _holds = crate::plain_holds::HOLDS.lock();
        let _contended = crate::kinds::exclusive::CONTENDED.lock();
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
    register();
}
