<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

use Illuminate\Cache\RedisStore;
use Illuminate\Contracts\Cache\LockProvider;
use Illuminate\Contracts\Cache\Store;
use RedisLock\LockManager;

/**
 * The `redis-lock` cache store: locks from the redis_lock extension, plain
 * cache values from another store.
 *
 * Values (get, put, add, has, increment, touch, …) go to, in this order:
 * - the store named by the `store` config key (for example `redis`);
 * - without it, when `connection` is configured: Laravel's redis store on
 *   that same connection (with the app's `cache.prefix`), shared by all
 *   servers like the locks;
 * - with only `dsn`: nowhere. Every value operation throws a \LogicException
 *   naming the `store` key. Values are never kept per process, because the
 *   scheduler's onOneServer() (Laravel 8, 10) and withoutOverlapping()
 *   (Laravel 8) take their mutex with add()/has(): a per-process store
 *   would let every server run the task, silently.
 *
 * Locks without seconds (`lock($name)`, `lock($name, 0)`) are Laravel's
 * "until released" locks: 30 days here (FOREVER). With the `watchdog`
 * config key, they are watched instead: taken with `watchdog_ttl` seconds
 * (default 10) and renewed by the extension's watchdog while their process
 * lives, so a worker that crashes frees them within that TTL; held when the
 * process ends in order, they are handed over with the 30 days (see
 * WatchedLocks), so locks released by another process (ShouldBeUnique
 * without `uniqueFor`, an owner handed to a job) survive. Locks with
 * seconds (the scheduler's mutexes, `uniqueFor`, `expireAfter()`, session
 * blocking) are never watched: they live their seconds, whichever process
 * ends.
 *
 * One class for Laravel 8 to 13: the methods a newer contract adds (touch(),
 * flushLocks(), hasSeparateLockStore()) are here on every version.
 */
class RedisLockStore implements Store, LockProvider, FlushesLocks
{
    /** The TTL of `lock($name, 0)`: Laravel's "never expires", capped at the extension's 30 days. */
    public const FOREVER = 2592000;

    /** The default `watchdog_ttl`: how long a crashed process's watched lock outlives it, at most. */
    public const WATCHDOG_TTL = 10;

    /** @var array<string, LockManager> managers by TTL, which the extension fixes per manager for restored locks */
    private array $managers = [];

    /**
     * @param ?Store $values where cache values go; null: none (value operations throw)
     * @param ?\Closure $redis returns the Laravel redis connection that reaches the lock
     *                         server (for flushLocks()); null: not known
     */
    /**
     * @param int|float|null $watchdogTtl null: locks without seconds are not watched
     *                                    (30 days); else their TTL, renewed while their process lives
     */
    public function __construct(
        private ?string $dsn,
        private array $options,
        private ?Store $values,
        private ?\Closure $redis = null,
        private int|float|null $watchdogTtl = null,
    ) {
    }

    /**
     * @param array{dsn?: string, connection?: string, store?: string, prefix?: string, options?: array, watchdog?: bool, watchdog_ttl?: int|float} $config
     */
    public static function fromConfig($app, array $config): self
    {
        $watchdog = $config['watchdog'] ?? false;
        if (!is_bool($watchdog)) {
            throw new \InvalidArgumentException('The `watchdog` config key of a redis-lock cache store must be true or false, ' . get_debug_type($watchdog) . ' given.');
        }
        $watchdogTtl = $config['watchdog_ttl'] ?? self::WATCHDOG_TTL;
        if (!is_int($watchdogTtl) && !is_float($watchdogTtl) || !($watchdogTtl > 0) || $watchdogTtl > self::FOREVER) {
            throw new \InvalidArgumentException('The `watchdog_ttl` config key of a redis-lock cache store must be a number of seconds > 0 and at most ' . self::FOREVER . '.');
        }
        $dsn = $config['dsn'] ?? null;
        $connection = $config['connection'] ?? null;
        $redis = null;
        if ($dsn === null && $connection !== null) {
            $dsn = self::dsnFromRedisConfig($app['config']["database.redis.{$connection}"] ?? null, $connection);
            $redis = static fn () => $app['redis']->connection($connection);
        }
        $options = $config['options'] ?? [];
        if (isset($config['prefix'])) {
            $options['prefix'] = $config['prefix'];
        }
        // Outcomes that are not exceptions (a fail-open grant, a failed
        // release after a callback) go to the app's log.
        if (!isset($options['logger']) && $app->bound('log')) {
            $options['logger'] = $app->make('log');
        }
        return new self($dsn, $options, self::valuesFromConfig($app, $config), $redis, $watchdog ? $watchdogTtl : null);
    }

