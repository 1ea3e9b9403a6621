//! The Lua scripts. Each runs atomically in Redis and is sent by EVALSHA;
//! redis-rs re-sends the source when Redis answers NOSCRIPT (after a restart
//! or `SCRIPT FLUSH`).

use once_cell::sync::Lazy;
use redis::Script;

/// Lua shared by the releasing scripts: frees the lock, or, when live
/// waiters are registered in the `waiters` sorted set (scored by their
/// deadlines), wakes one through the `wake` list and reserves the lock for it
/// for 200 ms by storing `"\xffhandoff"`. The reservation stops the releaser
/// (or anyone trying once) from barging in before the woken waiter's attempt
/// arrives, which would send that waiter to the back of the queue; its byte
/// 0xff is never valid UTF-8, so no owner token can equal it. If the woken
/// waiter died, the others are delayed at most the 200 ms.
const HAND_OVER: &str = r"
local function hand_over(lock, waiters, wake)
  if redis.call('EXISTS', waiters) == 0 then
    redis.call('DEL', lock)
    return
  end
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', waiters, '-inf', now_ms)
  if redis.call('ZCARD', waiters) == 0 then
    redis.call('DEL', lock)
    return
  end
  redis.call('SET', lock, '\255handoff', 'PX', 200)
  redis.call('DEL', wake)
  redis.call('RPUSH', wake, '1')
  redis.call('PEXPIRE', wake, 10000)
end
";

/// Acquire: one round trip whatever the outcome.
///
/// KEYS: lock, fence, waiters. ARGV: token, ttl ms, fencing ("1"/"0"), wait
/// ms left ("0" when the caller will not wait), woken ("1" when the caller
/// was just woken by a release, which reserved the lock for it).
///
/// Returns `{1, fence}` when the caller holds the lock (fence -1 without
/// fencing) or `{0, pttl}` when someone else does. A caller that will wait
/// registers in the waiters set in the same script, so a release that happens
/// between this reply and its BLPOP still wakes it: no lost wake-up.
///
/// Seeing its own token is the retry of an acquire whose reply was lost: it
/// is reported as acquired (with the TTL renewed and no new fencing token).
pub static ACQUIRE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] or (current == '\255handoff' and ARGV[5] == '1') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  local fence = -1
  if ARGV[3] == '1' then
    if current ~= ARGV[1] then
      fence = redis.call('INCR', KEYS[2])
    else
      fence = tonumber(redis.call('GET', KEYS[2]) or '-1')
    end
  end
  return {1, fence}
end
local wait_ms = tonumber(ARGV[4])
if wait_ms > 0 then
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZADD', KEYS[3], now_ms + wait_ms, ARGV[1])
  if redis.call('PTTL', KEYS[3]) < wait_ms + 1000 then
    redis.call('PEXPIRE', KEYS[3], wait_ms + 1000)
  end
end
return {0, redis.call('PTTL', KEYS[1])}
",
    )
});

/// Release: only while the token is the caller's; then hand over to a live
/// waiter or free the lock.
///
/// KEYS: lock, waiters, wake. ARGV: token. Returns 1 if released, 0 if the
/// lock had expired or belongs to someone else (left untouched).
pub static RELEASE: Lazy<Script> = Lazy::new(|| {
    Script::new(&format!(
        r"{HAND_OVER}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
hand_over(KEYS[1], KEYS[2], KEYS[3])
return 1
"
    ))
});

/// Force release: whoever holds it; then hand over to a live waiter.
///
/// KEYS: lock, waiters, wake. Returns 1 if a lock was held.
pub static FORCE_RELEASE: Lazy<Script> = Lazy::new(|| {
    Script::new(&format!(
        r"{HAND_OVER}
local current = redis.call('GET', KEYS[1])
if current == false or current == '\255handoff' then
  return 0
end
hand_over(KEYS[1], KEYS[2], KEYS[3])
return 1
"
    ))
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
