//! Counting semaphores: at most `limit` holders of one name at once, each
//! permit with its own TTL, and waits woken in arrival order.
//!
//! # What is stored
//! All keys of semaphore `name` are `<prefix>{<name>}:sem:…` (one Redis
//! Cluster slot, see `keys`; a lock of the same name uses other keys):
//! - `:sem:permits`, a sorted set of the holders' owner tokens scored by
//!   their expiry (ms, the server's own clock, read by `TIME` inside each
//!   script). A permit whose score has passed is no longer held; every script
//!   that counts permits first removes those. So a holder that dies frees its
//!   permit when its TTL ends, without anyone releasing it. The key itself
//!   expires a second after its last permit.
//! - `:sem:waiters` (token → deadline, ms) and `:sem:queue` (entries
//!   `"<ttl ms> <limit> <token>"` in arrival order): the waiters, as for the
//!   exclusive lock (see `scripts`).
//! - `:sem:wake:<token>`: the list a waiter blocks on (BLPOP).
//!
//! # Arrival order
//! A caller that will wait registers in the same script that found no free
//! permit. Whenever a script sees free permits (a release frees one, a
//! permit expired, a force release), it first grants them to the waiters at
//! the head of the queue, in order, each up to the limit that waiter asked
//! with: the grant adds the waiter's permit and pushes onto its wake list,
//! so the waiter holds it when its BLPOP returns, with no further round trip.
//! A newcomer takes a free permit only when no live waiter is queued, so it
//! never overtakes one; a releaser cannot barge back in either.
//!
//! A waiter blocks at most until its own deadline and until the earliest
//! permit expiry the acquire script reported: a permit freed by its TTL is
//! not released by anyone, so the waiters' next attempts (at that moment)
//! find it free and hand it to the head of the queue.
//!
//! # Safe to run twice
//! Every script may be sent twice (see `scripts`, "Safe to run twice").
//! Acquire: a re-send finds its own token among the permits and reports
//! success (renewing it); a re-sent registration finds the waiter already in
//! the set and does not queue it again. Refresh and the reads are idempotent
//! by nature. Release and force release store their answer under
//! `<…>:sem:call:<id>` (declared in KEYS) on their first run; a re-send finds
//! the token gone and returns that answer instead of reporting a lost
//! permit, and changes nothing.
//!
//! # Limits
//! A permit is one unit: there are no weights. Callers of one name are
//! expected to agree on the limit; each acquire is checked against its own
//! `limit`, and a queued waiter is granted only while fewer than its own
//! limit are held. Semaphores need one node's atomic scripts: one server, a
//! Sentinel master or a cluster, not Redlock ([`Semaphores::for_deployment`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::dsn::{Deployment, Dsn};
use crate::error::Result;
use crate::locks::Locks;
use crate::node::Node;
use crate::orphans::Undo;
use crate::pool::Pool;
use crate::release::resend_window_ms;
use crate::scripts::LockScript;
use crate::stats::Stats;
use crate::token::new_token;
use crate::vocab::{millis, AcquireOutcome, ClientOptions, Ownership, Wait};

/// The Redis keys of one semaphore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemaphoreKeys {
    /// Sorted set: holders' tokens scored by expiry (ms, server time).
    pub permits: Vec<u8>,
    /// Sorted set: waiting tokens scored by deadline (ms, server time).
    pub waiters: Vec<u8>,
    /// List: the waiters in arrival order.
    pub queue: Vec<u8>,
    base: Vec<u8>,
}

impl SemaphoreKeys {
    /// The keys of semaphore `name` under `prefix`: `<prefix>{<name>}:sem:…`.
    pub fn new(prefix: &[u8], name: &[u8]) -> Self {
        let mut base = Vec::with_capacity(prefix.len() + name.len() + 6);
        base.extend_from_slice(prefix);
        base.push(b'{');
        base.extend_from_slice(name);
        base.extend_from_slice(b"}:sem");
        SemaphoreKeys {
            permits: with(&base, b":permits"),
            waiters: with(&base, b":waiters"),
            queue: with(&base, b":queue"),
            base,
        }
    }

    /// The list on which the waiter holding `token` blocks. The scripts
    /// derive the same name from the permits key (KEYS[1] less `:permits`).
    pub fn wake(&self, token: &str) -> Vec<u8> {
        with(&self.base, format!(":wake:{token}").as_bytes())
    }

