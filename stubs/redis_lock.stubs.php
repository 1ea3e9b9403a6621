<?php

// Stubs for redis_lock

namespace RedisLock {
    /**
     * A named lock owned by one token (`owner()`).
     *
     * Made by `LockManager::createLock()` or `restoreLock()`. With `$autoRelease`
     * (the default of createLock) it is released when the object is destroyed
     * and at the end of the request; a restored lock never is.
     */
    class Lock {
        private function __construct() {}

        /**
         * Takes the lock. A Lock holding a read lock is promoted when it is the
         * only reader, with no one let in between (else false, or a wait with
         * `$blocking`: promoted once the other readers leave).
         *
         * @param bool $blocking false: try once; true: wait until acquired (woken on release)
         * @return bool whether this Lock now holds it
         */
        public function acquire(bool $blocking = false): bool {}

        /**
         * Takes a read lock: shared with other readers, never with a writer
         * (`acquire()`). A writer that waits is served before readers that come
         * after it; waits are woken, in order. A Lock holding the write lock is
         * demoted to a reader, and the readers queued at the head come in.
         *
         * @param bool $blocking false: try once; true: wait until acquired (woken on release)
         * @return bool whether this Lock now holds a read lock
         */
        public function acquireRead(bool $blocking = false): bool {}

        /**
         * Waits up to `$seconds` for the lock (woken on release).
         *
         * Without `$callback` returns true once held. With it, runs it under the
         * lock, releases, and returns what it returned. If the release then fails (Redis went
         * away), the value is still returned and the failure told to the
         * `logger` option (else `error_log()`), never as a PHP warning: the
         * lock expires by its TTL.
         *
         * @param int|float $seconds
         * @throws \RedisLock\LockTimeoutException if not acquired within $seconds
         *
         * @param callable|null $callback
         * @return mixed
         */
        public function block(mixed $seconds, ?callable $callback = null): mixed {}

        /**
         * The fencing token of the current hold: strictly increasing per name
         * across all workers.
         *
         * @return ?int null when not held or fencing is off
         */
        public function fencingToken(): ?int {}

        /**
         * Seconds left before the lock expires.
         *
         * @return ?float null when this owner does not hold it
         */
        public function getRemainingLifetime(): ?float {}

        /**
         * Whether this owner holds the lock now (asks Redis).
         *
         * @return bool
         */
        public function isAcquired(): bool {}

        /**
         * Whether this Lock acquired the lock and has since lost it to its TTL.
         *
         * @return bool
         */
        public function isExpired(): bool {}

        /**
         * The lock name.
         *
         * @return string
         */
        public function name(): string {}

        /**
         * The owner token (128 random bits as UUID text, then `:<pid>@<host>` of the process that made it); pass it to
         * `LockManager::restoreLock()` to act on this lock from another process.
         *
         * @return string
         */
        public function owner(): string {}

        /**
         * Sets a new TTL, only while this owner holds the lock. With the
         * `watchdog` option, the background renewal uses this TTL from now on.
         *
         * @param int|float|null $ttl seconds; null: the lock's TTL
         *
         * @return bool
         */
        public function refresh(mixed $ttl = null): bool {}

        /**
         * Releases the lock (write or read, whichever this owner holds) if this
         * owner still holds it.
         *
         * @return bool false if it had expired or is held by another owner (left alone)
         */
        public function release(): bool {}
    }

    /**
     * Named locks for applications, as Laravel's `Cache::lock()` and Symfony's
     * `LockFactory` offer them.
     */
    class LockManager {
        /**
         * @param string|array|null $dsn null: the redis_lock.dsn ini value; redis://,
         *                         rediss://, unix://, redis-sentinel://, redis-cluster://,
         *                         redlock://; or a list of single-server DSNs (Redlock)
         * @param array   $options overrides of the redis_lock.* ini entries (prefix, ttl,
         *                         connect_timeout, timeout, on_unavailable, fencing, replicas,
         *                         watchdog, watchdog_max), and logger: a PSR-3 logger told of
         *                         outcomes that are not exceptions (a fail-open grant, a failed
         *                         release after a callback), else error_log(). watchdog:
         *                         'auto' (default) renews, every third of their TTL, the locks
         *                         taken without a TTL of their own; true every lock; false none
         * @throws \ValueError on an invalid DSN or option; nothing is connected yet
         */
        public function __construct(mixed $dsn = null, ?array $options = null) {}

