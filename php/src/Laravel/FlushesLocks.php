<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

/*
 * Laravel 13 has Illuminate\Contracts\Cache\CanFlushLocks (`Cache::flushLocks()`,
 * `php artisan cache:clear --locks`); Laravel 8 and 10 do not. One interface
 * for all of them: it is that contract where it exists, so RedisLockStore is
 * one class on every version.
 */
if (interface_exists(\Illuminate\Contracts\Cache\CanFlushLocks::class)) {
    interface FlushesLocks extends \Illuminate\Contracts\Cache\CanFlushLocks
    {
    }
} else {
    interface FlushesLocks
    {
        /** Remove all locks managed by the store. */
        public function flushLocks(): bool;

        /** Whether locks are kept apart from the cache values. */
        public function hasSeparateLockStore(): bool;
    }
}
