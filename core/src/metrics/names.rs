//! The most waited-for names: a fixed number of entries in the table, so a
//! million distinct names cannot grow it.
//!
//! An entry is a name (its first [`NAME_BYTES`] bytes) with the number of
//! acquires that waited for it. A name not in the table takes a free entry,
//! else the entry with the fewest waits, starting from that count plus one
//! (the "space-saving" rule: a name that keeps being waited for rises into
//! the table and stays, a cold one is pushed out). Only acquires that wait
//! come here, never the uncontended path. Counts are estimates at the edge
//! of the table, exact for names that stayed in it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Words of one entry: state, hash, count, length, the name's bytes.
pub(crate) const ENTRY_WORDS: usize = 32;
const STATE: usize = 0;
const HASH: usize = 1;
const COUNT: usize = 2;
const LEN: usize = 3;
const BYTES: usize = 4;
/// The bytes of a name kept (longer names are cut).
pub const NAME_BYTES: usize = (ENTRY_WORDS - BYTES) * 8;
/// Entries in a table: more than the names shown, so that names near the
/// top are not pushed out by a passing crowd.
pub const ENTRIES: usize = 128;

const EMPTY: u64 = 0;
const WRITING: u64 = 1;
const READY: u64 = 2;

/// The same hash in every process: a name's entry is found by it.
fn hash(name: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x7265_6469_735f_6c6b).hash_one(name) | 1
}

fn entries(area: &[AtomicU64]) -> impl Iterator<Item = &[AtomicU64]> {
    area.chunks_exact(ENTRY_WORDS)
}

/// Counts one wait for `name` in the entries of `area`.
pub(crate) fn waited(area: &[AtomicU64], name: &[u8]) {
    let h = hash(name);
    let mut fewest: Option<(&[AtomicU64], u64)> = None;
    for e in entries(area) {
        match e[STATE].load(Ordering::Acquire) {
            READY if e[HASH].load(Ordering::Relaxed) == h => {
                e[COUNT].fetch_add(1, Ordering::Relaxed);
                return;
            }
            READY => {
                let n = e[COUNT].load(Ordering::Relaxed);
                if fewest.is_none_or(|(_, least)| n < least) {
                    fewest = Some((e, n));
                }
            }
            EMPTY if take(e, EMPTY, h, name, 1) => return,
            _ => {}
        }
    }
    if let Some((e, least)) = fewest {
        take(e, READY, h, name, least + 1);
    }
}

/// Writes `name` into entry `e` if it is still in `state`.
fn take(e: &[AtomicU64], state: u64, h: u64, name: &[u8], count: u64) -> bool {
    if e[STATE]
        .compare_exchange(state, WRITING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    let kept = &name[..name.len().min(NAME_BYTES)];
    for (i, chunk) in kept.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        e[BYTES + i].store(u64::from_le_bytes(word), Ordering::Relaxed);
    }
    e[LEN].store(kept.len() as u64, Ordering::Relaxed);
    e[HASH].store(h, Ordering::Relaxed);
    e[COUNT].store(count, Ordering::Relaxed);
    e[STATE].store(READY, Ordering::Release);
    true
}

/// The `limit` names waited for most, most first, with their counts.
pub(crate) fn top(area: &[AtomicU64], limit: usize) -> Vec<(Vec<u8>, u64)> {
    let mut all: Vec<(Vec<u8>, u64)> = entries(area).filter_map(read).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(limit);
    all
}

/// One ready entry's name and count; None while it is being rewritten.
fn read(e: &[AtomicU64]) -> Option<(Vec<u8>, u64)> {
    if e[STATE].load(Ordering::Acquire) != READY {
        return None;
    }
    let h = e[HASH].load(Ordering::Relaxed);
    let len = usize::try_from(e[LEN].load(Ordering::Relaxed))
        .ok()?
        .min(NAME_BYTES);
    let mut name = Vec::with_capacity(len);
    for w in &e[BYTES..] {
        name.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    name.truncate(len);
    let count = e[COUNT].load(Ordering::Relaxed);
    // Rewritten while read: leave it out of this read.
    (e[STATE].load(Ordering::Acquire) == READY && e[HASH].load(Ordering::Relaxed) == h)
        .then_some((name, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(entries: usize) -> Vec<AtomicU64> {
        (0..entries * ENTRY_WORDS)
            .map(|_| AtomicU64::new(0))
            .collect()
    }

    #[test]
    fn a_hot_name_rises_into_a_full_table_and_cold_ones_leave() {
        let a = area(4);
        for i in 0..4u8 {
            waited(&a, &[b'c', i]);
        }
        for _ in 0..10 {
            waited(&a, b"hot");
        }
        let top = top(&a, 2);
        assert_eq!(top[0].0, b"hot");
        assert!(top[0].1 >= 10, "{top:?}");
        assert_eq!(super::top(&a, 100).len(), 4, "the table does not grow");
    }

    #[test]
    fn long_names_are_cut() {
        let a = area(1);
        let long = vec![b'x'; 1024];
        waited(&a, &long);
        waited(&a, &long);
        assert_eq!(top(&a, 1), vec![(vec![b'x'; NAME_BYTES], 2)]);
    }
}
