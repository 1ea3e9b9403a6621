<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

use Illuminate\Support\ServiceProvider;

/**
 * Registers the `redis-lock` cache driver. In config/cache.php:
 *
 *     'locks' => ['driver' => 'redis-lock', 'connection' => 'default'],
 *     // values then go to Laravel's redis store on that connection; or
 *     // 'dsn' => 'redis://…' with 'store' => 'redis' (the store for values),
 *     // 'prefix' => 'lock:', 'options' => [...the extension's options]
 *
 * then `Cache::store('locks')->lock('name', 10)->get()`. Also registers
 * `php artisan redis-lock:inspect {name}` (see InspectCommand) and
 * `php artisan redis-lock:metrics` (see MetricsCommand).
 */
class RedisLockServiceProvider extends ServiceProvider
{
    public function boot(): void
    {
        $this->app->make('cache')->extend('redis-lock', function ($app, array $config) {
            // $this is the CacheManager here (extend() binds the closure to it).
            // Laravel 11+ names the store in its cache events after `store`,
            // which is ours for values: give it the store's own name (8 and 10
            // take one argument).
            $store = RedisLockStore::fromConfig($app, $config);
            $name = RedisLockStore::nameInConfig($app, $config);
            unset($config['store']);
            return $this->repository($store, $name === null ? $config : ['store' => $name] + $config);
        });
        if ($this->app->runningInConsole()) {
            $this->commands([InspectCommand::class, MetricsCommand::class]);
        }
    }
}