        /**
         * A new lock on `$name` with a fresh owner token; not yet acquired.
         *
         * @param string         $name        non-empty, at most 1024 bytes, binary-safe
         * @param int|float|null $ttl         seconds; null: the configured ttl
         * @param bool           $autoRelease release when the Lock is destroyed and at request end
         *
         * @return \RedisLock\Lock
         */
        public function createLock(mixed $name, mixed $ttl = null, bool $autoRelease = true): \RedisLock\Lock {}

        /**
         * A new multi-lock on all of `$names` with a fresh owner token; not yet
         * acquired. It holds all of them or none; a name held by a plain Lock
         * blocks it and the other way round; callers that name the same locks
         * in any order never deadlock.
         *
         * @param array          $names       lock names: non-empty, distinct strings of at most 1024 bytes
         * @param int|float|null $ttl         seconds each lock lives; null: the configured ttl
         * @param bool           $autoRelease release when the MultiLock is destroyed and at request end
         *
         * @return \RedisLock\MultiLock
         */
        public function createMultiLock(mixed $names, mixed $ttl = null, bool $autoRelease = true): \RedisLock\MultiLock {}

        /**
         * A new permit of the semaphore `$name` (at most `$limit` holders at
         * once) with a fresh owner token; not yet acquired.
         *
         * @param string         $name        non-empty, at most 1024 bytes, binary-safe
         * @param int            $limit       1 to 1000000; callers of one name should agree on it
         * @param int|float|null $ttl         seconds each permit lives; null: the configured ttl
         * @param bool           $autoRelease release when the Semaphore is destroyed and at request end
         * @throws \RedisLock\LockException with a redlock:// DSN or a list of DSNs: semaphores
         *         need one node's atomic scripts (one server, Sentinel or cluster)
         *
         * @return \RedisLock\Semaphore
         */
        public function createSemaphore(mixed $name, mixed $limit, mixed $ttl = null, bool $autoRelease = true): \RedisLock\Semaphore {}

        /**
         * Tries once to take `$name`, runs `$callback` under it, releases (also
         * when it throws) and returns its value. If the release then fails (Redis went
         * away), the value is still returned and the failure told to the
         * `logger` option (else `error_log()`), never as a PHP warning: the
         * lock expires by its TTL.
         *
         * @param int|float|null $ttl seconds; null: the configured ttl
         * @throws \RedisLock\LockConflictedException when the lock is held
         *
         * @param mixed $name
         * @param callable $callback
         * @return mixed
         */
        public function executeWithLock(mixed $name, callable $callback, mixed $ttl = null): mixed {}

        /**
         * Takes `$name` from whoever holds it (an operator's tool): it is
         * freed, or given to the next process waiting for it.
         *
         * @return bool whether there was a lock to take
         *
         * @param mixed $name
         */
        public function forceRelease(mixed $name): bool {}

        /**
         * What Redis says about lock `$name` now, for an operator: `locked`,
         * `kind` (`exclusive`, `read` or null), `owner` (an exclusive hold's
         * owner token), `holder` (`['host' => string, 'pid' => int]` when this
         * extension made that token, else null), `ttl` (seconds left, null
         * when free or without expiry), `waiters`, `readers`, `fencing` (the
         * last fencing token issued, or null). Read only; over Redlock, what a
         * majority of the masters agree on.
         *
         * @return array{locked: bool, kind: ?string, owner: ?string, holder: ?array{host: string, pid: int}, ttl: ?float, waiters: int, readers: int, fencing: ?int}
         *
         * @param mixed $name
         */
        public function inspect(mixed $name): array {}

