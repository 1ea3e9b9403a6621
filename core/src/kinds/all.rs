//! Every name of a multi-lock at once, on one node: one script takes them
//! all or none ([`scripts::ACQUIRE_ALL`]). The multi kind (`kinds::multi`)
//! uses it where the node can run it (`Capabilities::atomic_multi`); where
//! the names may live on different nodes (a cluster, Redlock) it takes them
//! one by one instead.

use crate::error::Result;
use crate::keys::LockKeys;
use crate::node::Node;
use crate::scripts;

/// A multi-lock's names on one node, taken by one owner token in one script.
pub(crate) struct AllNames<'a> {
    pub(crate) node: &'a Node,
    /// Every name's keys, in the multi-lock's (sorted) order.
    pub(crate) keys: Vec<LockKeys>,
    pub(crate) token: &'a str,
}

impl AllNames<'_> {
    /// One attempt at every name: None when all are the token's now (held
    /// by it already counts), else the index of the first that someone else
    /// holds (and nothing changed).
    pub(crate) fn take(&self, ttl_ms: u64) -> Result<Option<usize>> {
        let Some((first, rest)) = self.keys.split_first() else {
            return Ok(None);
        };
        let mut call = scripts::ACQUIRE_ALL.key(&first.lock);
        for keys in rest {
            call = call.key(&keys.lock);
        }
        let mut call = call.arg(self.token).arg(ttl_ms);
        let held: i64 = self.node.run(|con| call.invoke(con))?;
        Ok(usize::try_from(held)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .filter(|i| *i < self.keys.len()))
    }
}
