//! The watchdog: renews this process's watched holds in the background,
//! every third of their TTL, so a PHP script busy in a long call (a slow
//! query, `sleep()`) keeps its locks, while a process that dies or is
//! stopped loses them within one TTL.
//!
//! # What is renewed
//! A watched hold carries its own renewal ([`Renew`]): for an exclusive lock
//! the owner-checked refresh ([`LockRenewal`]); another kind of hold (a read
//! lock, a multi-lock, a semaphore permit) is watched by giving it its own
//! `Renew`. The watchdog only keeps time.
//!
//! # One thread per process, never in the engine
//! The thread is started on the first watched hold, never at module
//! startup (PHP-FPM forks its workers after that), and runs only this
//! crate's code: no PHP, no Zend API. It renews through a pool of its own
//! ([`Watchdog::pool`]), so it never takes the connection a PHP call is
//! using, and it never touches the process-wide [`crate::Stats`]: its
//! counters are atomics of its own.
//!
//! # fork()
//! A child has no copy of its parent's threads, but it has a copy of the
//! parent's [`Watchdog`], whose mutexes the parent's thread may have held at
//! the moment of the fork: the child must not lock them. So there is one
//! `Watchdog` per process ([`for_this_process`]): a child that watches a hold
//! gets a new one, with a new thread, and leaves the inherited one, with the
//! parent's holds, untouched forever. A child therefore never renews its
//! parent's locks. The process-wide slot itself is only ever locked by
//! callers (PHP's own thread), never by a watchdog thread, so a fork cannot
//! find it locked.
//!
//! A `Watchdog`'s own mutex and condvars are `std::sync`'s, not
//! parking_lot's: a thread sleeping on a parking_lot condvar is queued in
//! parking_lot's one process-wide parking table, and a child inherits that
//! queue entry of a thread it does not have. glibc gives the child's first
//! new thread that thread's stack and so its thread-local queue entry back:
//! queued again, the entry closed the queue into a loop, and the child's
//! next wake-up of that queue walked it for ever (seen: a forked PHP worker
//! at 100 % CPU in `Condvar::notify_all_slow`; `core/tests/fork.rs`). On
//! Linux std's condvar sleeps on a futex in the condvar itself, which
//! leaves the child nothing shared to trip on.
//!
//! # When renewal stops
//! - [`Watchdog::unwatch`], before the hold is released (so a renewal that
//!   meets the released lock is not counted as lost);
//! - `max` after the hold was acquired (`watchdog_max`): the lock then
//!   expires by its TTL unless refreshed by hand;
//! - a renewal that finds the lock gone (expired, taken over, force
//!   released): counted as lost;
//! - renewals that fail (Redis unreachable) until the TTL of the last
//!   successful one would have run out: counted as lost;
//! - the process stops (SIGSTOP stops this thread too) or ends;
//!   [`shutdown`] stops the thread before the extension is unloaded.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;

use crate::error::{Error, Result};
use crate::locks::Locks;
use crate::pool::Pool;
use crate::vocab::Kind;

/// After a failed renewal, the next try comes this fraction of the TTL later
/// (and at least [`MIN_PAUSE`] later).
const RETRY_DIVISOR: u32 = 10;
/// The shortest pause between two renewals of one hold.
const MIN_PAUSE: Duration = Duration::from_millis(1);

/// What renewing one hold means.
///
/// Implemented by each kind of hold; the watchdog calls it from its own
/// thread, so it must not touch PHP.
pub trait Renew: Send + Sync {
    /// Extends the hold to `ttl` from now if its owner still holds it:
    /// `Ok(false)` when it is gone (expired, taken over, force released).
    fn renew(&self, ttl: Duration) -> Result<bool>;
}

/// The renewal of a lock or a read lock: the owner-checked refresh.
pub struct LockRenewal {
    client: Arc<dyn Locks>,
    kind: Kind,
    name: Vec<u8>,
    token: String,
}

