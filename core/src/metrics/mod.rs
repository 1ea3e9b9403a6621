//! Lock metrics for the whole host (`RedisLock\Metrics`, api.md
//! "Observability"): every process that loads the extension with the same
//! `redis_lock.metrics_shm` adds to one table in shared memory (`shm`,
//! `table`), which any of them can read and show as Prometheus text
//! (`exposition`).
//!
//! Modes (`redis_lock.metrics`): `host` (the default), `process` (a table
//! of this process's own, cleared in a `fork()` child) and `off`. The host
//! segment is opened on first use; if it cannot be (another user's, a bad
//! name), the process counts on its own and says why once ([`take_warning`]).
//!
//! Nothing here blocks or takes a lock, so a record from any thread (the
//! watchdog's included) and a `fork()` at any moment are safe: the table is
//! atomics only, and a thread that finds the table being opened by another
//! simply does not count that one event.

mod exposition;
pub mod names;
mod shm;
pub mod table;

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub use exposition::prometheus;
use table::Table;
pub use table::{Histogram, Sums, BOUNDS_MICROS, BUCKETS};

/// The kinds of hold, as the metrics label them (`kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Exclusive locks (one server, Sentinel, cluster or Redlock).
    Lock,
    /// Read locks.
    Read,
    /// Multi-locks (counted once, not per name).
    Multi,
    /// Semaphore permits.
    Semaphore,
}

impl Kind {
    /// Every kind, in the order of the table's columns.
    pub const ALL: [Kind; 4] = [Kind::Lock, Kind::Read, Kind::Multi, Kind::Semaphore];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Lock => "lock",
            Kind::Read => "read",
            Kind::Multi => "multi",
            Kind::Semaphore => "semaphore",
        }
    }

    /// Its column in the table and in [`Sums`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How an acquire ended (`result` of `redis_lock_acquires_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireResult {
    /// The hold is the caller's.
    Acquired,
    /// Held by someone else; the caller did not wait.
    Conflicted,
    /// A bounded wait ran out.
    Timeout,
    /// An error (Redis unavailable, a script error, …).
    Error,
}

impl AcquireResult {
    /// Every result, in the order of the table's columns.
    pub const ALL: [AcquireResult; 4] = [
        AcquireResult::Acquired,
        AcquireResult::Conflicted,
        AcquireResult::Timeout,
        AcquireResult::Error,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            AcquireResult::Acquired => "acquired",
            AcquireResult::Conflicted => "conflicted",
            AcquireResult::Timeout => "timeout",
            AcquireResult::Error => "error",
        }
    }

    /// Its column in the table and in [`Sums`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a release ended (`result` of `redis_lock_releases_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseResult {
    /// The caller's hold was removed.
    Released,
    /// The hold was gone already (expired, or taken over): a lost lock.
    Lost,
    /// The release failed.
    Error,
}

impl ReleaseResult {
    /// Every result, in the order of the table's columns.
    pub const ALL: [ReleaseResult; 3] = [
        ReleaseResult::Released,
        ReleaseResult::Lost,
        ReleaseResult::Error,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            ReleaseResult::Released => "released",
            ReleaseResult::Lost => "lost",
            ReleaseResult::Error => "error",
        }
    }

    /// Its column in the table and in [`Sums`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where this process counts (`redis_lock.metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// One table for the host, in shared memory.
    Host,
    /// A table of this process's own.
    #[default]
    Process,
    /// Nothing counted.
    Off,
}

