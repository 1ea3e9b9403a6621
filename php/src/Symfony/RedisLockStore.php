<?php
declare(strict_types=1);

namespace RedisLock\Symfony;

use Psr\Log\LoggerInterface;
use RedisLock\LockManager;
use Symfony\Component\Lock\BlockingSharedLockStoreInterface;
use Symfony\Component\Lock\BlockingStoreInterface;
use Symfony\Component\Lock\Exception\LockConflictedException;
use Symfony\Component\Lock\Key;
use Symfony\Component\Lock\PersistingStoreInterface;
use Symfony\Component\Lock\SharedLockStoreInterface;
use Symfony\Component\Lock\Store\ExpiringStoreTrait;

/**
 * A Symfony Lock store on the redis_lock extension:
 * `new LockFactory(new RedisLockStore($dsn))`.
 *
 * Acquire, release and refresh are the extension's one-round-trip,
 * owner-checked scripts, and `acquire(true)` waits natively: it is woken when
 * the holder releases instead of polling every ~100 ms as Symfony does for
 * stores that cannot block.
 *
 * The owner token lives in the Key's state, so a Key serialized in one
 * process and unserialized in another still owns its lock there (exists(),
 * delete() and refresh act on it).
 *
 * Read locks (`$lock->acquireRead()`) are the extension's: many readers or
 * one writer, a waiting writer served before readers that come after it, and
 * `acquireRead(true)` woken by the release that lets it in. As with Symfony's
 * RedisStore, a Key that holds a read lock is promoted to the write lock by
 * `acquire()` when it is the only reader (with no one let in between; else
 * LockConflictedException, or with `acquire(true)` a wait until the other
 * readers leave), and a write lock is demoted by `acquireRead()`, letting in
 * the readers queued at the head.
 *
 * One class for Symfony 5.4, 6.4 and 7.4: the return types that 6.x added to
 * the interfaces are declared here, which 5.4's untyped interfaces allow.
 */
final class RedisLockStore implements PersistingStoreInterface, BlockingStoreInterface, SharedLockStoreInterface, BlockingSharedLockStoreInterface
{
    use ExpiringStoreTrait;

    private LockManager $locks;
    private float $initialTtl;

    /**
     * @param string|list<string>|null $dsn a DSN, or a list of DSNs (Redlock over
     *                         independent masters); null: the redis_lock.dsn ini value
     * @param array   $options the extension's options (prefix, ttl, connect_timeout,
     *                         timeout, on_unavailable, fencing); `ttl` is the TTL a
     *                         lock is first stored with (Symfony's Lock then refreshes
     *                         it to its own TTL). Default 300 s, as Symfony's RedisStore.
     * @param ?LoggerInterface $logger told of outcomes that are not exceptions (a lock
     *                         granted without Redis under on_unavailable = open); the
     *                         `logger` option, else error_log()
     */
    public function __construct(string|array|null $dsn = null, array $options = [], ?LoggerInterface $logger = null)
    {
        if ($logger !== null) {
            $options['logger'] ??= $logger;
        }
        $options += ['ttl' => 300.0];
        $this->initialTtl = (float) $options['ttl'];
        $this->locks = new LockManager($dsn, $options);
    }

    public function save(Key $key): void
    {
        $this->store($key, false, false);
    }

    public function waitAndSave(Key $key): void
    {
        $this->store($key, false, true);
    }

    public function saveRead(Key $key): void
    {
        $this->store($key, true, false);
    }

    public function waitAndSaveRead(Key $key): void
    {
        $this->store($key, true, true);
    }

    public function putOffExpiration(Key $key, float $ttl): void
    {
        $key->reduceLifetime($ttl);
        // Redis takes milliseconds; round up as Symfony's RedisStore does.
        if (!$this->lock($key)->refresh(max(0.001, ceil($ttl * 1000) / 1000))) {
            throw new LockConflictedException();
        }
        $this->checkNotExpired($key);
    }

    public function delete(Key $key): void
    {
        $this->lock($key)->release();
        $key->removeState(self::READ);
    }

    public function exists(Key $key): bool
    {
        return $this->lock($key)->isAcquired();
    }

    /**
     * What Redis says about the lock of `$resource` now (see
     * `LockManager::inspect()`): for the `redis-lock:inspect` command.
     *
     * @return array{locked: bool, kind: ?string, owner: ?string, holder: ?array{host: string, pid: int}, ttl: ?float, waiters: int, readers: int, fencing: ?int}
     */
    public function inspect(string $resource): array
    {
        return $this->locks->inspect($resource);
    }

    /** The Key state that says which kind it was last stored as. */
    private const READ = __CLASS__ . '::read';

    private function store(Key $key, bool $read, bool $wait): void
    {
        $key->reduceLifetime($this->initialTtl);
        $lock = $this->lock($key);
        // Holding the other kind, the same call promotes or demotes it.
        $got = $read ? $lock->acquireRead($wait) : $lock->acquire($wait);
        if (!$got) {
            throw new LockConflictedException();
        }
        $key->setState(self::READ, $read);
        $this->checkNotExpired($key);
    }

    private function lock(Key $key): \RedisLock\Lock
    {
        if (!$key->hasState(__CLASS__)) {
            // The extension's own token, which names this process and host
            // for inspect().
            $key->setState(__CLASS__, $this->locks->createLock((string) $key, null, false)->owner());
        }
        return $this->locks->restoreLock((string) $key, $key->getState(__CLASS__));
    }
}
