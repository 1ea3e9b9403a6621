//! Lock logic of the `redis_lock` PHP extension, kept free of PHP so it can be
//! tested with `cargo test` against a real Redis.
//!
//! - [`dsn`]: parsing and redacting connection strings;
//! - [`pool`]: one connection per DSN per process, fork-aware;
//! - [`sentinel`]: the master of a `redis-sentinel://` DSN, looked up when the pool connects;
//! - [`cluster`]: a `redis-cluster://` DSN, served by redis-rs's cluster client;
//! - [`scripts`] and [`keys`]: what is stored in Redis and the Lua that changes it;
//! - [`client`]: acquire / release / refresh and woken waits;
//! - [`stats`]: this process's lock metrics;
//! - [`watchdog`]: background renewal of held locks;
//! - [`pid`] and [`token`]: process ids without a system call each, owner tokens;
//! - [`error`]: the one error type.

pub mod client;
pub mod cluster;
pub mod dsn;
pub mod error;
pub mod keys;
pub mod pid;
pub mod pool;
pub mod scripts;
pub mod sentinel;
pub mod stats;
pub mod token;
pub mod watchdog;

pub use client::{AcquireOutcome, ClientOptions, Hold, LockClient, Wait};
pub use dsn::Dsn;
pub use error::{Error, Result};
pub use pool::Pool;
pub use stats::{Stats, StatsSnapshot};
