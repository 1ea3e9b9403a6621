//! Where an acquire's holds live, as the engine (`engine`) sees it: one
//! node (`node`: a server, a Sentinel master or a cluster) or a quorum of
//! masters (`redlock`), and what any of them may ask of a hold.

use std::time::Duration;

use parking_lot::Mutex;

use crate::error::Result;
use crate::orphans::Undo;
use crate::pool::Pool;
use crate::scripts::Invocation;
use crate::stats::Stats;

/// What a backend may ask of a hold it keeps: who owns it, its main key,
/// how its TTL is reset by its owner, and how it is given back.
pub(crate) trait HoldKeys {
    /// The owner token.
    fn token(&self) -> &str;
    /// The hold's main key: this process's orphans of it are matched on it.
    fn main_key(&self) -> &[u8];
    /// The owner-checked TTL reset (1: still held), a write of the
    /// caller's own (what `WAIT` counts).
    fn refresh_call(&self, ttl_ms: u64) -> Invocation<'static>;
    /// How the hold is released if it must be given back or was orphaned.
    fn undo(&self) -> Undo;
}

/// Where an acquire's holds live: one node, or a quorum of masters.
pub(crate) trait Backend {
    /// Its identity (see [`crate::Locks::server`]): this process's orphans
    /// on it are kept under it.
    fn server(&self) -> &str;
    /// The connections.
    fn pool(&self) -> &Pool;
    /// The metrics its acquires count in.
    fn stats(&self) -> &Mutex<Stats>;
    /// Blocks on a waiter's wake list for at most `block` (never re-sent).
    fn pop_wake(&self, key: &[u8], block: Duration) -> Result<Option<redis::Value>>;
    /// Remembers a hold that an acquire with an unknown outcome may have
    /// left taken, released once the backend answers again (`orphans`).
    fn remember_orphan(&self, lock: &[u8], undo: Undo, token: &str, ttl: Duration);
    /// Releases a hold on this backend now by its `undo`: 1 if it was
    /// still `token`'s, 0 if not.
    fn release_now(&self, undo: &Undo, token: &str) -> Result<i64>;
    /// Has replicas confirm `hold`, just taken, where the deployment was
    /// asked to (`replicas`); when too few do, gives it back and fails.
    /// Nothing to do by default: no replicas asked (Redlock refuses the
    /// option when it is made).
    fn confirm_replicas(&self, _hold: &dyn HoldKeys, _ttl: Duration) -> Result<()> {
        Ok(())
    }
}
