//! Lock logic of the `redis_lock` PHP extension, kept free of PHP so it can be
//! tested with `cargo test` against a real Redis.
//!
//! - [`dsn`]: parsing and redacting connection strings;
//! - [`connect`]: opening one connection within a deadline;
//! - [`pool`]: one connection per DSN per process, fork-aware;
//! - [`sentinel`]: the master of a `redis-sentinel://` DSN, looked up when the pool connects;
//! - [`cluster`]: a `redis-cluster://` DSN, served by redis-rs's cluster client;
//! - [`redlock`]: one lock over N independent masters;
//! - [`locks`]: the operations every deployment offers ([`Locks`]);
//! - [`multi`]: multi-locks, several names all or none;
//! - [`packed`]: commands written straight into RESP bytes, one buffer each;
//! - [`scripts`] and [`keys`]: what is stored in Redis and the Lua that changes it;
//! - [`vocab`]: the words every lock module shares (waits, kinds, outcomes, options);
//! - [`engine`]: how every kind of hold is acquired on one node (deadline, woken wait,
//!   retries, orphans); [`backend`]: where holds live, one [`node`] (and what it can do)
//!   or Redlock's masters;
//! - `kinds`: the kinds of hold the engine waits on (exclusive, read, permit, quorum);
//! - [`client`]: the exclusive lock on one server (also behind a Sentinel service or a
//!   cluster); [`shared`]: its read locks;
//! - [`orphans`]: locks an acquire with an unknown outcome may have left set, released later;
//! - [`release`]: every release script's call (safe to send twice), and with
//!   [`plain_holds`] the cheap release of a lock taken by a plain `SET NX` (native
//!   compare-and-delete where the server has one);
//! - [`release_all`]: a request end's releases, a server that does not answer given up once;
//! - [`session`]: a request's holds, their handles, request end, fail-open and watchdog policy;
//! - [`semaphore`]: counting semaphores (at most N holders), their scripts and keys;
//! - [`stats`]: this process's lock metrics; [`metrics`]: the host's, in shared memory;
//! - [`watchdog`]: background renewal of held locks;
//! - [`fork`] and [`after_fork`]: what a `fork()` child repairs, and how;
//! - [`pid`] and [`token`]: process ids without a system call each, owner tokens;
//! - [`error`]: the one error type.
//!
//! The modules import each other without cycles: [`vocab`], [`error`],
//! [`connect`] and the other leaves at the bottom, the deployments and kinds
//! above them, [`fork`] (which calls every module's repair) at the top.

pub mod after_fork;
pub mod backend;
pub mod client;
pub mod cluster;
pub mod connect;
pub mod dsn;
pub mod engine;
pub mod error;
pub mod fork;
pub mod inspect;
pub mod keys;
pub(crate) mod kinds;
pub mod locks;
pub mod metrics;
pub mod multi;
pub mod node;
pub mod orphans;
pub mod packed;
pub mod pid;
pub mod plain_holds;
pub mod pool;
pub mod redlock;
pub mod release;
pub mod release_all;
pub mod scripts;
pub mod semaphore;
pub mod sentinel;
pub mod session;
pub mod shared;
pub mod stats;
pub mod token;
pub mod vocab;
pub mod watchdog;

pub use client::LockClient;
pub use dsn::{Deployment, Dsn};
pub use error::{Error, Result};
pub use locks::Locks;
pub use pool::{Pool, PoolEntry};
pub use semaphore::{Permits, Semaphores};
pub use stats::{Stats, StatsSnapshot};
pub use vocab::{AcquireOutcome, ClientOptions, Hold, Kind, Ownership, Wait};