impl LockRenewal {
    /// Renews lock `name` held under `token` through `client` (which should
    /// be on the watchdog's pool, see [`Locks::on_pool`]).
    pub fn new(client: Arc<dyn Locks>, kind: Kind, name: Vec<u8>, token: String) -> Self {
        LockRenewal {
            client,
            kind,
            name,
            token,
        }
    }
}

impl Renew for LockRenewal {
    fn renew(&self, ttl: Duration) -> Result<bool> {
        match self.kind {
            Kind::Exclusive => self.client.refresh(&self.name, &self.token, ttl),
            Kind::Shared => self.client.refresh_read(&self.name, &self.token, ttl),
        }
    }
}

/// Identifies one watched hold; never reused within a process tree (a
/// child's ids continue from its parent's).
pub type WatchId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Entry {
    renewal: Arc<dyn Renew>,
    ttl: Duration,
    /// When to renew next.
    due: Instant,
    /// When the lock expires if no renewal succeeds before (the last
    /// successful renewal, or the acquire, plus its TTL).
    lost_by: Instant,
    /// Acquired + `max`: no renewal after this.
    stop_at: Instant,
}

/// How far ahead a thread with no holds to renew counts as sleeping.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Default)]
struct State {
    entries: HashMap<WatchId, Entry>,
    thread: Option<JoinHandle<()>>,
    stopping: bool,
    /// The hold being renewed right now (its command in flight).
    in_flight: Option<WatchId>,
    /// While the thread sleeps: until when (None: it is busy, and looks at
    /// the holds again before it sleeps). A new hold due no earlier than
    /// that needs no wake-up, which would cost every watched acquire a
    /// thread switch.
    sleeps_until: Option<Instant>,
}

/// Counters of one process's watchdog.
pub use crate::stats::WatchdogCounters as Counters;

/// The renewals of one process (see the module documentation).
pub struct Watchdog {
    pid: u32,
    pool: Arc<Pool>,
    state: Mutex<State>,
    /// Wakes the thread: a new hold, a new TTL, stop.
    wake: Condvar,
    /// Wakes callers waiting for a renewal in flight to end.
    settled: Condvar,
    renewals: AtomicU64,
    lost: AtomicU64,
}

/// This process's watchdog, if it has made one; touched only by callers,
/// never by a watchdog thread (see "fork()").
static PROCESS: Lazy<parking_lot::Mutex<Option<Arc<Watchdog>>>> =
    Lazy::new(|| parking_lot::Mutex::new(None));

/// This process's watchdog, made on first use (its thread starts on its
/// first watched hold). In a child after `fork()` that is a new one: the
/// parent's copy is left as it is.
pub fn for_this_process() -> Arc<Watchdog> {
    let pid = crate::pid::current();
    let mut slot = PROCESS.lock();
    match slot.as_ref() {
        Some(w) if w.pid == pid => Arc::clone(w),
        _ => {
            if let Some(inherited) = slot.take() {
                // The parent's: its mutexes may be locked by a thread that
                // does not exist here, and its connections are the parent's.
                std::mem::forget(inherited);
            }
            let w = Watchdog::new();
            *slot = Some(Arc::clone(&w));
            w
        }
    }
}

/// This process's watchdog if it has one (None in a child that has not
/// watched anything yet: the inherited one is the parent's).
pub fn existing() -> Option<Arc<Watchdog>> {
    let pid = crate::pid::current();
    PROCESS.lock().as_ref().filter(|w| w.pid == pid).cloned()
}

/// This process's watchdog counters (zero when it has none).
pub fn counters() -> Counters {
    existing().map(|w| w.counters()).unwrap_or_default()
}

/// Stops this process's watchdog thread and waits for it (at most one
/// renewal in flight, bounded by its command timeout). Called at module
/// shutdown: the thread runs code of the extension, which PHP may unload.
pub fn shutdown() {
    if let Some(w) = existing() {
        w.stop();
    }
}

