//! The metrics table: a header, one slot of counters per process, and the
//! hottest names (`names`), all 64-bit atomics, so that the same bytes can
//! be shared by every process on the host (`shm`) or kept by one (`process`
//! mode).
//!
//! Each process writes only its own slot, so the hot path adds to cache
//! lines no other process touches; a reader sums the slots. What a process
//! counted stays in its slot after it dies (a SIGKILL loses nothing); its
//! gauges (holds and waits now) are left out of the sum once it is gone, so
//! a process that died holding a lock does not leave "held" wrong. When the
//! slots run out, a dead process's slot is folded into slot 0 (the
//! retired processes' counters) and reused; a fold is announced by an odd
//! fold sequence, so a reader that met one sums again and never counts a
//! fold twice or not at all (the counters stay monotonic).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{AcquireResult, Kind, ReleaseResult};

/// "RLOCKMTR": the first word of a table.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RLOCKMTR");
/// The layout's version: a table of another version is not ours to read.
pub(crate) const VERSION: u64 = 1;

/// Upper bounds of the histogram buckets, in microseconds (Prometheus's
/// `le`, in seconds, once divided); a last, unbounded bucket follows.
pub const BOUNDS_MICROS: [u64; 19] = [
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
    1_800_000_000,
    3_600_000_000,
];
/// Buckets of one histogram, the unbounded one included.
pub const BUCKETS: usize = BOUNDS_MICROS.len() + 1;

const KINDS: usize = Kind::ALL.len();
const HIST_WORDS: usize = BUCKETS + 2; // the buckets, the sum, the largest

// The header.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 1;
const H_WORDS: usize = 2;
const H_SLOTS: usize = 3;
const H_NAMES: usize = 4;
const H_FOLDS: usize = 5;
/// Words before slot 0: a cache line.
pub(crate) const HEADER_WORDS: usize = 8;

// One slot.
const OWNER: usize = 0;
const ACQUIRES: usize = 1;
const RELEASES: usize = ACQUIRES + KINDS * AcquireResult::ALL.len();
const HELD: usize = RELEASES + KINDS * ReleaseResult::ALL.len();
const WAITING: usize = HELD + KINDS;
const RENEWALS: usize = WAITING + KINDS;
const WATCHDOG_LOST: usize = RENEWALS + 1;
const UNAVAILABLE: usize = WATCHDOG_LOST + 1;
const WAIT_HIST: usize = UNAVAILABLE + 1;
const HOLD_HIST: usize = WAIT_HIST + KINDS * HIST_WORDS;
const SLOT_END: usize = HOLD_HIST + KINDS * HIST_WORDS;
/// Words of one slot, a whole number of cache lines.
pub(crate) const SLOT_WORDS: usize = SLOT_END.div_ceil(8) * 8;

/// An owner word while the slot is being folded into slot 0.
const FOLDING: u64 = u64::MAX;

/// One histogram's figures, summed over the processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative), the unbounded one last.
    pub buckets: [u64; BUCKETS],
    /// The sum of the observations, in microseconds.
    pub sum_micros: u64,
    /// The largest observation, in microseconds.
    pub max_micros: u64,
}

impl Histogram {
    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// The `q` quantile in seconds, estimated as Prometheus's
    /// `histogram_quantile` does (linearly within its bucket), and never
    /// above the largest observation. 0 without observations.
    pub fn quantile(&self, q: f64) -> f64 {
        let count = self.count();
        if count == 0 {
            return 0.0;
        }
        let max = self.max_micros as f64 / 1e6;
        let rank = q.clamp(0.0, 1.0) * count as f64;
        let mut below = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            if *n > 0 && (below + n) as f64 >= rank {
                let lower = if i == 0 {
                    0.0
                } else {
                    BOUNDS_MICROS[i - 1] as f64 / 1e6
                };
                let upper = BOUNDS_MICROS.get(i).map_or(max, |b| *b as f64 / 1e6);
                let within = ((rank - below as f64) / *n as f64).clamp(0.0, 1.0);
                return (lower + (upper - lower) * within).min(max);
            }
            below += n;
        }
        max
    }
}