impl Mode {
    /// The ini value's word.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Host => "host",
            Mode::Process => "process",
            Mode::Off => "off",
        }
    }

    /// The mode an ini value names, if any. PHP's ini parser makes `off`,
    /// `false`, `no` and `none` an empty string.
    pub fn parse(value: &str) -> Option<Mode> {
        match value.trim().to_ascii_lowercase().as_str() {
            "host" => Some(Mode::Host),
            "process" => Some(Mode::Process),
            "off" | "" | "0" | "false" | "no" | "none" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// The settings, fixed for the process once the table is opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Where to count.
    pub mode: Mode,
    /// The shared-memory name; None: `/redis_lock.<uid>`.
    pub shm: Option<String>,
    /// How many of the most waited-for names to show (0: none counted).
    pub names: usize,
}

impl Config {
    /// The segment's name.
    pub fn shm_name(&self) -> String {
        self.shm.clone().unwrap_or_else(|| {
            // SAFETY: no arguments, cannot fail.
            format!("/redis_lock.{}", unsafe { libc::geteuid() })
        })
    }
}

/// Process slots of a host table: the processes that can count at once,
/// each on its own cache lines (more share slot 0, without gauges).
pub const HOST_SLOTS: usize = 1024;

const UNOPENED: u8 = 0;
const OPENING: u8 = 1;
const OPEN: u8 = 2;
const OFF: u8 = 3;

static CONFIG: OnceLock<Config> = OnceLock::new();
static STATE: AtomicU8 = AtomicU8::new(UNOPENED);
static TABLE: AtomicPtr<Opened> = AtomicPtr::new(std::ptr::null_mut());
/// This process's slot: its pid in the high half, the slot in the low.
static SLOT: AtomicU64 = AtomicU64::new(0);
static WARNING: OnceLock<String> = OnceLock::new();
static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The open table and what it is.
struct Opened {
    table: Table,
    mode: Mode,
    names: usize,
    shm: Option<String>,
}

/// Sets how this process counts: called once, before anything is counted
/// (module start-up); later calls change nothing.
pub fn configure(config: Config) {
    let _ = CONFIG.set(config);
}

/// Opens the table now (rather than at the first event), so that a
/// problem with the segment is told at once ([`take_warning`]).
pub fn open() {
    let _ = opened();
}

/// What went wrong with the host segment, once per process: the caller
/// logs it (PHP's error log), never as a PHP warning.
pub fn take_warning() -> Option<String> {
    let warning = WARNING.get()?;
    (!WARNED.swap(true, Ordering::Relaxed)).then(|| warning.clone())
}

fn opened() -> Option<&'static Opened> {
    match STATE.load(Ordering::Acquire) {
        // SAFETY: set once, from a leaked Box, before OPEN was stored.
        OPEN => return unsafe { TABLE.load(Ordering::Acquire).as_ref() },
        OFF | OPENING => return None,
        _ => {}
    }
    if STATE
        .compare_exchange(UNOPENED, OPENING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another thread opens it; this event is not counted.
        return opened_if_open();
    }
    let config = CONFIG.get().cloned().unwrap_or_default();
    let made = match config.mode {
        Mode::Off => None,
        Mode::Host => {
            let shm_name = config.shm_name();
            match shm::open(&shm_name, HOST_SLOTS, names::ENTRIES) {
                Ok(o) => {
                    if let Some(why) = o.replaced {
                        let _ = WARNING.set(format!("redis_lock: {why}"));
                    }
                    Some(Opened {
                        table: o.table,
                        mode: Mode::Host,
                        names: config.names,
                        shm: Some(shm_name),
                    })
                }
                Err(why) => {
                    let _ = WARNING.set(format!(
                        "redis_lock: metrics are this process's only (redis_lock.metrics=process): {why}"
                    ));
                    private(config.names)
                }
            }
        }
        Mode::Process => private(config.names),
    };
    match made {
        Some(o) => {
            TABLE.store(Box::into_raw(Box::new(o)), Ordering::Release);
            STATE.store(OPEN, Ordering::Release);
        }
        None => STATE.store(OFF, Ordering::Release),
    }
    opened_if_open()
}

fn opened_if_open() -> Option<&'static Opened> {
    if STATE.load(Ordering::Acquire) != OPEN {
        return None;
    }
    // SAFETY: set once, from a leaked Box, before OPEN was stored.
    unsafe { TABLE.load(Ordering::Acquire).as_ref() }
}

