//! The Lua scripts. Each runs atomically in Redis and is sent by EVALSHA,
//! and as EVAL with its source when the server answers NOSCRIPT (see
//! [`LockScript`]).
//!
//! # Waiters and grants
//! A caller that will wait registers in the same script that found the lock
//! held: its token goes into the `waiters` sorted set, scored by its deadline
//! (ms), and, the first time, an entry `"<ttl ms> <fencing 0|1> <token>"` is
//! appended to the `queue` list, which keeps arrival order. A release that
//! finds a live waiter at the head of the queue does not free the lock: it
//! grants it, setting the lock to the waiter's token with the waiter's TTL
//! (and drawing its fencing token), and pushes the fencing token (-1 without
//! fencing) onto that waiter's own list `<lock>:wake:<token>`, on which the
//! waiter blocks in BLPOP. The waiter holds the lock the moment the release
//! runs and needs no further round trip; the releaser cannot barge back in;
//! waiters are served in arrival order.
//!
//! # The waiters mark
//! A waiter that registers while the lock is held under a plain token also
//! marks the lock, when the client asks it to (not on a cluster, see
//! `release`): it sets the value to the holder's token followed by
//! [`WAITERS_MARK`], with the same TTL. Every ownership check accepts the
//! marked value as the holder's. A holder that took the lock by a plain
//! `SET NX` (so no waiter had registered before it) may then delete a lock
//! still holding its plain token without reading the queue: by a native
//! compare-and-delete where the server has one (Valkey 9 `DELIFEQ`, Redis
//! 8.4 `DELEX … IFEQ`), else by [`PLAIN_RELEASE`]. A waiter's mark makes that
//! delete miss, and [`RELEASE`], which grants, runs instead. A lock granted
//! to a waiter holds the new holder's plain token; that holder did not take
//! it by a plain `SET NX` and so releases through [`RELEASE`]. (A grant
//! while others are still queued marks the new holder's value at once.)
//!
//! # A holder that dies
//! A holder that dies (SIGKILL, a fatal error, a lost host) never
//! releases; its lock ends at its TTL. Were the key simply to expire then,
//! a newcomer's plain `SET NX` would find it free in the instant before
//! the queued waiter, whose BLPOP times out at the same moment, comes back:
//! the newcomer would win nearly every time. So the mark also carries when
//! the holder's hold ends, in server time (ms): `<token>\0w<ends>`, and the
//! key lives [`GRACE_MS`] longer (readers' holds end with the longest
//! reader's, kept in `<lock>:readers`). Until the hold ends, every script
//! sees the holder's token; after it, none takes the holder for an owner
//! (release, refresh and ownership checks fail for it as for any expired
//! lock), and the first acquire to come, normally the head of the queue
//! waking up, hands the lock over as a release would (see `hand_over`):
//! to the head of the queue, itself or another. A newcomer's `SET NX`
//! misses all that time. When the queue is dead too, nobody comes, and the
//! key is gone [`GRACE_MS`] after the hold ended.
//!
//! The wake list's name is derived from the lock key inside the scripts
//! rather than passed in KEYS; it starts with the lock key and so carries the
//! same `{…}` hash tag, i.e. the same Redis Cluster slot.
//!
//! A waiter that gives up leaves the set and the queue in its last attempt
//! (the same script), so no grant can land after it stopped listening, and
//! so does a waiter that takes the lock by an attempt of its own. A queue
//! entry whose token is no longer in the set, or whose deadline passed (a
//! waiter that died), is skipped.
//! A waiter that dies while blocked (SIGKILL) may still be granted the lock
//! until its deadline: the lock then stays held until its TTL, as for a holder
//! that dies.
//!
//! # Safe to run twice
//! A command may be sent twice: the pool re-sends it when a pooled connection
//! broke, which may be after Redis ran it and before its reply arrived (and a
//! cluster client re-sends after a timeout or a redirection). Every
//! script therefore acts once per call. Acquire, refresh and the reads are so
//! by nature (seeing its own token, an acquire reports the lock it already
//! took). Release and force release are not: a repeat would find the lock
//! already given to the next waiter and report false, or (force release) give
//! it on to the waiter after. Each call draws an id, and its first run stores
//! its answer under `<lock>:call:<id>` (declared in KEYS) for as long as a
//! re-send can come; a repeat returns that answer and does nothing.

use once_cell::sync::Lazy;
use redis::{ConnectionLike, FromRedisValue, RedisResult, ToRedisArgs};

use crate::packed::Packed;

/// Appended to the holder's token by a waiter that registers (see "The
/// waiters mark"), followed by when the hold ends (see "A holder that
/// dies"); the scripts spell it `'\0w'`. It starts with a NUL byte, which
/// owner tokens (UUID text, an application's owner strings) never contain:
/// the PHP layer refuses them.
pub const WAITERS_MARK: &[u8] = b"\0w";