/// Everything a table holds, summed over its slots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sums {
    /// Acquires, by kind and result (`Kind::index`, `AcquireResult::index`).
    pub acquires: [[u64; AcquireResult::ALL.len()]; KINDS],
    /// Releases, by kind and result.
    pub releases: [[u64; ReleaseResult::ALL.len()]; KINDS],
    /// Holds now, by kind (live processes only).
    pub held: [u64; KINDS],
    /// Acquires waiting now, by kind (live processes only).
    pub waiting: [u64; KINDS],
    /// Watchdog renewals that kept a hold.
    pub watchdog_renewals: u64,
    /// Watched holds found gone or not renewed in time.
    pub watchdog_lost: u64,
    /// Commands that found Redis unavailable.
    pub unavailable: u64,
    /// Time to the outcome of acquires that could wait, by kind.
    pub wait: [Histogram; KINDS],
    /// Time held, one observation per release, by kind.
    pub hold: [Histogram; KINDS],
    /// Processes with a slot now.
    pub processes: u64,
}

/// A table over memory that lives as long as the process (a mapping that
/// is never unmapped, or a leaked allocation).
#[derive(Clone, Copy)]
pub(crate) struct Table {
    words: &'static [AtomicU64],
    slots: usize,
}

impl Table {
    /// The words a table of `slots` process slots (and slot 0) and `names`
    /// name entries takes.
    pub(crate) fn words_for(slots: usize, names: usize) -> usize {
        HEADER_WORDS + (slots + 1) * SLOT_WORDS + names * super::names::ENTRY_WORDS
    }

    /// Writes a new table's header over zeroed `words`, the magic word last
    /// (with release ordering), so no reader takes a half-written header.
    pub(crate) fn init(words: &'static [AtomicU64], slots: usize, names: usize) -> Option<Self> {
        if words.len() != Self::words_for(slots, names) {
            return None;
        }
        words[H_VERSION].store(VERSION, Ordering::Relaxed);
        words[H_WORDS].store(words.len() as u64, Ordering::Relaxed);
        words[H_SLOTS].store(slots as u64, Ordering::Relaxed);
        words[H_NAMES].store(names as u64, Ordering::Relaxed);
        words[H_MAGIC].store(MAGIC, Ordering::Release);
        Some(Table { words, slots })
    }

    /// The table in `words` if its header is this layout's, with `slots`
    /// slots and `names` entries; else why not.
    pub(crate) fn check(
        words: &'static [AtomicU64],
        slots: usize,
        names: usize,
    ) -> Result<Self, String> {
        let word = |i: usize| words.get(i).map_or(0, |w| w.load(Ordering::Acquire));
        if word(H_MAGIC) != MAGIC {
            return Err("it does not start with the metrics table's magic word".into());
        }
        let expected = [
            (H_VERSION, VERSION, "layout version"),
            (
                H_WORDS,
                Self::words_for(slots, names) as u64,
                "size in words",
            ),
            (H_SLOTS, slots as u64, "process slots"),
            (H_NAMES, names as u64, "name entries"),
        ];
        for (i, want, what) in expected {
            if word(i) != want {
                return Err(format!("its {what} is {}, not {want}", word(i)));
            }
        }
        if words.len() != Self::words_for(slots, names) {
            return Err(format!(
                "it has {} words, not {}",
                words.len(),
                Self::words_for(slots, names)
            ));
        }
        Ok(Table { words, slots })
    }