    /// The marker of a release or force release with call id `call`.
    pub fn call(&self, call: &str) -> Vec<u8> {
        with(&self.base, format!(":call:{call}").as_bytes())
    }
}

fn with(base: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(base.len() + suffix.len());
    key.extend_from_slice(base);
    key.extend_from_slice(suffix);
    key
}

/// Lua shared by the scripts. KEYS[1] is always the permits set; KEYS[2]
/// and KEYS[3], where given, the waiters set and the queue.
///
/// `plan(now, count, me)`: which queued waiters get a permit when `count`
/// permits are held: the live waiters at the head of the queue, in order,
/// while fewer than each one's limit are held (stopping at the first that
/// does not fit, so no one is overtaken). Entries of waiters that left or
/// whose deadline passed (they died) are skipped; at most 64 entries are
/// read per call (in chunks of 8). `me`, the caller's own token, gets no wake push. Returns
/// nil, having written nothing, when a wake list is not on this node (a
/// cluster slot in migration; see `scripts`, `reachable`).
///
/// `commit(now, plan, me)`: carries it out. `keep(now)`: lets the permits key
/// expire a second after its last permit.
const COMMON: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local base = string.sub(KEYS[1], 1, -9)
local function wake_of(token)
  return base .. ':wake:' .. token
end
local function reachable(key)
  local probe = redis.pcall('EXISTS', key)
  return type(probe) ~= 'table' or not probe.err
end
local function busy()
  return redis.error_reply('TRYAGAIN the semaphore slot is being migrated, try again')
end
local function keep(now)
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
  end
end
local function plan(now, count, me)
  local p = {used = 0, stale = {}, grants = {}}
  -- Read in chunks: usually the first entry decides.
  local from, done = 0, false
  while not done and from < 64 do
    local entries = redis.call('LRANGE', KEYS[3], from, from + 7)
    for i, entry in ipairs(entries) do
      local ttl, limit, token = string.match(entry, '^(%d+) (%d+) (.+)$')
      local deadline = token and redis.call('ZSCORE', KEYS[2], token)
      if deadline and tonumber(deadline) > now then
        if count >= tonumber(limit) then
          done = true
          break
        end
        p.grants[#p.grants + 1] = {ttl = tonumber(ttl), token = token, left = tonumber(deadline) - now}
        count = count + 1
      elseif deadline then
        p.stale[#p.stale + 1] = token
      end
      p.used = from + i
    end
    done = done or #entries < 8
    from = from + 8
  end
  for _, g in ipairs(p.grants) do
    if g.token ~= me and not reachable(wake_of(g.token)) then
      return nil
    end
  end
  return p
end
local function commit(now, p, me)
  if p.used > 0 then
    redis.call('LTRIM', KEYS[3], p.used, -1)
  end
  for _, token in ipairs(p.stale) do
    redis.call('ZREM', KEYS[2], token)
  end
  for _, g in ipairs(p.grants) do
    redis.call('ZREM', KEYS[2], g.token)
    redis.call('ZADD', KEYS[1], now + g.ttl, g.token)
    if g.token ~= me then
      local wake = wake_of(g.token)
      redis.call('RPUSH', wake, 1)
      redis.call('PEXPIRE', wake, g.left + 1000)
    end
  end
  if #p.grants > 0 then
    keep(now)
  end
end
";

/// Acquire a permit: one round trip whatever the outcome.
///
/// KEYS: permits, waiters, queue, the caller's wake list. ARGV: token, limit,
/// ttl ms, wait ms left ("0": will not wait any more), registered ("1" when
/// an earlier attempt of this acquire registered the caller).
///
/// Returns `{1, 0}` when the caller holds a permit (renewed to `ttl` if it
/// already held one), else `{0, ms}`: how long until the earliest permit
/// expires (the longest the caller should block).
pub static ACQUIRE: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{COMMON}
local me, limit, ttl, wait_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local registered = ARGV[5] == '1'
local entry = ARGV[3] .. ' ' .. ARGV[2] .. ' ' .. me
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local function leave()
  if redis.call('ZREM', KEYS[2], me) == 1 then
    redis.call('LREM', KEYS[3], 1, entry)
  end
end
local function hold()
  redis.call('ZADD', KEYS[1], now + ttl, me)
  keep(now)
  if registered then
    leave()
    redis.call('DEL', KEYS[4])
  end
  return {{1, 0}}
end
if redis.call('ZSCORE', KEYS[1], me) then
  return hold()
end
local held = redis.call('ZCARD', KEYS[1])
local p = plan(now, held, me)
if not p then
  return busy()
end
if #p.grants > 0 or p.used > 0 then
  commit(now, p, me)
  if redis.call('ZSCORE', KEYS[1], me) then
    return hold()
  end
  held = held + #p.grants
end
if held < limit then
  local waiting = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
  local mine = redis.call('ZSCORE', KEYS[2], me)
  if mine and tonumber(mine) > now then
    waiting = waiting - 1
  end
  if waiting == 0 then
    return hold()
  end
end
if wait_ms > 0 then
  if redis.call('ZADD', KEYS[2], now + wait_ms, me) == 1 then
    redis.call('RPUSH', KEYS[3], entry)
  end
  -- Both are always given the same expiry: one PTTL tells for both.
  if redis.call('PTTL', KEYS[3]) < wait_ms + 1000 then
    redis.call('PEXPIRE', KEYS[2], wait_ms + 1000)
    redis.call('PEXPIRE', KEYS[3], wait_ms + 1000)
  end
elseif registered then
  leave()
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if held < limit or not first[2] then
  -- Free permits, but live waiters queued beyond what one call reads:
  -- try again soon (only after many waiters died).
  return {{0, 10}}
end
return {{0, tonumber(first[2]) - now}}
"
    ))
});