    /**
     * The name of the store in config/cache.php that `$config` is, if any.
     * Laravel 11+ adds `'store' => <that name>` to the config it hands a
     * driver, where this driver's own `store` key is not set.
     */
    public static function nameInConfig($app, array $config): ?string
    {
        $own = $config;
        unset($own['store']);
        foreach ((array) ($app['config']['cache.stores'] ?? []) as $name => $stored) {
            if ($stored == $config || $stored == $own) {
                return (string) $name;
            }
        }
        return null;
    }

    /** The store for plain cache values (see the class comment). */
    private static function valuesFromConfig($app, array $config): ?Store
    {
        $name = $config['store'] ?? null;
        if ($name !== null && $name === self::nameInConfig($app, $config)) {
            $name = null; // Laravel 11+'s own name of this store, not a store for values
        }
        if ($name !== null) {
            if (($app['config']["cache.stores.{$name}.driver"] ?? null) === 'redis-lock') {
                throw new \InvalidArgumentException("The `store` config key of a redis-lock cache store names the store for its cache values; [{$name}] is a redis-lock store, which keeps none.");
            }
            return $app['cache']->store($name)->getStore();
        }
        if (isset($config['connection']) && !isset($config['dsn'])) {
            // Laravel 13's RedisStore takes the allowed classes to unserialize; older ones ignore the argument.
            return new RedisStore($app['redis'], $app['config']['cache.prefix'] ?? '', $config['connection'], $app['config']['cache.serializable_classes'] ?? null);
        }
        return null;
    }

    /** A DSN from one of Laravel's `database.redis` connections. */
    public static function dsnFromRedisConfig(?array $redis, string $name): string
    {
        if ($redis === null) {
            throw new \InvalidArgumentException("Redis connection [$name] is not configured in database.redis.");
        }
        if (!empty($redis['url'])) {
            return preg_replace('~^tls://~', 'rediss://', $redis['url']);
        }
        $scheme = ($redis['scheme'] ?? 'tcp') === 'tls' ? 'rediss' : 'redis';
        $host = $redis['host'] ?? '127.0.0.1';
        if (($redis['scheme'] ?? null) === 'unix' || str_starts_with($host, '/')) {
            return 'unix://' . $host;
        }
        $auth = '';
        if (($redis['password'] ?? null) !== null && $redis['password'] !== '') {
            $auth = rawurlencode((string) ($redis['username'] ?? '')) . ':' . rawurlencode((string) $redis['password']) . '@';
        }
        return sprintf('%s://%s%s:%d/%d', $scheme, $auth, $host, (int) ($redis['port'] ?? 6379), (int) ($redis['database'] ?? 0));
    }

    /**
     * The lock manager for locks of this TTL (seconds; <= 0: FOREVER, or
     * watched with watchdog_ttl).
     */
    private function manager($seconds): LockManager
    {
        if ($this->watched($seconds)) {
            return $this->managers['watched'] ??= new LockManager($this->dsn, [
                'ttl' => $this->watchdogTtl,
                'watchdog' => true,
                // Renewed for as long as the process holds it, as "until released" says.
                'watchdog_max' => self::FOREVER,
            ] + $this->options);
        }
        $ttl = $seconds > 0 ? $seconds : self::FOREVER;
        return $this->managers[(string) $ttl] ??= new LockManager($this->dsn, ['ttl' => $ttl] + $this->options);
    }

    /** Whether a lock of `$seconds` is watched: one without seconds, with the `watchdog` config key. */
    private function watched($seconds): bool
    {
        return $this->watchdogTtl !== null && !($seconds > 0);
    }

    public function lock($name, $seconds = 0, $owner = null)
    {
        return new ExtensionLock($this->manager($seconds), $name, $seconds, $owner, $this->watched($seconds));
    }

    public function restoreLock($name, $owner)
    {
        return $this->lock($name, 0, $owner);
    }