/// Whether a stored lock value is `token`'s with the waiters mark (and the
/// end of its hold after it: see `scripts`).
pub(crate) fn is_marked_own(value: &[u8], token: &str) -> bool {
    value
        .strip_prefix(token.as_bytes())
        .and_then(|rest| rest.strip_prefix(WAITERS_MARK))
        .is_some_and(|ends| ends.iter().all(u8::is_ascii_digit))
}

/// A Lua script, sent by EVALSHA.
///
/// A server that does not have it (a restart, `SCRIPT FLUSH`, a replica just
/// promoted: scripts are not replicated) answers NOSCRIPT, and the call is
/// sent again once as EVAL with the source, which runs it and leaves it
/// cached on that node. redis-rs's own fallback loads it with a keyless
/// `SCRIPT LOAD`, which a cluster client routes by its slot map of the
/// moment: after a failover that can be other nodes than the one serving
/// the lock (seen on a Valkey cluster). EVAL carries the keys, so it is
/// routed like the EVALSHA.
pub struct LockScript {
    source: String,
    hash: String,
}

impl LockScript {
    pub(crate) fn new(source: &str) -> Self {
        LockScript {
            hash: redis::Script::new(source).get_hash().to_owned(),
            source: source.to_owned(),
        }
    }

    /// A call of the script, with its first key.
    pub fn key<T: ToRedisArgs>(&self, key: T) -> Invocation<'_> {
        Invocation {
            script: self,
            // Room for the keys and arguments of a lock call: one allocation.
            packed: Packed::with_capacity(256),
            keys: 0,
        }
        .key(key)
    }
}

/// One call of a [`LockScript`]: its keys and arguments, written as the
/// tail of the command (see `packed`); `EVALSHA <sha> <number of keys>` (or
/// `EVAL <source> …`) goes ahead of them when it is sent.
pub struct Invocation<'a> {
    script: &'a LockScript,
    packed: Packed,
    keys: usize,
}

impl Invocation<'_> {
    /// Adds a key (KEYS); all keys come before the first argument.
    pub fn key<T: ToRedisArgs>(mut self, key: T) -> Self {
        self.packed = self.packed.arg(key);
        self.keys = self.packed.len();
        self
    }

    /// Adds an argument (ARGV).
    pub fn arg<T: ToRedisArgs>(mut self, arg: T) -> Self {
        self.packed = self.packed.arg(arg);
        self
    }

    /// Runs it: EVALSHA, and on NOSCRIPT once more as EVAL.
    pub fn invoke<T: FromRedisValue>(&mut self, con: &mut dyn ConnectionLike) -> RedisResult<T> {
        let mut keys = itoa::Buffer::new();
        let keys = keys.format(self.keys).as_bytes();
        let script = self.script;
        match self
            .packed
            .query_with(&[b"EVALSHA", script.hash.as_bytes(), keys], con)
        {
            Err(e) if e.code() == Some("NOSCRIPT") => self
                .packed
                .query_with(&[b"EVAL", script.source.as_bytes(), keys], con),
            other => other,
        }
    }

    /// The EVALSHA command's bytes, and those of the EVAL with the source to
    /// send instead when a server answers NOSCRIPT, for callers that drive a
    /// connection themselves (Redlock's fan-out).
    pub(crate) fn commands(mut self) -> (Vec<u8>, Vec<u8>) {
        let mut keys = itoa::Buffer::new();
        let keys = keys.format(self.keys).as_bytes();
        let script = self.script;
        (
            self.packed
                .bytes(&[b"EVALSHA", script.hash.as_bytes(), keys])
                .into_owned(),
            self.packed
                .bytes(&[b"EVAL", script.source.as_bytes(), keys])
                .into_owned(),
        )
    }
}

/// How long (ms) a lock key outlives its holder's hold once waiters have
/// marked it (see "A holder that dies"). It covers the queued waiter's
/// wake-up at the hold's end (its BLPOP times out then) and its next attempt.
pub const GRACE_MS: u64 = 1000;

