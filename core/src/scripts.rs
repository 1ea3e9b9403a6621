//! The Lua scripts. Each runs atomically in Redis and is sent by EVALSHA;
//! redis-rs re-sends the source when Redis answers NOSCRIPT (after a restart
//! or `SCRIPT FLUSH`).

use once_cell::sync::Lazy;
use redis::Script;

/// Acquire: one round trip whatever the outcome.
///
/// KEYS: lock, fence, waiters. ARGV: token, ttl ms, fencing ("1"/"0"),
/// waiter-mark ms ("0" when the caller will not wait).
///
/// Returns `{1, fence}` when the caller holds the lock (fence -1 without
/// fencing) or `{0, pttl}` when someone else does. A caller that will wait
/// marks itself in the same script, so a release that happens between this
/// reply and its BLPOP still pushes a wake-up: no lost wake-up.
///
/// Seeing its own token is the retry of an acquire whose reply was lost: it
/// is reported as acquired (with the TTL renewed), not as a conflict.
pub static ACQUIRE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local fence = -1
  if ARGV[3] == '1' then
    if current == false then
      fence = redis.call('INCR', KEYS[2])
    else
      fence = tonumber(redis.call('GET', KEYS[2]) or '-1')
    end
  end
  return {1, fence}
end
local mark = tonumber(ARGV[4])
if mark > 0 and redis.call('PTTL', KEYS[3]) < mark then
  redis.call('SET', KEYS[3], '1', 'PX', mark)
end
return {0, redis.call('PTTL', KEYS[1])}
",
    )
});

/// Release: delete only while the token is the caller's, then wake one
/// waiter if any is marked.
///
/// KEYS: lock, waiters, wake. ARGV: token. Returns 1 if released, 0 if the
/// lock had expired or belongs to someone else (left untouched).
pub static RELEASE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
local waiting = redis.call('PTTL', KEYS[2])
if waiting > 0 then
  redis.call('DEL', KEYS[3])
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], waiting)
end
return 1
",
    )
});

/// Force release: delete whoever holds it and wake one waiter.
///
/// KEYS: lock, waiters, wake. Returns 1 if a lock was deleted.
pub static FORCE_RELEASE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local deleted = redis.call('DEL', KEYS[1])
local waiting = redis.call('PTTL', KEYS[2])
if deleted == 1 and waiting > 0 then
  redis.call('DEL', KEYS[3])
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], waiting)
end
return deleted
",
    )
});

/// Refresh: set a new TTL only while the token is the caller's.
///
/// KEYS: lock. ARGV: token, ttl ms. Returns 1 if refreshed, else 0.
pub static REFRESH: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Remaining lifetime of the caller's hold.
///
/// KEYS: lock. ARGV: token. Returns the PTTL in ms if the token is the
/// caller's (-1: no expiry), or -3 if it is not held by the caller.
pub static OWNED_TTL: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -3
end
return redis.call('PTTL', KEYS[1])
",
    )
});
