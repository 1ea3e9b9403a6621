<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

use Illuminate\Cache\ArrayStore;
use Illuminate\Contracts\Cache\LockProvider;
use Illuminate\Contracts\Cache\Store;
use RedisLock\LockManager;

/**
 * The `redis-lock` cache store: locks from the redis_lock extension, plain
 * cache values from another store.
 *
 * Values (get, put, increment, …) go to the store named by the `store`
 * config key (for example `redis` or `file`); without one they live in an
 * in-process array store, which suits a store used only for locks.
 */
class RedisLockStore implements Store, LockProvider
{
    /** The TTL of `lock($name, 0)`: Laravel's "never expires", capped at the extension's 30 days. */
    public const FOREVER = 2592000;

    /** @var array<string, LockManager> managers by TTL, which the extension fixes per manager for restored locks */
    private array $managers = [];

    public function __construct(private ?string $dsn, private array $options, private Store $values)
    {
    }

    /**
     * @param array{dsn?: string, connection?: string, store?: string, prefix?: string, options?: array} $config
     */
    public static function fromConfig($app, array $config): self
    {
        $dsn = $config['dsn'] ?? null;
        if ($dsn === null && isset($config['connection'])) {
            $dsn = self::dsnFromRedisConfig($app['config']["database.redis.{$config['connection']}"] ?? null, $config['connection']);
        }
        $options = $config['options'] ?? [];
        if (isset($config['prefix'])) {
            $options['prefix'] = $config['prefix'];
        }
        $values = isset($config['store'])
            ? $app['cache']->store($config['store'])->getStore()
            : new ArrayStore();
        return new self($dsn, $options, $values);
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

    public function lock($name, $seconds = 0, $owner = null)
    {
        $ttl = $seconds > 0 ? $seconds : self::FOREVER;
        $this->managers[(string) $ttl] ??= new LockManager($this->dsn, ['ttl' => $ttl] + $this->options);
        return new ExtensionLock($this->managers[(string) $ttl], $name, $seconds, $owner);
    }

    public function restoreLock($name, $owner)
    {
        return $this->lock($name, 0, $owner);
    }

    public function get($key)
    {
        return $this->values->get($key);
    }

    public function many(array $keys)
    {
        return $this->values->many($keys);
    }

    public function put($key, $value, $seconds)
    {
        return $this->values->put($key, $value, $seconds);
    }

    public function putMany(array $values, $seconds)
    {
        return $this->values->putMany($values, $seconds);
    }

    public function increment($key, $value = 1)
    {
        return $this->values->increment($key, $value);
    }

    public function decrement($key, $value = 1)
    {
        return $this->values->decrement($key, $value);
    }

    public function forever($key, $value)
    {
        return $this->values->forever($key, $value);
    }

    public function forget($key)
    {
        return $this->values->forget($key);
    }

    public function flush()
    {
        return $this->values->flush();
    }

    public function getPrefix()
    {
        return $this->values->getPrefix();
    }
}