        /**
         * Whether anyone holds `$name`.
         *
         * @param mixed $name
         * @return bool
         */
        public function isLocked(mixed $name): bool {}

        /**
         * The lock on `$name` as owned by `$owner` (a `Lock::owner()` from any
         * process), to release or refresh it. Never released automatically.
         *
         * @param mixed $name
         * @param mixed $owner
         * @return \RedisLock\Lock
         */
        public function restoreLock(mixed $name, mixed $owner): \RedisLock\Lock {}

        /**
         * The permit of semaphore `$name` owned by `$owner` (a
         * `Semaphore::owner()` from any process), to acquire, release or
         * refresh it under that token (as the Symfony semaphore store does with
         * the token it keeps in a Key). Never released automatically.
         *
         * @param string         $name  as createSemaphore
         * @param int            $limit as createSemaphore
         * @param string         $owner the permit's owner token
         * @param int|float|null $ttl   seconds, for acquire() and refresh(); null: the configured ttl
         * @throws \RedisLock\LockException with Redlock, as createSemaphore
         *
         * @return \RedisLock\Semaphore
         */
        public function restoreSemaphore(mixed $name, mixed $limit, mixed $owner, mixed $ttl = null): \RedisLock\Semaphore {}

        /**
         * This worker process's lock metrics since it started (or forked):
         * acquired (read_acquired: of them, read locks), conflicts, timeouts,
         * releases, releases_lost, watchdog_renewals, watchdog_lost (watched
         * locks found gone or not renewed within their TTL), open_grants (holds
         * granted without Redis under on_unavailable = open) and
         * unreleased_after_callback (releases that failed after a callback
         * returned; these two count every kind at the top level), and wait / hold
         * time summaries (count, mean, p50, p99, max, in seconds) of its locks;
         * under `semaphore`, the same figures for semaphore permits.
         *
         * @return array<string, int|array<string, int|float|array<string, int|float>>>
         */
        public function stats(): array {}

        /**
         * Waits up to `$maxWait` for `$name` (woken on release), runs `$callback`
         * under it, releases (also when it throws) and returns its value.
         * If the release then fails (Redis went
         * away), the value is still returned and the failure told to the
         * `logger` option (else `error_log()`), never as a PHP warning: the
         * lock expires by its TTL.
         *
         * @param int|float      $maxWait seconds
         * @param int|float|null $ttl     seconds; null: the configured ttl
         * @throws \RedisLock\LockTimeoutException when not acquired within $maxWait
         *
         * @param mixed $name
         * @param callable $callback
         * @return mixed
         */
        public function waitAndExecute(mixed $name, callable $callback, int|float $maxWait = 10, mixed $ttl = null): mixed {}
    }

    /**
     * The figures of every process on this host that loads the extension
     * (`redis_lock.metrics = host`), or of this process alone.
     */
    class Metrics {
        public function __construct() {}

        /**
         * The same figures as Prometheus text (exposition format 0.0.4), for a
         * `/metrics` endpoint: `redis_lock_acquires_total{kind,result}`, …
         *
         * @return string
         */
        public static function prometheus(): string {}

        /**
         * This host's lock metrics, all processes together (api.md "Observability"):
         * `mode` ('host', 'process' or 'off') and `shm` (the segment, in host mode);
         * `acquires` and `releases` by kind ('lock', 'read', 'multi', 'semaphore') and
         * result; `wait_seconds` and `hold_seconds` by kind (count, sum, p50, p95, p99,
         * max; the percentiles estimated from the histogram's buckets); `held` and
         * `waiting` by kind (now, live processes only); `watchdog_renewals`,
         * `watchdog_lost`, `unavailable`, `processes`; and `names`: the most
         * waited-for lock keys with their waits, most first.
         *
         * @return array<string, mixed>
         */
        public static function snapshot(): array {}
    }