/// Lua shared by every script that reads a holder's lock value (see "The
/// waiters mark" and "A holder that dies").
///
/// `holder(value)`: the holder's token (`\0r` for readers), whether waiters
/// marked the value, and when the holder's hold ends (ms, server time) when
/// the mark carries it. `hold(lock, token, marked, ttl, now)`: sets a
/// writer's hold. `mark(lock, value, pttl, now)`: marks a held value for
/// the waiters. `hold_ends(lock, value, ends)`: when the hold of a marked
/// value ends (readers: the longest reader's end).
const HOLDER: &str = r"
local GRACE = 1000
local function clock()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local function holder(value)
  if not value then
    return nil, false, nil
  end
  local ends = string.match(value, '%d*$')
  local head = string.sub(value, 1, #value - #ends)
  if string.sub(head, -2) ~= '\0w' then
    return value, false, nil
  end
  return string.sub(head, 1, -3), true, tonumber(ends)
end
local function hold(lock, token, marked, ttl, now)
  if marked then
    redis.call('SET', lock, token .. '\0w' .. string.format('%d', now + ttl), 'PX', ttl + GRACE)
  else
    redis.call('SET', lock, token, 'PX', ttl)
  end
end
local function mark(lock, value, pttl, now)
  local _, marked = holder(value)
  if marked then
    return
  end
  if pttl <= 0 then
    redis.call('SET', lock, value .. '\0w', 'KEEPTTL')
  elseif string.sub(value, 1, 2) == '\0r' then
    redis.call('SET', lock, value .. '\0w', 'PX', pttl + GRACE)
  else
    redis.call('SET', lock, value .. '\0w' .. string.format('%d', now + pttl), 'PX', pttl + GRACE)
  end
end
local function hold_ends(lock, value, ends)
  if string.sub(value, 1, 2) == '\0r' then
    local top = redis.call('ZRANGE', lock .. ':readers', -1, -1, 'WITHSCORES')
    return tonumber(top[2] or '0')
  end
  return ends
end
";

/// Lua shared by the releasing scripts.
///
/// `reachable(key)`: whether this node may touch `key`, a key that the
/// script derives from KEYS[1] rather than declares (the wake list of the
/// waiter it picks, which the caller cannot know). It always may, except
/// while the lock's cluster slot is being migrated and `key` is not here:
/// Redis then refuses the access with an error in the middle of the script,
/// after its earlier writes. So the wake list is probed before anything is
/// written, and the script answers TRYAGAIN (the client waits and sends it
/// again) having changed nothing. Keys the caller can name are declared in
/// KEYS instead, so that the cluster routes the call before it runs.
///
/// `current_hold`: the lock as an acquire finds it (`ok, value, holder,
/// marked, ends, now, handed`); a hold that ended while the key lived on for
/// the queue (see "A holder that dies") is handed over first (`handed`), and
/// `ok` is false (nothing changed) when that cannot reach a waiter. `now`
/// is read from the server only when needed (a marked value).
///
/// `promote`: when the one live reader left waits for the write lock (it
/// asked for it while others read), grants it that lock, ahead of the
/// queue: the waiters queued behind it wait on its read lock anyway. True if
/// it did; nil (nothing changed) when its wake list cannot be reached.
///
/// `hand_over`: grants the lock to the first live waiter in the queue, or
/// frees it when there is none; with `demoting` (the demoting writer's read
/// TTL, ms), lets in only the readers at the head of the queue beside the
/// writer turned reader, the lock now read; false (and nothing changed) when the
/// waiter's wake list cannot be reached. Only waiters that died leave stale
/// entries behind; skipping them is bounded per release so that one release
/// never runs long, and later releases skip the rest (or they expire with
/// the queue). The entries are read first and removed only once the outcome
/// is known.
const HAND_OVER: &str = r"
local READING = '\0r'
local function reachable(key)
  local probe = redis.pcall('EXISTS', key)
  return type(probe) ~= 'table' or not probe.err
end
local function busy()
  return redis.error_reply('TRYAGAIN the lock slot is being migrated, try again')
end
local function hand_over(lock, fence, waiters, queue, demoting)
  local entries = redis.call('LRANGE', queue, 0, 63)
  local now_ms
  local used = 0
  local stale = {}
  local grants = {}
  for i, entry in ipairs(entries) do
    local ttl, kind, token = string.match(entry, '^(%d+) ([01r]) (.+)$')
    local deadline = token and redis.call('ZSCORE', waiters, token)
    local live = false
    if deadline then
      if not now_ms then
        local now = redis.call('TIME')
        now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
      end
      live = tonumber(deadline) - now_ms > 0
    end
    if live then
      local grant = {ttl = ttl, kind = kind, token = token, left = tonumber(deadline) - now_ms}
      if kind == 'r' then
        grants[#grants + 1] = grant
      elseif #grants == 0 and not demoting then
        grants[1] = grant
        used = i
        break
      else
        break -- a writer after the readers at the head: the next grant is its
      end
    elseif deadline then
      stale[#stale + 1] = token
    end
    used = i
  end
  for _, grant in ipairs(grants) do
    if not reachable(lock .. ':wake:' .. grant.token) then
      return false
    end
  end
  if used > 0 then
    redis.call('LTRIM', queue, used, -1)
  end
  for _, token in ipairs(stale) do
    redis.call('ZREM', waiters, token)
  end
  local readers = lock .. ':readers'
  -- Others still queued: the new hold is marked for them (a waiter that
  -- registers later would mark it too, but the holder may die before).
  local queued = redis.call('LLEN', queue) > 0
  if #grants == 0 and not demoting then
    -- Every registered waiter has an entry; the stale ones just skipped were
    -- the last, so whatever the set still holds is stale too. (Not checked on
    -- an empty queue: that is every uncontended release.)
    if used > 0 and used == #entries and #entries < 64 then
      redis.call('DEL', waiters)
    end
    redis.call('DEL', lock, readers)
    return true
  end
  local longest = demoting or 0
  for _, grant in ipairs(grants) do
    redis.call('ZREM', waiters, grant.token)
    local granted = -1
    if grant.kind == 'r' then
      redis.call('ZADD', readers, now_ms + grant.ttl, grant.token)
      longest = math.max(longest, tonumber(grant.ttl))
    else
      redis.call('DEL', readers)
      hold(lock, grant.token, queued, tonumber(grant.ttl), now_ms)
      if grant.kind == '1' then
        granted = redis.call('INCR', fence)
      end
    end
    local wake = lock .. ':wake:' .. grant.token
    redis.call('RPUSH', wake, granted)
    redis.call('PEXPIRE', wake, grant.left + 1000)
  end
  if longest > 0 then
    -- Held by readers: the lock key says so (a writer's SET NX misses) and
    -- lives as long as the longest of them. (A hand-over runs only once the
    -- lock is free of earlier holders.)
    if queued then
      redis.call('SET', lock, READING .. '\0w', 'PX', longest + GRACE)
    else
      redis.call('SET', lock, READING, 'PX', longest)
    end
  end
  return true, grants
end
local function promote(lock, fence, waiters, queue, readers, now)
  local left = redis.call('ZRANGEBYSCORE', readers, now + 1, '+inf')
  if #left ~= 1 then
    return false
  end
  local token = left[1]
  local deadline = redis.call('ZSCORE', waiters, token)
  if not deadline or tonumber(deadline) <= now then
    return false
  end
  for _, entry in ipairs(redis.call('LRANGE', queue, 0, -1)) do
    local ttl, kind, waiting = string.match(entry, '^(%d+) ([01r]) (.+)$')
    if waiting == token and kind ~= 'r' then
      local wake = lock .. ':wake:' .. token
      if not reachable(wake) then
        return nil
      end
      redis.call('LREM', queue, 1, entry)
      redis.call('ZREM', waiters, token)
      redis.call('DEL', readers)
      hold(lock, token, redis.call('LLEN', queue) > 0, tonumber(ttl), now)
      local granted = -1
      if kind == '1' then
        granted = redis.call('INCR', fence)
      end
      redis.call('RPUSH', wake, granted)
      redis.call('PEXPIRE', wake, tonumber(deadline) - now + 1000)
      return true
    end
  end
  return false
end
local function current_hold(lock, fence, waiters, queue, now)
  local current = redis.call('GET', lock)
  local holding, marked, ends = holder(current)
  local handed = false
  if marked then
    now = now or clock()
    ends = hold_ends(lock, current, ends)
    if ends and ends <= now then
      if not hand_over(lock, fence, waiters, queue) then
        return false
      end
      handed = true
      current = redis.call('GET', lock)
      holding, marked, ends = holder(current)
      if marked then
        ends = hold_ends(lock, current, ends)
      end
    end
  end
  return true, current, holding, marked, ends, now, handed
end
";

/// Acquire: one round trip whatever the outcome.
///
/// KEYS: lock, fence, waiters, queue, the caller's wake list. ARGV: token,
/// ttl ms, fencing ("1"/"0"), wait ms left ("0" when the caller will not wait
/// any more), registered ("1" when an earlier attempt of this acquire
/// registered the caller as a waiter).
///
/// Returns `{1, fence}` when the caller holds the lock (fence -1 without
/// fencing) or `{0, pttl}` when someone else does. A caller that will wait
/// registers in the same script, so a release that happens between this
/// reply and its BLPOP still grants it the lock: no lost wake-up. A caller
/// that will not wait any more leaves the waiters here, atomically with
/// seeing the lock held, so no grant can arrive after it gave up.
///
/// Seeing its own token (plain or marked) means the lock was granted to the
/// caller while it was not blocked, or is the retry of an acquire whose
/// reply was lost: it is reported as acquired (TTL renewed, fencing token
/// the current one, the mark kept).
///
/// A caller that holds a read lock is promoted to the write lock (a new
/// fencing token drawn) when it is the only live reader; else it is held
/// like any other, and a waiting one is promoted by the other readers' last
/// release (`promote`). A hold that ended while the key lived on for the
/// queue is handed over first (see "A holder that dies").
pub static ACQUIRE: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}{HAND_OVER}
local token, ttl, wait_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local entry = ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. token
local function leave()
  if redis.call('ZREM', KEYS[3], token) == 1 then
    redis.call('LREM', KEYS[4], 1, entry)
  end
end
local ok, current, holding, marked, ends, now, handed =
  current_hold(KEYS[1], KEYS[2], KEYS[3], KEYS[4], nil)
if not ok then
  return busy()
end
if handed and current and holding == token then
  -- Granted to the caller by that hand-over.
  local granted = redis.call('LPOP', KEYS[5])
  redis.call('DEL', KEYS[5])
  return {{1, tonumber(granted or '-1')}}
end
local promoting = false
if holding == '\0r' then
  -- A reader asking for the write lock: promoted when it is the only live
  -- reader, atomically, so no one gets in between; else it waits (its
  -- registration tells the other readers' last release to promote it).
  now = now or clock()
  local readers = KEYS[1] .. ':readers'
  local score = redis.call('ZSCORE', readers, token)
  if score and tonumber(score) > now then
    redis.call('ZREMRANGEBYSCORE', readers, '-inf', now)
    promoting = redis.call('ZCARD', readers) == 1
    if promoting then
      redis.call('DEL', readers)
      current = false
      ends = nil
    end
  end
end
if current == false or holding == token then
  if marked then
    now = now or clock()
    hold(KEYS[1], token, true, ttl, now)
  else
    redis.call('SET', KEYS[1], token, 'PX', ttl)
  end
  if ARGV[5] == '1' then
    leave()
    redis.call('DEL', KEYS[5])
  end
  local fence = -1
  if ARGV[3] == '1' then
    if current == false then
      fence = redis.call('INCR', KEYS[2])
    else
      fence = tonumber(redis.call('GET', KEYS[2]) or '-1')
    end
  end
  return {{1, fence}}
end
local pttl
if ends then
  pttl = ends - now
else
  pttl = redis.call('PTTL', KEYS[1])
end
if wait_ms > 0 then
  now = now or clock()
  if redis.call('ZADD', KEYS[3], now + wait_ms, token) == 1 then
    redis.call('RPUSH', KEYS[4], entry)
  end
  for i = 3, 4 do
    if redis.call('PTTL', KEYS[i]) < wait_ms + 1000 then
      redis.call('PEXPIRE', KEYS[i], wait_ms + 1000)
    end
  end
  -- The waiters mark: the holder's plain delete must miss from now on, and
  -- the key outlives the holder's hold.
  mark(KEYS[1], current, pttl, now)
elseif ARGV[5] == '1' then
  leave()
end
return {{0, pttl}}
"
    ))
});

