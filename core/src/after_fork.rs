//! Making a process-wide mutex usable again in a `fork()` child whose fork
//! found it locked by another thread (see `fork` for when and why). Every
//! module with such a mutex calls these from its own repair function; the
//! `fork` module calls those, so this one imports nothing of theirs.

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

/// [`repair`] for a lazily made shared static (a metrics record), with
/// `fresh()` for its new contents.
///
/// # Safety
/// As [`repair`].
pub(crate) unsafe fn repair_shared<T>(shared: &Lazy<Arc<Mutex<T>>>, fresh: impl FnOnce() -> T) {
    if let Some(shared) = Lazy::get(shared) {
        // SAFETY: as the caller's.
        unsafe { repair(shared, fresh) };
    }
}