    fn slot(&self, i: usize) -> &'static [AtomicU64] {
        let start = HEADER_WORDS + i * SLOT_WORDS;
        &self.words[start..start + SLOT_WORDS]
    }

    /// The name entries, after the slots.
    pub(crate) fn names(&self) -> &'static [AtomicU64] {
        &self.words[HEADER_WORDS + (self.slots + 1) * SLOT_WORDS..]
    }

    /// Zeroes every word but the header: a `process` table in a child
    /// after `fork()`, which counts only its own work.
    pub(crate) fn clear(&self) {
        for w in &self.words[HEADER_WORDS..] {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// A slot for process `pid`: a free one, else a dead process's (folded
    /// into slot 0 first), else slot 0 itself, shared (its gauges are not
    /// read: they cannot be told apart per process).
    pub(crate) fn claim(&self, pid: u32) -> usize {
        let me = u64::from(pid);
        for pass in 0..2 {
            for i in 1..=self.slots {
                let owner = &self.slot(i)[OWNER];
                let current = owner.load(Ordering::Relaxed);
                if current == 0
                    && owner
                        .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    return i;
                }
                if pass == 1 && current != 0 && current != FOLDING && !alive(current) {
                    self.fold(i, current);
                    if owner
                        .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        return i;
                    }
                }
            }
        }
        0
    }

    /// Hands slot `i`, owned by `owner`, back: its counters into slot 0, its
    /// gauges dropped. Does nothing if another process took it first.
    pub(crate) fn fold(&self, i: usize, owner: u64) {
        if i == 0 {
            return;
        }
        let slot = self.slot(i);
        if slot[OWNER]
            .compare_exchange(owner, FOLDING, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let folds = &self.words[H_FOLDS];
        folds.fetch_add(1, Ordering::AcqRel);
        let retired = self.slot(0);
        for w in 1..SLOT_END {
            let value = slot[w].swap(0, Ordering::AcqRel);
            if (HELD..RENEWALS).contains(&w) {
                continue;
            }
            if is_max_word(w) {
                retired[w].fetch_max(value, Ordering::AcqRel);
            } else {
                retired[w].fetch_add(value, Ordering::AcqRel);
            }
        }
        folds.fetch_add(1, Ordering::AcqRel);
        slot[OWNER].store(0, Ordering::Release);
    }

    fn add(&self, slot: usize, word: usize, n: u64) {
        self.slot(slot)[word].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one acquire of `kind` that ended in `result`; `waited`: the
    /// time to its outcome, for an acquire that could wait.
    pub(crate) fn acquire(
        &self,
        slot: usize,
        kind: Kind,
        result: AcquireResult,
        waited: Option<u64>,
    ) {
        self.add(
            slot,
            ACQUIRES + kind.index() * AcquireResult::ALL.len() + result.index(),
            1,
        );
        if let Some(micros) = waited {
            self.observe(slot, WAIT_HIST + kind.index() * HIST_WORDS, micros);
        }
        if result == AcquireResult::Acquired {
            self.add(slot, HELD + kind.index(), 1);
        }
    }

    /// Counts one release of `kind` that ended in `result`, of a hold held
    /// for `held`: known when this process took the hold, which then ends
    /// here whatever came of the release (it counted among the held).
    pub(crate) fn release(
        &self,
        slot: usize,
        kind: Kind,
        result: ReleaseResult,
        held: Option<u64>,
    ) {
        self.add(
            slot,
            RELEASES + kind.index() * ReleaseResult::ALL.len() + result.index(),
            1,
        );
        if let Some(micros) = held {
            self.observe(slot, HOLD_HIST + kind.index() * HIST_WORDS, micros);
            self.slot(slot)[HELD + kind.index()].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Moves the number of waiting acquires of `kind` by one.
    pub(crate) fn waiting(&self, slot: usize, kind: Kind, starts: bool) {
        let word = &self.slot(slot)[WAITING + kind.index()];
        if starts {
            word.fetch_add(1, Ordering::Relaxed);
        } else {
            word.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts a watchdog renewal (`lost` false) or a watched hold lost.
    pub(crate) fn watchdog(&self, slot: usize, lost: bool) {
        self.add(slot, if lost { WATCHDOG_LOST } else { RENEWALS }, 1);
    }

    /// Counts a command that found Redis unavailable.
    pub(crate) fn unavailable(&self, slot: usize) {
        self.add(slot, UNAVAILABLE, 1);
    }

    fn observe(&self, slot: usize, hist: usize, micros: u64) {
        let s = self.slot(slot);
        let bucket = BOUNDS_MICROS.partition_point(|bound| *bound < micros);
        s[hist + bucket].fetch_add(1, Ordering::Relaxed);
        s[hist + BUCKETS].fetch_add(micros, Ordering::Relaxed);
        s[hist + BUCKETS + 1].fetch_max(micros, Ordering::Relaxed);
    }

    /// The sums over every slot; retried while a fold runs, so that a fold
    /// is counted once (a fold left half done by a process killed during
    /// it is read as it is after a few tries).
    pub(crate) fn sum(&self) -> Sums {
        let folds = &self.words[H_FOLDS];
        let mut sums = Sums::default();
        for _ in 0..1000 {
            let before = folds.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            sums = self.sum_once();
            if folds.load(Ordering::Acquire) == before {
                return sums;
            }
        }
        sums
    }

    fn sum_once(&self) -> Sums {
        let mut s = Sums::default();
        let mut held = [0i64; KINDS];
        let mut waiting = [0i64; KINDS];
        for i in 0..=self.slots {
            let slot = self.slot(i);
            let owner = slot[OWNER].load(Ordering::Acquire);
            if i > 0 && (owner == 0 || owner == FOLDING) {
                continue;
            }
            let word = |w: usize| slot[w].load(Ordering::Relaxed);
            for k in 0..KINDS {
                for (r, n) in s.acquires[k].iter_mut().enumerate() {
                    *n = n.wrapping_add(word(ACQUIRES + k * AcquireResult::ALL.len() + r));
                }
                for (r, n) in s.releases[k].iter_mut().enumerate() {
                    *n = n.wrapping_add(word(RELEASES + k * ReleaseResult::ALL.len() + r));
                }
                add_histogram(&mut s.wait[k], slot, WAIT_HIST + k * HIST_WORDS);
                add_histogram(&mut s.hold[k], slot, HOLD_HIST + k * HIST_WORDS);
            }
            s.watchdog_renewals = s.watchdog_renewals.wrapping_add(word(RENEWALS));
            s.watchdog_lost = s.watchdog_lost.wrapping_add(word(WATCHDOG_LOST));
            s.unavailable = s.unavailable.wrapping_add(word(UNAVAILABLE));
            // Gauges: only a live process's own slot says what is held now.
            if i > 0 && alive(owner) {
                s.processes += 1;
                for k in 0..KINDS {
                    held[k] = held[k].wrapping_add(word(HELD + k) as i64);
                    waiting[k] = waiting[k].wrapping_add(word(WAITING + k) as i64);
                }
            }
        }
        for k in 0..KINDS {
            s.held[k] = held[k].max(0) as u64;
            s.waiting[k] = waiting[k].max(0) as u64;
        }
        s
    }
}

fn is_max_word(w: usize) -> bool {
    (WAIT_HIST..SLOT_END).contains(&w) && (w - WAIT_HIST) % HIST_WORDS == BUCKETS + 1
}

fn add_histogram(h: &mut Histogram, slot: &[AtomicU64], at: usize) {
    for (b, n) in h.buckets.iter_mut().enumerate() {
        *n = n.wrapping_add(slot[at + b].load(Ordering::Relaxed));
    }
    h.sum_micros = h
        .sum_micros
        .wrapping_add(slot[at + BUCKETS].load(Ordering::Relaxed));
    h.max_micros = h
        .max_micros
        .max(slot[at + BUCKETS + 1].load(Ordering::Relaxed));
}

/// Whether process `pid` (an owner word) still runs: signal 0 reaches it,
/// or it exists under another user.
fn alive(owner: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(owner) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let reached = unsafe { libc::kill(pid, 0) } == 0;
    reached || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(slots: usize) -> Table {
        let words: Vec<AtomicU64> = (0..Table::words_for(slots, 4))
            .map(|_| AtomicU64::new(0))
            .collect();
        let words: &'static [AtomicU64] = Box::leak(words.into_boxed_slice());
        Table::init(words, slots, 4).unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn a_dead_process_keeps_its_counts_and_loses_its_gauges() {
        let t = table(1);
        // A pid that does not run: the largest a Linux pid can be, plus one.
        let dead = 4_194_305;
        let s = t.claim(dead);
        assert_eq!(s, 1);
        t.acquire(s, Kind::Lock, AcquireResult::Acquired, Some(700));
        let sums = t.sum();
        assert_eq!(
            sums.acquires[Kind::Lock.index()][AcquireResult::Acquired.index()],
            1
        );
        assert_eq!(sums.held, [0; 4], "a dead process holds nothing now");
        assert_eq!(sums.wait[0].count(), 1);
        // The only slot is the dead one's: the next process gets it folded.
        let me = std::process::id();
        assert_eq!(t.claim(me), 1);
        t.acquire(1, Kind::Lock, AcquireResult::Acquired, None);
        let sums = t.sum();
        assert_eq!(sums.acquires[0][0], 2, "the folded count stays");
        assert_eq!(sums.held[0], 1, "only the live process's hold");
        assert_eq!(sums.wait[0].max_micros, 700);
        // No slot left: slot 0, shared.
        assert_eq!(t.claim(me), 0);
    }

    #[test]
    fn a_header_of_another_layout_is_refused() {
        let t = table(2);
        assert!(Table::check(t.words, 2, 4).is_ok());
        assert!(Table::check(t.words, 3, 4).is_err());
        t.words[H_VERSION].store(VERSION + 1, Ordering::Relaxed);
        assert!(Table::check(t.words, 2, 4).is_err());
    }

    #[test]
    fn quantiles_come_from_the_buckets_and_stay_under_the_largest() {
        let mut h = Histogram::default();
        h.buckets[0] = 98; // ≤ 0.5 ms
        h.buckets[10] = 2; // 0.5–1 s
        h.max_micros = 900_000;
        assert!(h.quantile(0.5) <= 0.0005);
        assert!(h.quantile(0.99) > 0.5 && h.quantile(0.99) <= 0.9);
        assert_eq!(Histogram::default().quantile(0.5), 0.0);
    }
}