/// The release of a lock the caller took by a plain `SET NX` (see "The
/// waiters mark"), on a server without a native compare-and-delete: the
/// classic compare-and-delete, one key and one argument, so that it costs
/// Redis what the classic script costs. Stores no answer for a re-send (see
/// `release`, "Re-sends").
///
/// KEYS: lock. ARGV: token. Returns 1 if it deleted the lock, -1 if the lock
/// is the caller's with the waiters mark (left alone: [`RELEASE`] grants
/// it), 0 if it is not the caller's.
pub static PLAIN_RELEASE: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(
        r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
if current and string.sub(current, 1, #ARGV[1] + 2) == ARGV[1] .. '\0w' then
  return -1
end
return 0
",
    )
});

/// Release: only while the token is the caller's (plain or marked); then
/// grant the lock to the next live waiter or free it.
///
/// KEYS: lock, fence, waiters, queue, the call's marker. ARGV: token, how
/// long a re-send of this call can come (ms). Returns 1 if released, 0 if
/// the lock had expired or belongs to someone else (left untouched); TRYAGAIN
/// while the slot migrates (nothing changed).
///
/// The lock still holding the caller's token means this is the first run (a
/// run that released it changed it); only otherwise is the call's marker
/// looked up. The granting functions are defined only once the lock is
/// known to be the caller's.
pub static RELEASE: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}
local current = redis.call('GET', KEYS[1])
local holding, marked, ends = holder(current)
if current == false or holding ~= ARGV[1] or (ends and ends <= clock()) then
  return tonumber(redis.call('GET', KEYS[5]) or '0')
