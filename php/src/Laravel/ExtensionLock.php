<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

use Illuminate\Cache\Lock;
use Illuminate\Contracts\Cache\LockTimeoutException;
use RedisLock\LockManager;

/**
 * Laravel's cache lock (`Cache::lock()`), held by the redis_lock extension.
 *
 * The Laravel owner string is the owner token stored in Redis, so
 * `restoreLock($name, $owner)` in another process acts on the same lock.
 * `block()` waits natively, woken when the holder releases; the
 * `betweenBlockedAttemptsSleepFor()` interval is accepted and not needed.
 * Like Laravel's own locks it is not released when the object goes away.
 *
 * With the store's `watchdog` option, a lock without seconds (`lock($name)`,
 * `lock($name, 0)`) is *watched*: taken with the store's short
 * `watchdog_ttl` and renewed in the background while this process lives, so
 * a crashed worker's lock is freed within that TTL instead of staying for
 * 30 days; held when the process ends in order, it is handed over with
 * Laravel's "until released" TTL (see WatchedLocks).
 *
 * One class for Laravel 8 to 13: the methods newer versions add to
 * Illuminate\Cache\Lock (isOwnedBy() 11+, refresh() 12.63+/13.16+,
 * isLocked() 13.7+) are implemented here on every version, with the
 * signatures of the newest (untyped where older versions are untyped).
 */
class ExtensionLock extends Lock
{
    private \RedisLock\Lock $lock;

    /**
     * @param bool $watched taken through a LockManager with the watchdog on,
     *                      for a lock without seconds (see the class comment)
     */
    public function __construct(private LockManager $locks, $name, $seconds, $owner = null, private bool $watched = false)
    {
        // Without an owner of the caller's, the extension's own token, which
        // names this process and host for inspect() (Laravel's would be a
        // random string).
        $owner ??= $locks->createLock((string) $name, null, false)->owner();
        parent::__construct($name, $seconds, $owner);
        $this->lock = $locks->restoreLock($name, $this->owner);
    }

    public function acquire()
    {
        return $this->held($this->lock->acquire());
    }

    public function release()
    {
        if ($this->watched) {
            WatchedLocks::forget($this->name, $this->owner);
        }
        return $this->lock->release();
    }

    public function forceRelease()
    {
        if ($this->watched) {
            WatchedLocks::forgetName($this->name);
        }
        $this->locks->forceRelease($this->name);
    }

    /** A watched lock just taken is kept renewed past this object (see WatchedLocks). */
    private function held(bool $acquired): bool
    {
        if ($acquired && $this->watched) {
            WatchedLocks::keep($this->lock);
        }
        return $acquired;
    }

    /**
     * With a callback, the extension runs it under the lock and releases
     * it: a release that fails after the callback returned (Redis went
     * away) gives back the callback's value and is told to the app's log,
     * where Laravel's `get()` would throw and lose the value.
     */
    public function get($callback = null)
    {
        if (!is_callable($callback)) {
            return $this->acquire();
        }
        $ran = false;
        try {
            return $this->lock->block(0, static function () use ($callback, &$ran) {
                $ran = true;
                return $callback();
            });
        } catch (\RedisLock\LockConflictedException $e) {
            if ($ran) {
                throw $e; // the callback's own
            }
            return false;
        }
    }

    public function block($seconds, $callback = null)
    {
        $ran = false;
        try {
            if (!is_callable($callback)) {
                return $this->held((bool) $this->lock->block($seconds));
            }
            // As get(): released by the extension, the value kept.
            return $this->lock->block($seconds, static function () use ($callback, &$ran) {
                $ran = true;
                return $callback();
            });
        } catch (\RedisLock\LockTimeoutException $e) {
            if ($ran) {
                throw $e;
            }
            throw new LockTimeoutException($e->getMessage(), 0, $e);
        }
    }

    /**
     * Sets a new TTL while this owner holds the lock: `$seconds`, else the
     * lock's own (a watched lock's: the store's `watchdog_ttl`); 0 is "never
     * expires" (30 days), as in `lock($name, 0)`.
     *
     * @param int|float|null $seconds
     * @return bool false when the lock is not (or no longer) this owner's
     */
    public function refresh($seconds = null)
    {
        if ($seconds === null && $this->watched) {
            return $this->lock->refresh();
        }
        $seconds ??= $this->seconds;
        return $this->lock->refresh($seconds > 0 ? $seconds : RedisLockStore::FOREVER);
    }

    /** Whether any owner holds the lock now. */
    public function isLocked(): bool
    {
        return $this->locks->isLocked($this->name);
    }

    /** Whether this lock's owner holds it now (public, as from Laravel 9; protected in 8). */
    public function isOwnedByCurrentProcess()
    {
        return $this->lock->isAcquired();
    }

    /**
     * Whether `$owner` holds the lock now; `null`: whether no one does.
     *
     * @param string|null $owner
     * @return bool
     */
    public function isOwnedBy($owner)
    {
        if ($owner === null) {
            return !$this->isLocked();
        }
        if ((string) $owner === $this->owner) {
            return $this->lock->isAcquired();
        }
        return $this->locks->restoreLock($this->name, (string) $owner)->isAcquired();
    }

    /**
     * The owner holding the lock, as far as this lock can tell: its own owner
     * while it holds it, else null (the extension does not hand out other
     * owners' tokens). isLocked() and isOwnedBy(), which Laravel builds on
     * this, are answered by the extension instead.
     */
    protected function getCurrentOwner()
    {
        return $this->lock->isAcquired() ? $this->owner : null;
    }
}