/// Release a permit, only while the token holds one; the freed permit goes
/// to the first live waiter.
///
/// KEYS: permits, waiters, queue, the call's marker. ARGV: token, how long a
/// re-send of this call can come (ms). Returns 1 if released, 0 if the
/// permit had expired (or was never held); TRYAGAIN while the slot migrates
/// (nothing changed).
pub static RELEASE: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{COMMON}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return tonumber(redis.call('GET', KEYS[4]) or '0')
end
local now = now_ms()
if tonumber(score) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local p = plan(now, redis.call('ZCARD', KEYS[1]) - 1, false)
if not p then
  return busy()
end
redis.call('ZREM', KEYS[1], ARGV[1])
commit(now, p, false)
redis.call('SET', KEYS[4], '1', 'PX', ARGV[2])
return 1
"
    ))
});

/// Force release: frees every permit, granting them to the waiters.
///
/// KEYS: permits, waiters, queue, the call's marker. ARGV: how long a
/// re-send can come (ms). Returns how many live permits there were.
pub static FORCE_RELEASE: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{COMMON}
local first = redis.call('GET', KEYS[4])
if first then
  return tonumber(first)
end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
local p = plan(now, 0, false)
if not p then
  return busy()
end
redis.call('DEL', KEYS[1])
commit(now, p, false)
redis.call('SET', KEYS[4], held, 'PX', ARGV[1])
return held
"
    ))
});

/// Refresh: a new TTL for the caller's permit, only while it holds one.
///
/// KEYS: permits. ARGV: token, ttl ms. Returns 1 if refreshed, else 0.
pub static REFRESH: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{COMMON}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local now = now_ms()
if not score or tonumber(score) <= now then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
keep(now)
return 1
"
    ))
});

/// Time left on the caller's permit.
///
/// KEYS: permits. ARGV: token. Returns ms left, or -3 if it holds none.
pub static OWNED_TTL: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{COMMON}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local left = score and (tonumber(score) - now_ms())
if not left or left <= 0 then
  return -3
end
return left
"
    ))
});

/// How many permits are held now. KEYS: permits.
pub static HOLDERS: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{COMMON}
return redis.call('ZCOUNT', KEYS[1], '(' .. now_ms(), '+inf')
"
    ))
});

static GLOBAL_STATS: Lazy<Arc<Mutex<Stats>>> = Lazy::new(|| Arc::new(Mutex::new(Stats::new())));

/// After `fork()`, in the child: see `fork`.
///
/// # Safety
/// Only from the `fork()` child handler.
pub(crate) unsafe fn repair_after_fork() {
    // SAFETY: as the caller's.
    unsafe { crate::after_fork::repair_shared(&GLOBAL_STATS, Stats::new) };
}

/// Builds the semaphore scripts now (see `fork::before_threads`).
pub(crate) fn build_scripts() {
    for script in [
        &ACQUIRE,
        &RELEASE,
        &FORCE_RELEASE,
        &REFRESH,
        &OWNED_TTL,
        &HOLDERS,
    ] {
        Lazy::force(script);
    }
}