end
{HAND_OVER}
if not hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4]) then
  return busy()
end
redis.call('SET', KEYS[5], '1', 'PX', ARGV[2])
return 1
"
    ))
});

/// Force release: whoever holds it; then grant it to the next live waiter.
///
/// KEYS: lock, fence, waiters, queue, the call's marker. ARGV: how long a
/// re-send of this call can come (ms). Returns 1 if a lock was held;
/// TRYAGAIN while the slot migrates (nothing changed).
pub static FORCE_RELEASE: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}{HAND_OVER}
local first = redis.call('GET', KEYS[5])
if first then
  return tonumber(first)
end
local held = redis.call('EXISTS', KEYS[1])
if held == 1 and not hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4]) then
  return busy()
end
redis.call('SET', KEYS[5], held, 'PX', ARGV[1])
return held
"
    ))
});

/// Lua shared by the read-lock scripts: the time, the readers' set, and
/// the lock key's lifetime kept at the longest reader's.
/// Needs [`HOLDER`] ahead of it.
const READERS: &str = r"
local function reading(current)
  return current and string.sub(current, 1, 2) == '\0r'
end
local function stretch(lock, readers, now, marked)
  local top = redis.call('ZRANGE', readers, -1, -1, 'WITHSCORES')
  if top[2] then
    local left = math.max(1, tonumber(top[2]) - now)
    if marked then
      left = left + GRACE
    end
    redis.call('PEXPIRE', lock, left)
  end