impl Watchdog {
    /// A watchdog for this process with no thread yet. The PHP layer uses
    /// [`for_this_process`]; tests make their own.
    pub fn new() -> Arc<Self> {
        Arc::new(Watchdog {
            pid: crate::pid::current(),
            pool: Arc::new(Pool::default()),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            settled: Condvar::new(),
            renewals: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        })
    }

    /// The state, locked. Poisoning is ignored: the state is plain data
    /// (holds, deadlines, flags), so after a panic with it locked (none is
    /// known; renewals run unlocked, under `catch_unwind`) going on is
    /// better than a watchdog that stops renewing every hold.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pool renewals go through: the thread's own connections, so a
    /// renewal never waits for, or takes, a connection a PHP call is using.
    pub fn pool(&self) -> Arc<Pool> {
        Arc::clone(&self.pool)
    }

    /// Renews `renewal` every third of `ttl` until unwatched, until `max`
    /// after `acquired_at`, or until it is lost. Starts the thread if this
    /// is the first watched hold.
    pub fn watch(
        self: &Arc<Self>,
        renewal: Arc<dyn Renew>,
        ttl: Duration,
        max: Duration,
        acquired_at: Instant,
    ) -> Result<WatchId> {
        if self.pid != crate::pid::current() {
            return Err(Error::Internal {
                detail: "a watchdog of another process was asked to watch a hold".into(),
            });
        }
        // Made here, not in the thread: a lazy static being made by the
        // thread at the moment of a fork() would stay "being made" in the
        // child forever.
        Lazy::force(&crate::scripts::REFRESH);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        if state.stopping {
            return Err(Error::Internal {
                detail: "the watchdog has been shut down".into(),
            });
        }
        if state.thread.is_none() {
            // No lazy build may be under way in the thread when PHP forks.
            crate::fork::before_threads();
            let me = Arc::clone(self);
            let thread = std::thread::Builder::new()
                .name("redis_lock-watchdog".into())
                .spawn(move || me.run())
                .map_err(|e| Error::Internal {
                    detail: format!("cannot start the watchdog thread: {e}"),
                })?;
            state.thread = Some(thread);
        }
        let due = acquired_at + pause(ttl);
        state.entries.insert(
            id,
            Entry {
                renewal,
                ttl,
                due,
                lost_by: acquired_at + ttl,
                stop_at: acquired_at + max,
            },
        );
        let wake = state.sleeps_until.is_some_and(|until| due < until);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        Ok(id)
    }

