//! The `redis_lock` PHP extension: PHP classes over the lock logic of the
//! `redis-lock-core` crate.
//!
//! This crate is the thin PHP-facing layer: argument checks ([`args`]),
//! configuration ([`ini`], [`settings`]), exceptions ([`exceptions`]), the
//! classes ([`mutex`], [`manager`], [`lock`], [`semaphore`]) with their callbacks
//! ([`callback`]) and panic guard ([`guard`]), `stats()` ([`stats`]), the host's
//! metrics ([`metrics`]), and the
//! per-process record of held locks that request shutdown empties ([`holds`]).

#![cfg_attr(windows, feature(abi_vectorcall))]

pub mod args;
pub mod callback;
pub mod exceptions;
pub mod guard;
pub mod holds;
pub mod ini;
pub mod lock;
pub mod manager;
pub mod metrics;
pub mod multi;
pub mod mutex;
pub mod report;
pub mod semaphore;
pub mod settings;
pub mod stats;

use std::panic::catch_unwind;

use ext_php_rs::prelude::*;
use ext_php_rs::zend::ModuleEntry;
use ext_php_rs::{info_table_end, info_table_header, info_table_row, info_table_start};

/// Module startup: registers the ini entries and the exception classes.
/// Opens no connection: PHP-FPM forks after this, and a socket opened here
/// would be shared by every child.
pub fn startup(_ty: i32, module_number: i32) -> i32 {
    let started = catch_unwind(|| {
        ini::register(module_number);
        metrics::configure();
        exceptions::register()
    });
    match started {
        Ok(Ok(())) => 0,
        _ => -1, // PHP reports "Unable to start redis_lock module"
    }
}

/// Request start-up: the host metrics' table is opened (once per process).
extern "C" fn request_startup(_ty: i32, _module_number: i32) -> i32 {
    let _ = catch_unwind(metrics::start_request);
    0
}

/// Request shutdown: releases the locks this request still holds (also after
/// `exit()` or a fatal error, when PHP runs no destructors) and the locks of
/// acquires whose outcome was unknown.
extern "C" fn request_shutdown(_ty: i32, _module_number: i32) -> i32 {
    // A panic must not unwind into the engine from this raw hook.
    let _ = catch_unwind(|| {
        holds::end_request();
        redis_lock_core::orphans::clean_up_all(&redis_lock_core::Pool::global());
    });
    0
}

/// Module shutdown: stops this process's watchdog thread, if it has one,
/// before PHP may unload the extension's code from under it.
extern "C" fn shutdown(_ty: i32, _module_number: i32) -> i32 {
    let _ = catch_unwind(redis_lock_core::watchdog::shutdown);
    // This process's slot in the host metrics is free for another (its
    // counts stay, in the retired processes' slot).
    let _ = catch_unwind(redis_lock_core::metrics::process_ends);
    0
}

/// `php --ri redis_lock` / phpinfo(): version and the effective ini values.
extern "C" fn module_info(_module: *mut ModuleEntry) {
    let _ = catch_unwind(|| {
        info_table_start!();
        info_table_row!("redis_lock support", "enabled");
        info_table_row!("version", env!("CARGO_PKG_VERSION"));
        info_table_end!();
        info_table_start!();
        info_table_header!("Directive", "Value");
        for name in ini::all_names() {
            let value = String::from_utf8_lossy(&ini::get(name)).into_owned();
            let shown = if name == "dsn" {
                redis_lock_core::dsn::redact(&value)
            } else {
                value
            };
            info_table_row!(format!("redis_lock.{name}"), shown);
        }
        info_table_end!();
    });
}

/// The module entry PHP loads.
#[php_module]
#[php(startup = "startup")]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    module
        .class::<lock::Lock>()
        .class::<semaphore::Semaphore>()
        .class::<multi::MultiLock>()
        .class::<mutex::RedisMutex>()
        .class::<manager::LockManager>()
        .class::<metrics::Metrics>()
        .request_startup_function(request_startup)
        .request_shutdown_function(request_shutdown)
        .shutdown_function(shutdown)
        .info_function(module_info)
}
