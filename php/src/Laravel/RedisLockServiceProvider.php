<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

use Illuminate\Support\ServiceProvider;

/**
 * Registers the `redis-lock` cache driver. In config/cache.php:
 *
 *     'locks' => ['driver' => 'redis-lock', 'connection' => 'default'],
 *     // or 'dsn' => 'redis://…', optional 'store' => 'redis' for plain values,
 *     // 'prefix' => 'lock:', 'options' => [...the extension's options]
 *
 * then `Cache::store('locks')->lock('name', 10)->get()`.
 */
class RedisLockServiceProvider extends ServiceProvider
{
    public function boot(): void
    {
        $this->app->make('cache')->extend('redis-lock', function ($app, array $config) {
            // $this is the CacheManager here (extend() binds the closure to it).
            return $this->repository(RedisLockStore::fromConfig($app, $config));
        });
    }
}