    /**
     * The locks `names()`, held together under one owner token.
     *
     * Made by `LockManager::createMultiLock()`. With `$autoRelease` (the
     * default) it is released when the object is destroyed and at the end of
     * the request.
     */
    class MultiLock {
        private function __construct() {}

        /**
         * Takes all the locks, or none.
         *
         * @param bool $blocking false: try once; true: wait until all are held (woken by the
         *                       release of the name it waits for)
         * @return bool whether this MultiLock now holds all its locks
         */
        public function acquire(bool $blocking = false): bool {}

        /**
         * Waits up to `$seconds` for all the locks.
         *
         * Without `$callback` returns true once held. With it, runs it holding
         * them, releases, and returns what it returned.
         *
         * @param int|float $seconds
         * @throws \RedisLock\LockTimeoutException if not all were had within $seconds
         *
         * @param callable|null $callback
         * @return mixed
         */
        public function block(mixed $seconds, ?callable $callback = null): mixed {}

        /**
         * Seconds left before the first of the locks expires.
         *
         * @return ?float null when this owner does not hold them all
         */
        public function getRemainingLifetime(): ?float {}

        /**
         * Whether this owner holds every one of the locks now (asks Redis).
         *
         * @return bool
         */
        public function isAcquired(): bool {}

        /**
         * The lock names, sorted.
         *
         * @return list<string>
         */
        public function names(): array {}

        /**
         * The owner token (128 random bits as UUID text, then `:<pid>@<host>` of the process that made it).
         *
         * @return string
         */
        public function owner(): string {}

        /**
         * Sets a new TTL on every lock, while this owner holds them.
         *
         * @param int|float|null $ttl seconds; null: the multi-lock's TTL
         * @return bool true only if every lock was still held and is refreshed
         */
        public function refresh(mixed $ttl = null): bool {}

        /**
         * Releases all the locks this owner still holds.
         *
         * @return bool true only if it still held every one of them
         */
        public function release(): bool {}
    }

    /**
     * A per-key mutex: `acquire($key)` … `release($key)`, or `synchronized($key, $fn)`.
     *
     * Each acquire stores a fresh 128-bit owner token, so only this object can
     * release or extend what it acquired. Locks still held are released when
     * the object is destroyed and at the end of the request. Not reentrant:
     * acquiring a key this object already holds returns false.
     */
    class RedisMutex {
        /**
         * @param string|array|null $dsn null: the redis_lock.dsn ini value; redis://,
         *                         rediss://, unix://, redis-sentinel://, redis-cluster://,
         *                         redlock://; or a list of single-server DSNs (Redlock)
         * @param array   $options overrides of the redis_lock.* ini entries (prefix, ttl,
         *                         connect_timeout, timeout, on_unavailable, fencing, replicas,
         *                         watchdog, watchdog_max), and logger: a PSR-3 logger told of
         *                         outcomes that are not exceptions (a fail-open grant, a failed
         *                         release after a callback), else error_log(). watchdog:
         *                         'auto' (default) renews, every third of their TTL, the locks
         *                         taken without a TTL of their own; true every lock; false none
         * @throws \ValueError on an invalid DSN or option; nothing is connected yet
         */
        public function __construct(mixed $dsn = null, ?array $options = null) {}

        /**
         * Takes the lock on `$key`.
         *
         * @param string         $key  non-empty, at most 1024 bytes, binary-safe
         * @param int|float|null $ttl  seconds; null: the configured ttl
         * @param int|float      $wait seconds to wait, woken on release; 0 tries once
         * @return bool true if this object now holds the lock
         * @throws \RedisLock\ConnectionException when Redis is unreachable (on_unavailable=closed)
         */
        public function acquire(mixed $key, mixed $ttl = null, int|float $wait = 0): bool {}

        /**
         * Sets a new TTL on `$key`, only while this object still owns it. With
         * the `watchdog` option, the background renewal uses this TTL from now on.
         *
         * @param int|float|null $ttl seconds; null: the configured ttl
         *
         * @param mixed $key
         * @return bool
         */
        public function extend(mixed $key, mixed $ttl = null): bool {}