/// A table of this process's own (one slot), leaked for its life.
fn private(names: usize) -> Option<Opened> {
    let words: Vec<AtomicU64> = (0..Table::words_for(1, names::ENTRIES))
        .map(|_| AtomicU64::new(0))
        .collect();
    let table = Table::init(Box::leak(words.into_boxed_slice()), 1, names::ENTRIES)?;
    Some(Opened {
        table,
        mode: Mode::Process,
        names,
        shm: None,
    })
}

/// The table and this process's slot in it, claiming one on first use
/// (again in a `fork()` child: a process mode child starts from zero).
fn mine() -> Option<(&'static Opened, usize)> {
    let o = opened()?;
    let pid = crate::pid::current();
    let slot = SLOT.load(Ordering::Relaxed);
    if (slot >> 32) as u32 == pid {
        return Some((o, (slot & 0xffff_ffff) as usize));
    }
    if o.mode == Mode::Process && slot != 0 {
        o.table.clear();
    }
    let i = o.table.claim(pid);
    SLOT.store((u64::from(pid) << 32) | i as u64, Ordering::Relaxed);
    Some((o, i))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Counts an acquire of `kind` that ended in `result`; `waited`: the time
/// to the outcome of an acquire that could wait (None for one that could not).
pub fn acquire(kind: Kind, result: AcquireResult, waited: Option<Duration>) {
    if let Some((o, slot)) = mine() {
        o.table.acquire(slot, kind, result, waited.map(micros));
    }
}

/// Counts a release of `kind`; `held`: how long the hold was held.
pub fn release(kind: Kind, result: ReleaseResult, held: Option<Duration>) {
    if let Some((o, slot)) = mine() {
        o.table.release(slot, kind, result, held.map(micros));
    }
}

/// An acquire of `kind` starts (`true`) or stops (`false`) waiting.
pub fn waiting(kind: Kind, starts: bool) {
    if let Some((o, slot)) = mine() {
        o.table.waiting(slot, kind, starts);
    }
}

/// An acquire waits for the hold under `key` (counted once per acquire).
pub fn name_waited(key: &[u8]) {
    if let Some((o, _)) = mine() {
        if o.names > 0 {
            names::waited(o.table.names(), key);
        }
    }
}

/// A watchdog renewal kept a hold (`lost` false), or a watched hold was lost.
pub fn watchdog(lost: bool) {
    if let Some((o, slot)) = mine() {
        o.table.watchdog(slot, lost);
    }
}

/// A command found Redis unavailable.
pub fn unavailable() {
    if let Some((o, slot)) = mine() {
        o.table.unavailable(slot);
    }
}

/// This process ends (module shutdown): its counters go to the retired
/// processes' slot and its slot is free for another process.
pub fn process_ends() {
    let Some(o) = opened_if_open() else { return };
    let slot = SLOT.swap(0, Ordering::Relaxed);
    if (slot >> 32) as u32 == crate::pid::current() && o.mode == Mode::Host {
        o.table.fold((slot & 0xffff_ffff) as usize, slot >> 32);
    }
}

/// The metrics at one moment, as `Metrics::snapshot()` shows them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Where they were counted.
    pub mode: Mode,
    /// The shared-memory segment, in `host` mode.
    pub shm: Option<String>,
    /// The figures.
    pub sums: Sums,
    /// The most waited-for names (their Redis keys), most first.
    pub names: Vec<(Vec<u8>, u64)>,
}

/// The metrics now (all zero in `off` mode).
pub fn snapshot() -> Snapshot {
    match opened() {
        Some(o) => {
            // A process-mode child after fork reads its own (empty) counts.
            if o.mode == Mode::Process {
                let _ = mine();
            }
            Snapshot {
                mode: o.mode,
                shm: o.shm.clone(),
                sums: o.table.sum(),
                names: names::top(o.table.names(), o.names),
            }
        }
        None => Snapshot {
            mode: Mode::Off,
            ..Snapshot::default()
        },
    }
}

/// After `fork()`, in the child: a table being opened by a thread the child
/// does not have is not waited for (the child counts nothing).
pub(crate) fn repair_after_fork() {
    let _ = STATE.compare_exchange(OPENING, OFF, Ordering::AcqRel, Ordering::Relaxed);
}
