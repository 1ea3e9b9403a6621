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
 * One class for Laravel 8 to 13: the methods newer versions add to
 * Illuminate\Cache\Lock (isOwnedBy() 11+, refresh() 12.63+/13.16+,
 * isLocked() 13.7+) are implemented here on every version, with the
 * signatures of the newest (untyped where older versions are untyped).
 */
class ExtensionLock extends Lock
{
    private \RedisLock\Lock $lock;

    public function __construct(private LockManager $locks, $name, $seconds, $owner = null)
    {
        parent::__construct($name, $seconds, $owner);
        $this->lock = $locks->restoreLock($name, $this->owner);
    }

    public function acquire()
    {
        return $this->lock->acquire();
    }

    public function release()
    {
        return $this->lock->release();
    }

    public function forceRelease()
    {
        $this->locks->forceRelease($this->name);
    }

    public function block($seconds, $callback = null)
    {
        try {
            $this->lock->block($seconds);
        } catch (\RedisLock\LockTimeoutException $e) {
            throw new LockTimeoutException($e->getMessage(), 0, $e);
        }
        if (is_callable($callback)) {
            try {
                return $callback();
            } finally {
                $this->release();
            }
        }
        return true;
    }

    /**
     * Sets a new TTL while this owner holds the lock: `$seconds`, else the
     * lock's own; 0 is "never expires" (30 days), as in `lock($name, 0)`.
     *
     * @param int|float|null $seconds
     * @return bool false when the lock is not (or no longer) this owner's
     */
    public function refresh($seconds = null)
    {
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