end
";

/// Read acquire: one round trip whatever the outcome. Many readers may hold
/// the lock at once; a writer (the plain acquire) excludes them all.
///
/// The lock key holds `\0r` while readers hold it (so a writer's `SET NX`
/// misses, and a writer that waits registers and marks it as for any
/// holder); the readers are the set `<lock>:readers`, scored by the time
/// (ms) each hold expires. The lock key lives as long as the longest reader,
/// so readers that died free it at their TTL.
///
/// A reader joins a free lock, or one that readers hold while no live
/// waiter is queued: a waiting writer goes before readers that come after
/// it. A reader that waits is queued (entry `"<ttl> r <token>"`) like a
/// writer; a release grants the lock to the readers at the head of the
/// queue together, up to the next writer (`hand_over`).
///
/// KEYS: lock, waiters, queue, the caller's wake list, readers, fence.
/// ARGV: token, ttl ms, wait ms left ("0": will not wait), registered
/// ("1"/"0").
/// Returns `{1, -1}` when the caller holds a read lock, `{0, pttl}` when it
/// must wait. Seeing itself among the readers (a grant while it was not
/// blocked, or a re-sent acquire) it reports the lock held, TTL renewed.
/// The writer that holds the lock is demoted to a reader, and the readers
/// queued at the head of the queue come in with it (`hand_over`).
pub static ACQUIRE_READ: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}{READERS}{HAND_OVER}
local token, ttl, wait_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local entry = ARGV[2] .. ' r ' .. token
local ok, current, _, marked, ends, now, handed =
  current_hold(KEYS[1], KEYS[6], KEYS[2], KEYS[3], clock())
if not ok then
  return busy()
end
local function leave()
  if redis.call('ZREM', KEYS[2], token) == 1 then
    redis.call('LREM', KEYS[3], 1, entry)
  end
end
local function joined()
  redis.call('ZADD', KEYS[5], now + ttl, token)
  stretch(KEYS[1], KEYS[5], now, marked)
  if ARGV[4] == '1' then
    leave()
    redis.call('DEL', KEYS[4])
  end
  return {{1, -1}}
end
if handed then
  -- Granted to the caller (among the readers at the head) by that hand-over?
  local score = reading(current) and redis.call('ZSCORE', KEYS[5], token)
  if score and tonumber(score) > now then
    redis.call('DEL', KEYS[4])
    return joined()
  end
end
if current and not reading(current) and holder(current) == token then
  -- The writer asking for a read lock: demoted, and the readers queued at
  -- the head of the queue come in with it.
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  if not hand_over(KEYS[1], KEYS[6], KEYS[2], KEYS[3], ttl) then
    return busy()
  end
  current = redis.call('GET', KEYS[1])
  _, marked = holder(current)
  return joined()
end
if reading(current) then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  if redis.call('ZSCORE', KEYS[5], token) then
    return joined()
  end
  local ahead = redis.call('ZCOUNT', KEYS[2], now + 1, '+inf')
  if ARGV[4] == '1' and redis.call('ZSCORE', KEYS[2], token) then
    ahead = ahead - 1
  end
  if ahead <= 0 then
    return joined()
  end
elseif current == false then
  redis.call('SET', KEYS[1], '\0r', 'PX', ttl)
  redis.call('DEL', KEYS[5])
  return joined()
end
local pttl
if ends then
  pttl = ends - now
else
  pttl = redis.call('PTTL', KEYS[1])
end
if wait_ms > 0 then
  if redis.call('ZADD', KEYS[2], now + wait_ms, token) == 1 then
    redis.call('RPUSH', KEYS[3], entry)
  end
  for i = 2, 3 do
    if redis.call('PTTL', KEYS[i]) < wait_ms + 1000 then
      redis.call('PEXPIRE', KEYS[i], wait_ms + 1000)
    end
  end
  -- The waiters mark, as in ACQUIRE.
  mark(KEYS[1], current, pttl, now)
elseif ARGV[4] == '1' then
  leave()
end
return {{0, pttl}}
"
    ))
});

