//! What Redis says about one lock now, for an operator
//! (`LockManager::inspect()`): held or not, by whom, for how long, and who
//! waits. One read-only script on one node ([`scripts::INSPECT`]); over
//! Redlock the same script on every master, and the majority's answer.
//! Nothing here is on the acquire or release path.

use std::time::Duration;

use crate::client::LockClient;
use crate::error::Result;
use crate::redlock::Redlock;
use crate::scripts;
use crate::token::{holder_of, Holder};
use crate::vocab::Kind;

/// One lock as Redis has it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// How it is held; None when free.
    pub kind: Option<Kind>,
    /// The owner token of an exclusive hold.
    pub owner: Option<String>,
    /// Who made that token, when this extension made it.
    pub holder: Option<Holder>,
    /// Time left of the hold (a read lock's: its last reader's); None when
    /// free or without expiry.
    pub ttl: Option<Duration>,
    /// Callers waiting for it now.
    pub waiters: u64,
    /// Readers holding it now.
    pub readers: u64,
    /// The last fencing token issued for the name.
    pub fence: Option<i64>,
}

/// The script's reply: kind, owner, ms left, waiters, readers, fence.
type Reply = (String, Vec<u8>, i64, i64, i64, String);

/// Locks that can be inspected (every deployment of `LockManager`).
pub trait Inspect {
    /// What Redis says about lock `name` now.
    fn inspect(&self, name: &[u8]) -> Result<Inspection>;
}

impl Inspect for LockClient {
    fn inspect(&self, name: &[u8]) -> Result<Inspection> {
        let keys = self.keys(name);
        let reply: Reply = self.run(|con| {
            scripts::INSPECT
                .key(&keys.lock)
                .key(keys.fence())
                .key(keys.waiters())
                .invoke(con)
        })?;
        Ok(from_reply(reply))
    }
}

/// The hold a majority of the masters agree on (their least time left, the
/// most waiters any of them has: waiters queue on one master); free when
/// no majority does. Redlock keeps no fencing tokens or read locks.
impl Inspect for Redlock {
    fn inspect(&self, name: &[u8]) -> Result<Inspection> {
        let keys = self.keys(name);
        let answers = self.ask_quorum(|_| {
            scripts::INSPECT
                .key(&keys.lock)
                .key(keys.fence())
                .key(keys.waiters())
                .into()
        })?;
        let each: Vec<Inspection> = answers.replies::<Reply>().map(from_reply).collect();
        let waiters = each.iter().map(|i| i.waiters).max().unwrap_or(0);
        let agreed = each.iter().find_map(|one| {
            let owner = one.owner.as_ref()?;
            let same: Vec<&Inspection> = each
                .iter()
                .filter(|i| i.owner.as_ref() == Some(owner))
                .collect();
            (same.len() >= self.quorum()).then(|| Inspection {
                ttl: same.iter().filter_map(|i| i.ttl).min(),
                ..one.clone()
            })
        });
        Ok(Inspection {
            waiters,
            fence: None,
            readers: 0,
            ..agreed.unwrap_or(Inspection {
                kind: None,
                owner: None,
                holder: None,
                ttl: None,
                waiters: 0,
                readers: 0,
                fence: None,
            })
        })
    }
}

fn from_reply((kind, owner, left_ms, waiters, readers, fence): Reply) -> Inspection {
    let kind = match kind.as_str() {
        "exclusive" => Some(Kind::Exclusive),
        "read" => Some(Kind::Shared),
        _ => None,
    };
    let owner =
        (kind == Some(Kind::Exclusive)).then(|| String::from_utf8_lossy(&owner).into_owned());
    Inspection {
        kind,
        holder: owner.as_deref().and_then(holder_of),
        owner,
        ttl: u64::try_from(left_ms).ok().map(Duration::from_millis),
        waiters: u64::try_from(waiters).unwrap_or(0),
        readers: u64::try_from(readers).unwrap_or(0),
        fence: fence.parse().ok(),
    }
}