    /**
     * What Redis says about lock `$name` now (see `LockManager::inspect()`):
     * for the `redis-lock:inspect` command.
     *
     * @return array{locked: bool, kind: ?string, owner: ?string, holder: ?array{host: string, pid: int}, ttl: ?float, waiters: int, readers: int, fencing: ?int}
     */
    public function inspect(string $name): array
    {
        return $this->manager(0)->inspect($name);
    }

    /**
     * Removes every lock held under this store's lock prefix, whoever holds
     * it (`Cache::flushLocks()`, `php artisan cache:clear --locks` on Laravel
     * 13). The extension cannot list locks, so the lock keys are listed with
     * SCAN on the `connection`; each is then force-released through the
     * extension, so a process waiting for it is woken and gets it (as with
     * forceRelease()), and fencing counters are kept. Cache values are not
     * touched.
     *
     * @throws \LogicException when the store is configured with `dsn` rather
     *                         than `connection` (no connection to list keys with)
     */
    public function flushLocks(): bool
    {
        if ($this->redis === null) {
            throw new \LogicException('flushLocks() needs a redis-lock cache store configured with `connection` (a database.redis connection, used to list the lock keys); with `dsn` the extension has no way to list the locks.');
        }
        $prefix = $this->options['prefix'] ?? (string) (ini_get('redis_lock.prefix') ?: 'lock:');
        $pattern = addcslashes($prefix, '\\*?[]') . '{*}';
        $connection = ($this->redis)();
        $manager = $this->manager(0);
        $cursor = '0';
        do {
            // Through eval so that phpredis and Predis reply alike and no
            // client-side key prefix applies: the extension's keys have none.
            [$cursor, $keys] = $connection->eval(
                "return redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 1000)",
                0,
                (string) $cursor,
                $pattern
            );
            foreach ($keys as $key) {
                // <prefix>{<name>}: the other keys of a lock end in a suffix, not '}'.
                $name = substr($key, strlen($prefix) + 1, -1);
                if ($name !== '') {
                    $manager->forceRelease($name);
                }
            }
        } while ((string) $cursor !== '0');
        return true;
    }

    /** Locks are kept apart from the cache values: flush() leaves them, flushLocks() takes them. */
    public function hasSeparateLockStore(): bool
    {
        return true;
    }

    private function values(): Store
    {
        return $this->values ?? throw new \LogicException(
            'This redis-lock cache store keeps only locks, and cache values (get, put, add, has, …) need a store shared by all servers: '
            . 'set its `store` config key to the cache store for them (e.g. \'store\' => \'redis\'), or configure it with `connection` '
            . '(then values go to Laravel\'s redis store on that connection). Laravel\'s scheduler uses values for onOneServer() and, on Laravel 8, withoutOverlapping().'
        );
    }

    public function get($key)
    {
        return $this->values()->get($key);
    }

    public function many(array $keys)
    {
        return $this->values()->many($keys);
    }

    public function put($key, $value, $seconds)
    {
        return $this->values()->put($key, $value, $seconds);
    }

    public function putMany(array $values, $seconds)
    {
        return $this->values()->putMany($values, $seconds);
    }

    /**
     * Stores the value if the key has none: atomic where the values store
     * has its own add() (redis, database, memcached, …), which
     * Repository::add() and the scheduler's mutexes then use.
     */
    public function add($key, $value, $seconds)
    {
        $values = $this->values();
        if (method_exists($values, 'add')) {
            return $values->add($key, $value, $seconds);
        }
        return $values->get($key) === null && $values->put($key, $value, $seconds);
    }

    public function increment($key, $value = 1)
    {
        return $this->values()->increment($key, $value);
    }

    public function decrement($key, $value = 1)
    {
        return $this->values()->decrement($key, $value);
    }

    public function forever($key, $value)
    {
        return $this->values()->forever($key, $value);
    }

    /**
     * Sets a new expiry on a cached value (Laravel 13's Store::touch(); here
     * on every version). Stores without touch() get the value put again.
     */
    public function touch($key, $seconds)
    {
        $values = $this->values();
        if (method_exists($values, 'touch')) {
            return $values->touch($key, $seconds);
        }
        $value = $values->get($key);
        return $value !== null && $values->put($key, $value, $seconds);
    }

    public function forget($key)
    {
        return $this->values()->forget($key);
    }

    /** Flushes the cache values; the locks stay (see flushLocks()). */
    public function flush()
    {
        return $this->values()->flush();
    }

    public function getPrefix()
    {
        return $this->values === null ? '' : $this->values->getPrefix();
    }
}
