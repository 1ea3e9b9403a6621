<?php
declare(strict_types=1);

namespace RedisLock\Symfony;

use Psr\Log\LoggerInterface;
use RedisLock\LockManager;
use RedisLock\Semaphore;
use Symfony\Component\Semaphore\Exception\InvalidArgumentException;
use Symfony\Component\Semaphore\Exception\SemaphoreAcquiringException;
use Symfony\Component\Semaphore\Exception\SemaphoreExpiredException;
use Symfony\Component\Semaphore\Key;
use Symfony\Component\Semaphore\PersistingStoreInterface;

/**
 * A Symfony Semaphore store on the redis_lock extension:
 * `new SemaphoreFactory(new SemaphoreStore($dsn))`.
 *
 * Each permit is the extension's `RedisLock\Semaphore`: one round trip per
 * save, delete and refresh, permit TTLs on the Redis server's clock in
 * milliseconds (Symfony's RedisStore uses the PHP host's `time()`, in whole
 * seconds), and a holder that dies frees its permit at its TTL.
 *
 * The owner token lives in the Key's state, so a Key serialized in one
 * process and unserialized in another still owns its permit there.
 *
 * Weights are not supported: a Key whose weight is not 1 is refused with an
 * InvalidArgumentException (Symfony's RedisStore counts weights; the
 * extension counts holders).
 *
 * One class for Symfony 5.4 and 7.4: the return types that later versions
 * declare are declared here, which 5.4's untyped interface allows.
 */
final class SemaphoreStore implements PersistingStoreInterface
{
    private LockManager $locks;

    /**
     * @param ?string $dsn     null: the redis_lock.dsn ini value (one server, a
     *                         Sentinel master or a cluster; not Redlock)
     * @param array   $options the extension's options (prefix, connect_timeout, timeout,
     *                         on_unavailable, …)
     * @param ?LoggerInterface $logger told of outcomes that are not exceptions (a permit
     *                         granted without Redis under on_unavailable = open); the
     *                         `logger` option, else error_log()
     */
    public function __construct(?string $dsn = null, array $options = [], ?LoggerInterface $logger = null)
    {
        if ($logger !== null) {
            $options['logger'] ??= $logger;
        }
        $this->locks = new LockManager($dsn, $options);
    }

    public function save(Key $key, float $ttlInSecond): void
    {
        if (!$this->semaphore($key, $ttlInSecond)->acquire()) {
            throw new SemaphoreAcquiringException($key, 'all permits are taken');
        }
    }

    public function delete(Key $key): void
    {
        $this->semaphore($key)->release();
    }

    public function exists(Key $key): bool
    {
        return $this->semaphore($key)->isAcquired();
    }

    public function putOffExpiration(Key $key, float $ttlInSecond): void
    {
        if (!$this->semaphore($key, $ttlInSecond)->refresh()) {
            throw new SemaphoreExpiredException($key, 'the permit has expired or was released');
        }
    }

    private function semaphore(Key $key, ?float $ttlInSecond = null): Semaphore
    {
        if ($key->getWeight() !== 1) {
            throw new InvalidArgumentException(sprintf(
                'The redis_lock semaphore store does not support weights: the weight of "%s" is %d, only 1 is supported.',
                $key,
                $key->getWeight()
            ));
        }
        if ($ttlInSecond !== null && $ttlInSecond <= 0) {
            throw new InvalidArgumentException("The TTL should be greater than 0, '$ttlInSecond' given.");
        }
        if (!$key->hasState(__CLASS__)) {
            $key->setState(__CLASS__, bin2hex(random_bytes(16)));
        }
        // Redis takes milliseconds; round up as Symfony's stores do.
        $ttl = $ttlInSecond === null ? null : max(0.001, ceil($ttlInSecond * 1000) / 1000);
        return $this->locks->restoreSemaphore((string) $key, $key->getLimit(), $key->getState(__CLASS__), $ttl);
    }
}
