<?php
declare(strict_types=1);

namespace RedisLock\Symfony;

use Symfony\Component\HttpKernel\Bundle\Bundle;

/**
 * The redis_lock extension as Symfony's lock (and semaphore) backend:
 * register it after FrameworkBundle, then configure
 *
 *     redis_lock:
 *         dsn: '%env(REDIS_LOCK_DSN)%'   # or a list of DSNs (Redlock); null: the redis_lock.dsn ini value
 *         prefix: 'app:lock:'
 *         options: { timeout: 0.5 }      # the extension's options
 *
 * `lock.factory` (and the LockFactory autowiring alias) then make locks in
 * `RedisLockStore`, and `semaphore.factory` (with symfony/semaphore) makes
 * semaphores in `SemaphoreStore`, both on that Redis. The extension's
 * outcomes that are not exceptions go to the `logger` service. One bundle
 * for Symfony 5.4, 6.4 and 7.4 (a classic Bundle with its Extension).
 */
final class RedisLockBundle extends Bundle
{
}