/// Read release: the caller leaves the readers; the last one to leave
/// hands the lock over (to the next writer, or the readers at the head of
/// the queue) or frees it.
///
/// KEYS: lock, fence, waiters, queue, the call's marker, readers. ARGV:
/// token, how long a re-send of this call can come (ms). Returns 1 if the
/// caller was a reader, else 0 (or the first run's answer for a re-send);
/// TRYAGAIN while the slot migrates (nothing changed).
pub static RELEASE_READ: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}{READERS}{HAND_OVER}
local now = clock()
local current = redis.call('GET', KEYS[1])
local score = redis.call('ZSCORE', KEYS[6], ARGV[1])
if not (current and string.sub(current, 1, 2) == READING) or not score or tonumber(score) <= now then
  return tonumber(redis.call('GET', KEYS[5]) or '0')
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
if redis.call('ZCARD', KEYS[6]) <= 1 then
  if not hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4]) then
    return busy()
  end
  redis.call('ZREM', KEYS[6], ARGV[1])
else
  redis.call('ZREM', KEYS[6], ARGV[1])
  local promoted = promote(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], now)
  if promoted == nil then
    return busy()
  elseif not promoted then
    local _, marked = holder(current)
    stretch(KEYS[1], KEYS[6], now, marked)
  end
end
redis.call('SET', KEYS[5], '1', 'PX', ARGV[2])
return 1
"
    ))
});

/// Read refresh: a new TTL for the caller's read hold, while it has one.
///
/// KEYS: lock, readers. ARGV: token, ttl ms. Returns 1 if refreshed, else 0.
pub static REFRESH_READ: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}{READERS}
local now = clock()
local current = redis.call('GET', KEYS[1])
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not reading(current) or not score or tonumber(score) <= now then
  return 0
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
local _, marked = holder(current)
stretch(KEYS[1], KEYS[2], now, marked)
return 1
"
    ))
});

/// Remaining lifetime of the caller's read hold.
///
/// KEYS: lock, readers. ARGV: token. Returns ms left, or -3 if the caller
/// holds no read lock.
pub static OWNED_READ_TTL: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}{READERS}
local now = clock()
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not reading(redis.call('GET', KEYS[1])) or not score or tonumber(score) <= now then
  return -3
end
return tonumber(score) - now
"
    ))
});

/// Multi-lock acquire on one node: all the locks or none, in one step.
///
/// KEYS: the lock keys. ARGV: token, ttl ms. Returns 0 when the caller now
/// holds every one (those it held already, plain or marked, keep their
/// value and get the new TTL), else the 1-based index of the first held by
/// someone else, having changed nothing. A re-send finds them its own and
/// answers 0 again.
pub static ACQUIRE_ALL: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}
local mine, ttl = ARGV[1], tonumber(ARGV[2])
local now = clock()
local marks = {{}}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  local holding, marked, ends = holder(v)
  if v and (holding ~= mine or (ends and ends <= now)) then
    return i
  end
  marks[i] = marked
end
for i, key in ipairs(KEYS) do
  hold(key, mine, marks[i], ttl, now)
end
return 0
"
    ))
});

/// Refresh: set a new TTL only while the token is the caller's (plain or
/// marked).
///
/// KEYS: lock. ARGV: token, ttl ms. Returns 1 if refreshed, else 0.
pub static REFRESH: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}
local current = redis.call('GET', KEYS[1])
local holding, marked, ends = holder(current)
if current == false or holding ~= ARGV[1] then
  return 0
end
if not marked then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
local now = clock()
if ends and ends <= now then
  return 0
end
hold(KEYS[1], ARGV[1], true, tonumber(ARGV[2]), now)
return 1
"
    ))
});

/// Remaining lifetime of the caller's hold.
///
/// KEYS: lock. ARGV: token. Returns the ms left of the caller's hold, plain
/// or marked (-1: no expiry), or -3 if it is not held by the caller.
pub static OWNED_TTL: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}
local current = redis.call('GET', KEYS[1])
local holding, marked, ends = holder(current)
if current == false or holding ~= ARGV[1] then
  return -3
end
if not ends then
  return redis.call('PTTL', KEYS[1])
end
local left = ends - clock()
if left <= 0 then
  return -3
end
return left
"
    ))
});

/// What a lock is now, for an operator (`inspect`); reads only.
///
/// KEYS: lock, fence, waiters. Returns `{kind, owner, ms left, waiters,
/// readers, fence}`: kind `exclusive`, `read` or empty (free, or a hold
/// that ended while the key lives on for the queue); the owner token of an
/// exclusive hold, else empty; ms left -1 when free or without expiry (a
/// read lock's: its last reader's); the live waiters and readers; the last
/// fencing token issued, empty if none.
pub static INSPECT: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}
local current = redis.call('GET', KEYS[1])
local holding, marked, ends = holder(current)
local now = clock()
local kind, owner, left, readers = '', '', -1, 0
if holding == '\0r' then
  local set = KEYS[1] .. ':readers'
  readers = redis.call('ZCOUNT', set, '(' .. now, '+inf')
  if readers > 0 then
    kind = 'read'
    local last = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
    left = tonumber(last[2]) - now
  end
elseif current and not (ends and ends <= now) then
  kind, owner = 'exclusive', holding
  if ends then
    left = ends - now
  else
    left = redis.call('PTTL', KEYS[1])
  end