    /// Stops renewing `id` (before its lock is released or handed on).
    /// Returns once no renewal of it is in flight any more, so none can
    /// land after what the caller does next. Unknown ids (the hold was lost
    /// or ran past `max`) are ignored.
    pub fn unwatch(&self, id: WatchId) {
        if self.pid != crate::pid::current() {
            return;
        }
        let mut state = self.state();
        state.entries.remove(&id);
        while state.in_flight == Some(id) {
            state = self
                .settled
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The hold `id` is about to be given a new TTL by its owner
    /// (`refresh()`, `extend()`): renew to that from now on, the next time a
    /// third of it from now. Call it before sending the new TTL: it returns
    /// once no renewal to the old TTL is in flight, so none can land after
    /// the owner's and cut it back.
    pub fn retime(&self, id: WatchId, ttl: Duration) {
        if self.pid != crate::pid::current() {
            return;
        }
        let mut state = self.state();
        while state.in_flight == Some(id) {
            state = self
                .settled
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let now = Instant::now();
        if let Some(e) = state.entries.get_mut(&id) {
            e.ttl = ttl;
            e.due = now + pause(ttl);
            e.lost_by = now + ttl;
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Whether `id` is still being renewed.
    pub fn is_watching(&self, id: WatchId) -> bool {
        self.pid == crate::pid::current() && self.state().entries.contains_key(&id)
    }

    /// How many holds are being renewed.
    pub fn watched(&self) -> usize {
        if self.pid != crate::pid::current() {
            return 0;
        }
        self.state().entries.len()
    }

    /// Successful and lost renewals so far.
    pub fn counters(&self) -> Counters {
        Counters {
            renewals: self.renewals.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
        }
    }

    /// Stops the thread, forgets every hold and waits for the thread to end.
    pub fn stop(&self) {
        if self.pid != crate::pid::current() {
            return;
        }
        let thread = {
            let mut state = self.state();
            state.stopping = true;
            state.entries.clear();
            state.thread.take()
        };
        self.wake.notify_all();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// The thread: sleeps until the next hold is due, renews it, repeats.
    fn run(&self) {
        while let Some((id, renewal, ttl)) = self.next_due() {
            let sent_at = Instant::now();
            // A panic in a renewal must not end the thread (and with it
            // every other hold's renewal): it counts as a failed renewal.
            let outcome =
                catch_unwind(AssertUnwindSafe(|| renewal.renew(ttl))).unwrap_or_else(|_| {
                    Err(Error::Internal {
                        detail: "panic in a renewal".into(),
                    })
                });
            self.settle(id, ttl, sent_at, outcome);
        }
    }

    /// Waits for the next due hold; removes holds past their `max`. None
    /// when stopping.
    fn next_due(&self) -> Option<(WatchId, Arc<dyn Renew>, Duration)> {
        let mut state = self.state();
        loop {
            if state.stopping {
                return None;
            }
            let now = Instant::now();
            // Past `max`: renewal ends there and the lock lives out its TTL.
            // (A hold past its TTL without a renewal, after a SIGSTOP, is
            // renewed all the same: Redis says whether it is still held.)
            state.entries.retain(|_, e| e.stop_at > now);
            let next = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.due)
                .map(|(id, e)| (*id, e.due, Arc::clone(&e.renewal), e.ttl));
            match next {
                None => {
                    state.sleeps_until = Some(now + FOREVER);
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    state.sleeps_until = None;
                }
                Some((_, due, _, _)) if due > now => {
                    state.sleeps_until = Some(due);
                    state = self
                        .wake
                        .wait_timeout(state, due.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    state.sleeps_until = None;
                }
                Some((id, _, renewal, ttl)) => {
                    state.in_flight = Some(id);
                    return Some((id, renewal, ttl));
                }
            }
        }
    }

    /// Records what renewing `id` to `ttl` (sent at `sent_at`) came to.
    fn settle(&self, id: WatchId, ttl: Duration, sent_at: Instant, outcome: Result<bool>) {
        let now = Instant::now();
        let mut state = self.state();
        state.in_flight = None;
        self.settled.notify_all();
        let Some(e) = state.entries.get_mut(&id) else {
            // Unwatched while the renewal was in flight (released): whatever
            // the renewal found says nothing about a lost lock.
            return;
        };
        match outcome {
            Ok(true) => {
                self.renewals.fetch_add(1, Ordering::Relaxed);
                crate::metrics::watchdog(false);
                // (A retime waits for this renewal to end, so `e.ttl` is
                // still the TTL it renewed to.)
                e.lost_by = sent_at + ttl;
                e.due = sent_at + pause(ttl);
            }
            Ok(false) => {
                state.entries.remove(&id);
                self.lost.fetch_add(1, Ordering::Relaxed);
                crate::metrics::watchdog(true);
            }
            Err(_) if now >= e.lost_by => {
                state.entries.remove(&id);
                self.lost.fetch_add(1, Ordering::Relaxed);
                crate::metrics::watchdog(true);
            }
            Err(_) => {
                let retry = (e.ttl / RETRY_DIVISOR).max(MIN_PAUSE);
                e.due = (now + retry).min(e.lost_by);
            }
        }
    }
}

/// A third of `ttl`, at least [`MIN_PAUSE`].
fn pause(ttl: Duration) -> Duration {
    (ttl / 3).max(MIN_PAUSE)
}
