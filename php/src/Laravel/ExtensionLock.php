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
     * The owner holding the lock, as far as this lock can tell: its own owner
     * while it holds it, else null (the extension does not hand out other
     * owners' tokens). Laravel uses it only to ask "is it mine?".
     */
    protected function getCurrentOwner()
    {
        return $this->lock->isAcquired() ? $this->owner : null;
    }
}