        /**
         * The fencing token of this object's current hold of `$key`.
         *
         * @return ?int null when not held by this object or fencing is off
         *
         * @param mixed $key
         */
        public function fencingToken(mixed $key): ?int {}

        /**
         * Whether anyone holds `$key`.
         *
         * @param mixed $key
         * @return bool
         */
        public function isLocked(mixed $key): bool {}

        /**
         * Releases the lock on `$key`.
         *
         * @return bool true only if this object still owned it (false if it had
         *              expired and been taken by someone else, whose lock is left alone)
         *
         * @param mixed $key
         */
        public function release(mixed $key): bool {}

        /**
         * Runs `$fn` while holding `$key` and releases it afterwards, also when
         * `$fn` throws (the exception then reaches the caller unchanged).
         * If the release then fails (Redis went
         * away), the value is still returned and the failure told to the
         * `logger` option (else `error_log()`), never as a PHP warning: the
         * lock expires by its TTL.
         *
         * @param int|float|null $ttl  seconds; null: the configured ttl
         * @param int|float      $wait seconds to wait, woken on release
         * @return mixed what `$fn` returns
         * @throws \RedisLock\LockConflictedException if held elsewhere and $wait is 0
         * @throws \RedisLock\LockTimeoutException if still held elsewhere after $wait
         *
         * @param mixed $key
         * @param callable $callback
         */
        public function synchronized(mixed $key, callable $callback, mixed $ttl = null, int|float $wait = 0): mixed {}
    }

    /**
     * A permit of the semaphore `name()`: at most `limit()` holders at once
     * across all workers, each permit with its own TTL.
     *
     * Made by `LockManager::createSemaphore()`. With `$autoRelease` (the
     * default) the permit is released when the object is destroyed and at the
     * end of the request.
     */
    class Semaphore {
        private function __construct() {}

        /**
         * Takes a permit.
         *
         * @param bool $blocking false: try once; true: wait until one is had (woken in arrival order)
         * @return bool whether this Semaphore now holds a permit
         */
        public function acquire(bool $blocking = false): bool {}

        /**
         * Waits up to `$seconds` for a permit (woken in arrival order).
         *
         * Without `$callback` returns true once held. With it, runs it holding
         * the permit, releases, and returns what it returned (if the release
         * then fails, the value is still returned and the failure told to the
         * `logger` option, else `error_log()`: the permit expires by its TTL).
         *
         * @param int|float $seconds
         * @throws \RedisLock\LockTimeoutException if no permit was had within $seconds
         *
         * @param callable|null $callback
         * @return mixed
         */
        public function block(mixed $seconds, ?callable $callback = null): mixed {}

        /**
         * Seconds left before the permit expires.
         *
         * @return ?float null when this Semaphore holds no permit
         */
        public function getRemainingLifetime(): ?float {}

        /**
         * Whether this Semaphore holds a permit now (asks Redis).
         *
         * @return bool
         */
        public function isAcquired(): bool {}

        /**
         * At most this many holders at once.
         *
         * @return int
         */
        public function limit(): int {}

        /**
         * The semaphore's name.
         *
         * @return string
         */
        public function name(): string {}

        /**
         * The owner token of this Semaphore's permit (128 random bits as UUID text, then `:<pid>@<host>` of the process that made it).
         *
         * @return string
         */
        public function owner(): string {}

        /**
         * Sets a new TTL on the permit, only while this Semaphore holds it.
         *
         * @param int|float|null $ttl seconds; null: the semaphore's TTL
         *
         * @return bool
         */
        public function refresh(mixed $ttl = null): bool {}

        /**
         * Gives the permit back (to the first waiter, if any).
         *
         * @return bool false if it had expired or was not held
         */
        public function release(): bool {}
    }

    class ConnectionException extends \RedisLock\LockException {}

    class LockConflictedException extends \RedisLock\LockException {}

    class LockException extends \RuntimeException {}

    class LockTimeoutException extends \RedisLock\LockConflictedException {}
}
