//! Every name of a multi-lock at once, on one node: one script takes them
//! all or none ([`scripts::ACQUIRE_ALL`]), and the hold is confirmed by
//! replicas as any other (`replicas`). Where the names may live on different
//! nodes (a cluster, Redlock), `multi` takes them one by one instead.

use std::time::Duration;

use crate::backend::{Backend, HoldKeys};
use crate::client::LockClient;
use crate::error::Result;
use crate::keys::LockKeys;
use crate::orphans::Undo;
use crate::scripts::{self, Invocation};
use crate::vocab::millis;

/// All of a multi-lock's names, held by one owner token on one node.
struct AllHold<'a> {
    client: &'a LockClient,
    keys: Vec<LockKeys>,
    token: &'a str,
}

impl HoldKeys for AllHold<'_> {
    fn token(&self) -> &str {
        self.token
    }

    fn main_key(&self) -> &[u8] {
        &self.keys[0].lock
    }

    /// The first name's owner-checked TTL reset: a write of the caller's
    /// own, after which `WAIT` covers the whole script's writes too (one
    /// master replicates its writes in order).
    fn refresh_call(&self, ttl_ms: u64) -> Invocation<'static> {
        scripts::REFRESH
            .key(&self.keys[0].lock)
            .arg(self.token)
            .arg(ttl_ms)
    }

    /// Every name released.
    fn undo(&self) -> Undo {
        let (client, keys, token) = (
            self.client.clone(),
            self.keys.clone(),
            self.token.to_owned(),
        );
        Undo::Release(Box::new(move || {
            let mut any = false;
            for keys in &keys {
                any |= crate::release::release_on(
                    &client.node.entry,
                    &client.node.target,
                    keys,
                    &token,
                )? == 1;
            }
            Ok(any)
        }))
    }
}

impl LockClient {
    /// Takes all of `names` for `token` in one script (see
    /// [`scripts::ACQUIRE_ALL`]), then has replicas confirm them where the
    /// deployment asks for it; None on a cluster, where they may live in
    /// different slots.
    pub fn acquire_all(
        &self,
        names: &[Vec<u8>],
        token: &str,
        ttl: Duration,
    ) -> Option<Result<Option<usize>>> {
        if !self.node.capabilities.atomic_multi || names.is_empty() {
            return None;
        }
        let hold = AllHold {
            client: self,
            keys: names.iter().map(|name| self.keys(name)).collect(),
            token,
        };
        let mut call = scripts::ACQUIRE_ALL.key(&hold.keys[0].lock);
        for keys in &hold.keys[1..] {
            call = call.key(&keys.lock);
        }
        let mut call = call.arg(token).arg(millis(ttl));
        let held = self.run(|con| call.invoke::<i64>(con)).map(|held| {
            usize::try_from(held)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .filter(|i| *i < names.len())
        });
        Some(match held {
            // All of them: confirmed by replicas, or given back.
            Ok(None) => self.node.confirm_replicas(&hold, ttl).map(|()| None),
            other => other,
        })
    }
}