end
local waiters = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
return {{kind, owner, left, waiters, readers, redis.call('GET', KEYS[2]) or ''}}
"
    ))
});

/// Redlock's release on one master (see `redlock`, "Waiting"): as
/// [`RELEASE`], and it says whom its hand-over granted the lock to, so that
/// the releaser can set it for that waiter on the other masters too.
///
/// KEYS as [`RELEASE`], then `<lock>:freed`, which keeps the call's
/// marker name for [`REDLOCK_PASS`], then `<lock>:gone:<token>` (see
/// [`crate::keys::LockKeys::gone`]), set for the window when the lock was
/// not the caller's here; ARGV as [`RELEASE`]. Returns `{1}` if released,
/// `{1, token, ttl ms}` if released and granted to the waiter `token` (a
/// writer), `{0}` if the lock was not the caller's; a re-send returns the
/// first run's `{1}` or `{0}`.
pub static REDLOCK_RELEASE: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}
local current = redis.call('GET', KEYS[1])
local holding, marked, ends = holder(current)
if current == false or holding ~= ARGV[1] or (ends and ends <= clock()) then
  redis.call('SET', KEYS[7], '1', 'PX', ARGV[2])
  return {{tonumber(redis.call('GET', KEYS[5]) or '0')}}
end
{HAND_OVER}
local ok, grants = hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if not ok then
  return busy()
end
redis.call('SET', KEYS[5], '1', 'PX', ARGV[2])
redis.call('SET', KEYS[6], KEYS[5], 'PX', ARGV[2])
if grants and grants[1] and grants[1].kind ~= 'r' then
  return {{1, grants[1].token, tonumber(grants[1].ttl)}}
end
return {{1}}
"
    ))
});

/// The second step of a Redlock release that granted the lock on the home
/// master: sets it for that waiter on another master, only if that master's
/// lock is still as this release left it (free, and no release since) and
/// the waiter has not released it here already. A waiter quick enough to
/// take the lock, use it and release it before this comes must not find it
/// set again: its release came after this one (`freed` changed), or before
/// it, while the releaser's release had not reached this master yet (its
/// `gone` marker is set).
///
/// KEYS: lock, `<lock>:freed`, the waiter's `<lock>:gone:<token>`. ARGV:
/// the release's call marker name, the waiter's token, its ttl ms. Returns
/// 1 if set, else 0.
pub static REDLOCK_PASS: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('GET', KEYS[2]) == ARGV[1]
    and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
",
    )
});

/// A Redlock waiter's registration on its home master (see `redlock`,
/// "Waiting"), or its leaving (`wait ms` 0).
///
/// KEYS: lock, waiters, queue. ARGV: token, ttl ms, wait ms, front ("1": a
/// waiter that was woken and lost the race goes back to the head of the
/// queue). Returns the holder's time left (ms; -1 no expiry), or -2 when
/// the lock is free here (no registration: try again at once).
pub static REDLOCK_WAIT: Lazy<LockScript> = Lazy::new(|| {
    LockScript::new(&format!(
        r"{HOLDER}
local token, wait_ms = ARGV[1], tonumber(ARGV[3])
local entry = ARGV[2] .. ' 0 ' .. token
if wait_ms == 0 then
  if redis.call('ZREM', KEYS[2], token) == 1 then
    redis.call('LREM', KEYS[3], 1, entry)
  end
  return -2
end
local current = redis.call('GET', KEYS[1])
if not current then
  return -2
end
local now = clock()
if redis.call('ZADD', KEYS[2], now + wait_ms, token) == 1 then
  if ARGV[4] == '1' then
    redis.call('LPUSH', KEYS[3], entry)
  else
    redis.call('RPUSH', KEYS[3], entry)
  end
end
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < wait_ms + 1000 then
    redis.call('PEXPIRE', KEYS[i], wait_ms + 1000)
  end
end
local _, marked, ends = holder(current)
if ends then
  -- A hold that ended, its key kept for the queue: free for Redlock's
  -- purposes (its attempts are plain SET NX on every master).
  if ends <= now then
    return -2
  end
  return ends - now
end
return redis.call('PTTL', KEYS[1])
"
    ))
});

/// Builds every lock script now (see `fork::before_threads`).
pub(crate) fn build_all() {
    for script in [
        &ACQUIRE,
        &PLAIN_RELEASE,
        &RELEASE,
        &FORCE_RELEASE,
        &ACQUIRE_READ,
        &RELEASE_READ,
        &REFRESH_READ,
        &OWNED_READ_TTL,
        &ACQUIRE_ALL,
        &REFRESH,
        &OWNED_TTL,
        &REDLOCK_RELEASE,
        &REDLOCK_PASS,
        &REDLOCK_WAIT,
    ] {
        Lazy::force(script);
    }
}