/// Semaphore operations against one node (a server, a Sentinel master or a
/// cluster) with one set of options. Cheap to create: connections live in
/// the shared [`Pool`].
#[derive(Clone)]
pub struct Semaphores {
    pub(crate) node: Node,
    prefix: Vec<u8>,
}

impl Semaphores {
    /// Semaphores on the process-wide pool, with the process-wide semaphore
    /// metrics ([`Semaphores::global_stats`]).
    pub fn new(dsn: Dsn, options: ClientOptions) -> Self {
        Self::with_pool(Pool::global(), Self::global_stats(), dsn, options)
    }

    /// Semaphores on the given pool and metrics (tests use their own).
    pub fn with_pool(
        pool: Arc<Pool>,
        stats: Arc<Mutex<Stats>>,
        dsn: Dsn,
        options: ClientOptions,
    ) -> Self {
        Semaphores {
            node: Node::new(pool, stats, dsn, &options),
            prefix: options.prefix,
        }
    }

    /// Semaphores on `deployment`, or None for Redlock: a count kept on
    /// independent masters has no majority rule that bounds the holders
    /// (two callers may each be counted on a different majority).
    pub fn for_deployment(deployment: Deployment, options: ClientOptions) -> Option<Self> {
        match deployment {
            Deployment::One(dsn) => Some(Self::new(dsn, options)),
            Deployment::Redlock(_) => None,
        }
    }

    /// This process's semaphore metrics (apart from the locks' own).
    pub fn global_stats() -> Arc<Mutex<Stats>> {
        Arc::clone(&GLOBAL_STATS)
    }

    /// The Redis keys of semaphore `name`.
    pub fn keys(&self, name: &[u8]) -> SemaphoreKeys {
        SemaphoreKeys::new(&self.prefix, name)
    }

