//! The `RedisLock\…` exception classes, and how core errors become them.
//!
//! They are plain Zend classes, registered with `ClassBuilder` at module
//! startup rather than as `#[php_class]` structs: a `#[php_class]` always
//! gets a Rust `__construct`, which would hide `Exception::__construct` and
//! stop user code (and the framework adapters) from writing
//! `new LockConflictedException($message)`.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use ext_php_rs::builders::ClassBuilder;
use ext_php_rs::exception::PhpException;
use ext_php_rs::zend::{ce, ClassEntry};
use redis_lock_core::Error;

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// SPL's `RuntimeException`, found by name when the module starts.
///
/// SPL's class entries are not in `zend::ce`, and naming the
/// `spl_ce_RuntimeException` symbol directly would make the library fail to
/// load anywhere but inside PHP (the stub generator loads it on its own).
fn runtime_exception() -> &'static ClassEntry {
    static FOUND: AtomicPtr<ClassEntry> = AtomicPtr::new(ptr::null_mut());
    let mut found = FOUND.load(Ordering::Acquire);
    if found.is_null() {
        // SAFETY: RTLD_DEFAULT (null on glibc) searches the PHP binary's
        // symbols; the symbol is a `zend_class_entry *` that SPL sets at engine
        // startup, before any extension's MINIT, and never changes.
        found = unsafe {
            let slot = dlsym(ptr::null_mut(), c"spl_ce_RuntimeException".as_ptr())
                .cast::<*mut ClassEntry>();
            if slot.is_null() {
                ptr::null_mut()
            } else {
                *slot
            }
        };
        FOUND.store(found, Ordering::Release);
    }
    // SAFETY: a non-null class entry lives for the whole process.
    unsafe { found.as_ref() }.unwrap_or_else(ce::exception)
}

static LOCK_EXCEPTION: AtomicPtr<ClassEntry> = AtomicPtr::new(ptr::null_mut());
static CONFLICTED: AtomicPtr<ClassEntry> = AtomicPtr::new(ptr::null_mut());
static TIMEOUT: AtomicPtr<ClassEntry> = AtomicPtr::new(ptr::null_mut());
static CONNECTION: AtomicPtr<ClassEntry> = AtomicPtr::new(ptr::null_mut());

fn registered(slot: &AtomicPtr<ClassEntry>) -> &'static ClassEntry {
    // SAFETY: set once at module startup to a class entry that lives for the
    // process; before that (never during a request) fall back to Exception.
    unsafe { slot.load(Ordering::Acquire).as_ref() }.unwrap_or_else(ce::exception)
}

/// `RedisLock\LockException`: the base of everything this extension throws.
pub fn lock_exception() -> &'static ClassEntry {
    registered(&LOCK_EXCEPTION)
}

/// `RedisLock\LockConflictedException`: the lock is held by someone else.
pub fn lock_conflicted_exception() -> &'static ClassEntry {
    registered(&CONFLICTED)
}

/// `RedisLock\LockTimeoutException`: a bounded wait ran out.
pub fn lock_timeout_exception() -> &'static ClassEntry {
    registered(&TIMEOUT)
}

/// `RedisLock\ConnectionException`: Redis unreachable or too slow.
pub fn connection_exception() -> &'static ClassEntry {
    registered(&CONNECTION)
}

/// Registers the four classes, parents first; called from module startup.
pub fn register() -> ext_php_rs::error::Result<()> {
    ClassBuilder::new("RedisLock\\LockException")
        .extends((runtime_exception, "RuntimeException"))
        .registration(|ce, _| LOCK_EXCEPTION.store(ce, Ordering::Release))
        .register()?;
    ClassBuilder::new("RedisLock\\LockConflictedException")
        .extends((lock_exception, "RedisLock\\LockException"))
        .registration(|ce, _| CONFLICTED.store(ce, Ordering::Release))
        .register()?;
    ClassBuilder::new("RedisLock\\LockTimeoutException")
        .extends((
            lock_conflicted_exception,
            "RedisLock\\LockConflictedException",
        ))
        .registration(|ce, _| TIMEOUT.store(ce, Ordering::Release))
        .register()?;
    ClassBuilder::new("RedisLock\\ConnectionException")
        .extends((lock_exception, "RedisLock\\LockException"))
        .registration(|ce, _| CONNECTION.store(ce, Ordering::Release))
        .register()?;
    Ok(())
}

/// A `\ValueError`.
pub fn value_error(message: String) -> PhpException {
    PhpException::new(message, 0, ce::value_error())
}

/// A `\TypeError`.
pub fn type_error(message: String) -> PhpException {
    PhpException::new(message, 0, ce::type_error())
}

/// A `RedisLock\LockException`.
pub fn lock_error(message: String) -> PhpException {
    PhpException::new(message, 0, lock_exception())
}

/// A `RedisLock\LockConflictedException`.
pub fn conflicted(message: String) -> PhpException {
    PhpException::new(message, 0, lock_conflicted_exception())
}

/// A `RedisLock\LockTimeoutException`.
pub fn timed_out(message: String) -> PhpException {
    PhpException::new(message, 0, lock_timeout_exception())
}

/// Why lock `name` was not had: held elsewhere and the caller did not wait
/// (`waited` None: `LockConflictedException`), or still held after a
/// bounded wait (`LockTimeoutException`).
pub fn not_acquired(name: &[u8], waited: Option<std::time::Duration>) -> PhpException {
    let shown = String::from_utf8_lossy(name);
    match waited {
        None => conflicted(format!("Lock \"{shown}\" is held by another owner")),
        Some(waited) => timed_out(format!(
            "Lock \"{shown}\" was not released within {} s",
            waited.as_secs_f64()
        )),
    }
}

/// Maps a core error to the exception the API page names for it.
pub fn from_core(err: &Error) -> PhpException {
    match err {
        Error::InvalidDsn { .. } => value_error(err.to_string()),
        // Unreachable, too slow, or a server that cannot take writes for now
        // (LOADING, READONLY during a failover, …).
        _ if err.is_unavailable() => PhpException::new(err.to_string(), 0, connection_exception()),
        // Any other answer of the server, or one the scripts never give.
        _ => lock_error(err.to_string()),
    }
}
