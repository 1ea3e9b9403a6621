//! Releasing many holds at once, as a request end does: a server that does
//! not answer is given up once, not once per hold.
//!
//! Without this, a request that ends holding 20 locks on a stalled Redis
//! waits 20 x `timeout` (10 s at 0.5 s), and under PHP-FPM every worker
//! does so after every request: a Redis hiccup becomes an outage of the
//! site. Here the first release that fails as unavailable marks its server;
//! the holds left on that server are not sent but remembered
//! ([`Locks::release_later`]) and released once the server answers again,
//! as the locks of acquires with an unknown outcome are (`orphans`).

use std::time::{Duration, Instant};

use crate::locks::Locks;
use crate::vocab::Kind;

/// One hold to release.
pub struct Pending<'a> {
    /// Who to release it with.
    pub client: &'a dyn Locks,
    /// A write (exclusive) or a read hold.
    pub kind: Kind,
    /// The lock name (without prefix).
    pub name: &'a [u8],
    /// The owner token it is stored under.
    pub token: &'a str,
    /// Its TTL: how long to remember it for a later release at most.
    pub ttl: Duration,
    /// When it was acquired (for the hold-time metrics).
    pub acquired_at: Option<Instant>,
}

/// What [`release_all`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Releases sent that found the hold still theirs.
    pub released: usize,
    /// Releases sent that found the hold gone (expired, or taken over).
    pub lost: usize,
    /// Holds remembered for later: their server failed as unavailable (the
    /// release that found so included).
    pub deferred: usize,
    /// Releases that failed otherwise (a server error): left to their TTL.
    pub failed: usize,
}

/// The servers given up on (by [`Locks::server`]): one found unavailable
/// is not sent releases again until the caller forgets it (the PHP layer:
/// at request end).
#[derive(Debug, Default)]
pub struct GivenUp(Vec<String>);

impl GivenUp {
    /// None given up yet.
    pub fn new() -> Self {
        GivenUp(Vec::new())
    }

    /// Whether `server` is given up on.
    pub fn contains(&self, server: &str) -> bool {
        self.0.iter().any(|s| s == server)
    }

    /// Forgets every server given up on.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// What became of one hold in [`release_one`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Released: it was still the holder's.
    Released,
    /// Found gone (expired, or taken over).
    Lost,
    /// Remembered for a later release: its server is given up on.
    Deferred,
    /// Failed otherwise (a server error): left to its TTL.
    Failed,
}

/// Releases `hold`, unless its server is given up on in `given_up`: then,
/// and when this release fails as unavailable (the server is then added),
/// the hold is remembered for a later release ([`Locks::release_later`]).
pub fn release_one(hold: Pending<'_>, given_up: &mut GivenUp) -> Outcome {
    let server = hold.client.server();
    if given_up.contains(server) {
        hold.client
            .release_later(hold.kind, hold.name, hold.token, hold.ttl);
        // Not sent, so no release counted it: it leaves this process's holds
        // all the same (a request's holds are top-level ones, never a
        // multi-lock's names, so the host's metrics are counted directly).
        crate::metrics::release(
            hold.client.metrics_kind(hold.kind),
            crate::metrics::ReleaseResult::Error,
            hold.acquired_at.map(|t| t.elapsed()),
        );
        return Outcome::Deferred;
    }
    let outcome = match hold.kind {
        Kind::Exclusive => hold.client.release(hold.name, hold.token, hold.acquired_at),
        Kind::Shared => hold
            .client
            .release_read(hold.name, hold.token, hold.acquired_at),
    };
    match outcome {
        Ok(true) => Outcome::Released,
        Ok(false) => Outcome::Lost,
        Err(err) if err.is_unavailable() => {
            given_up.0.push(server.to_owned());
            hold.client
                .release_later(hold.kind, hold.name, hold.token, hold.ttl);
            Outcome::Deferred
        }
        Err(_) => Outcome::Failed,
    }
}

/// Releases every hold in `holds`, in order, by [`release_one`]: after a
/// release fails as unavailable, no more releases are sent to that server
/// (the rest of its holds are remembered for later); other servers' holds
/// are released as usual.
pub fn release_all<'a>(
    holds: impl IntoIterator<Item = Pending<'a>>,
    given_up: &mut GivenUp,
) -> Released {
    let mut done = Released::default();
    for hold in holds {
        match release_one(hold, given_up) {
            Outcome::Released => done.released += 1,
            Outcome::Lost => done.lost += 1,
            Outcome::Deferred => done.deferred += 1,
            Outcome::Failed => done.failed += 1,
        }
    }
    done
}