    /// Gives back `token`'s permit of `name`, to the first waiter if any.
    /// False when it had expired (or was never held).
    pub fn release(&self, name: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool> {
        let released = self.release_keys(&self.keys(name), token);
        self.node.stats.lock().record_release(
            crate::metrics::Kind::Semaphore,
            &released,
            acquired_at.map(|t| t.elapsed()),
        );
        released
    }

    /// How `token`'s permit on `keys` is given back later: by its own
    /// release, as the permits are not a lock's keys.
    pub(crate) fn undo(&self, keys: SemaphoreKeys, token: &str) -> Undo {
        let (semaphores, owner) = (self.clone(), token.to_owned());
        Undo::Release(Box::new(move || semaphores.release_keys(&keys, &owner)))
    }

    fn release_keys(&self, keys: &SemaphoreKeys, token: &str) -> Result<bool> {
        // The call id is drawn once: a re-send by the pool is the same call.
        let mut release = RELEASE
            .key(&keys.permits)
            .key(&keys.waiters)
            .key(&keys.queue)
            .key(keys.call(&new_token()))
            .arg(token)
            .arg(resend_window_ms(&self.node.target));
        let released: i64 = self.run(|con| release.invoke(con))?;
        Ok(released == 1)
    }

    /// A new TTL for `token`'s permit of `name`, only while it holds one.
    pub fn refresh(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool> {
        let keys = self.keys(name);
        let refreshed: i64 = self.run(|con| {
            REFRESH
                .key(&keys.permits)
                .arg(token)
                .arg(millis(ttl))
                .invoke(con)
        })?;
        Ok(refreshed == 1)
    }

    /// Whether `token` holds a permit of `name`, and for how long still.
    pub fn ownership(&self, name: &[u8], token: &str) -> Result<Ownership> {
        let keys = self.keys(name);
        let left: i64 = self.run(|con| OWNED_TTL.key(&keys.permits).arg(token).invoke(con))?;
        Ok(if left > 0 {
            Ownership::Mine {
                remaining: Some(Duration::from_millis(left.unsigned_abs())),
            }
        } else {
            Ownership::NotMine
        })
    }

    /// How many permits of `name` are held now.
    pub fn holders(&self, name: &[u8]) -> Result<u64> {
        let keys = self.keys(name);
        let n: i64 = self.run(|con| HOLDERS.key(&keys.permits).invoke(con))?;
        Ok(n.unsigned_abs())
    }

    /// Frees every permit of `name` (granting them to waiters); the number
    /// that were held.
    pub fn force_release(&self, name: &[u8]) -> Result<u64> {
        let keys = self.keys(name);
        let mut force = FORCE_RELEASE
            .key(&keys.permits)
            .key(&keys.waiters)
            .key(&keys.queue)
            .key(keys.call(&new_token()))
            .arg(resend_window_ms(&self.node.target));
        let held: i64 = self.run(|con| force.invoke(con))?;
        Ok(held.unsigned_abs())
    }

    fn run<T>(
        &self,
        op: impl FnMut(&mut dyn redis::ConnectionLike) -> std::result::Result<T, redis::RedisError>,
    ) -> Result<T> {
        self.node.run(op)
    }
}

/// The permits of semaphores with one `limit`, seen as [`Locks`]: a
/// permit is acquired, released and refreshed like a lock, so the PHP layer
/// keeps, releases at request end and fails open for permits exactly as
/// for locks. `is_locked` is "every permit taken"; `force_release` frees
/// all permits.
#[derive(Clone)]
pub struct Permits {
    semaphores: Arc<Semaphores>,
    limit: u32,
}

impl Permits {
    /// Permits of at most `limit` holders per name.
    pub fn new(semaphores: Arc<Semaphores>, limit: u32) -> Self {
        Permits { semaphores, limit }
    }

    /// The limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

impl Locks for Permits {
    fn acquire(
        &self,
        name: &[u8],
        token: &str,
        ttl: Duration,
        wait: Wait,
    ) -> Result<AcquireOutcome> {
        self.semaphores.acquire(name, self.limit, token, ttl, wait)
    }
    fn release(&self, name: &[u8], token: &str, acquired_at: Option<Instant>) -> Result<bool> {
        self.semaphores.release(name, token, acquired_at)
    }
    fn refresh(&self, name: &[u8], token: &str, ttl: Duration) -> Result<bool> {
        self.semaphores.refresh(name, token, ttl)
    }
    fn ownership(&self, name: &[u8], token: &str) -> Result<Ownership> {
        self.semaphores.ownership(name, token)
    }
    fn is_locked(&self, name: &[u8]) -> Result<bool> {
        Ok(self.semaphores.holders(name)? >= u64::from(self.limit))
    }
    fn force_release(&self, name: &[u8]) -> Result<bool> {
        Ok(self.semaphores.force_release(name)? > 0)
    }
    // A permit has no read kind: none is taken, so none is held.
    fn server(&self) -> &str {
        self.semaphores.node.server()
    }
    fn metrics_kind(&self, _kind: crate::vocab::Kind) -> crate::metrics::Kind {
        crate::metrics::Kind::Semaphore
    }
    /// A permit is kept in the orphans registry with its own release.
    fn release_later(&self, _kind: crate::vocab::Kind, name: &[u8], token: &str, ttl: Duration) {
        let keys = self.semaphores.keys(name);
        let target = &self.semaphores.node.target;
        let lock = keys.permits.clone();
        let undo = self.semaphores.undo(keys, token);
        crate::orphans::remember(target, &lock, undo, token, ttl);
    }
    fn with_stats(&self, stats: Arc<Mutex<Stats>>) -> Arc<dyn Locks> {
        let semaphores = Semaphores {
            node: self.semaphores.node.with_stats(stats),
            prefix: self.semaphores.prefix.clone(),
        };
        Arc::new(Permits {
            semaphores: Arc::new(semaphores),
            limit: self.limit,
        })
    }
    fn on_pool(&self, pool: Arc<Pool>) -> Arc<dyn Locks> {
        let semaphores = Semaphores {
            node: self.semaphores.node.on_pool(pool),
            prefix: self.semaphores.prefix.clone(),
        };
        Arc::new(Permits {
            semaphores: Arc::new(semaphores),
            limit: self.limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_hash_tag_and_differ_from_the_locks() {
        let k = SemaphoreKeys::new(b"lock:", b"a}b");
        assert_eq!(k.permits, b"lock:{a}b}:sem:permits".to_vec());
        let tag = b"lock:{a}b}";
        for key in [&k.permits, &k.waiters, &k.queue, &k.wake("t"), &k.call("c")] {
            assert!(key.starts_with(tag));
        }
        let lock = crate::keys::LockKeys::new(b"lock:", b"a}b");
        for key in [&k.permits, &k.waiters, &k.queue] {
            assert!(![
                lock.lock.clone(),
                lock.fence(),
                lock.waiters(),
                lock.queue()
            ]
            .contains(key));
        }
        // The scripts derive the wake list from the permits key.
        let base = &k.permits[..k.permits.len() - b":permits".len()];
        assert_eq!(k.wake("t"), [base, b":wake:t"].concat());
    }
}
