<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

use Illuminate\Console\Command;
use RedisLock\Console\Inspection;

/**
 * `php artisan redis-lock:inspect {name} [--store=] [--json]`: who holds a
 * lock of a `redis-lock` cache store, for how long, and who waits
 * (`LockManager::inspect()`).
 */
class InspectCommand extends Command
{
    protected $signature = 'redis-lock:inspect
        {name : the lock\'s name, as given to Cache::lock()}
        {--store= : the redis-lock cache store (default: the default cache store)}
        {--json : print inspect()\'s array as JSON}';

    protected $description = 'Shows who holds a lock, for how long, and who waits for it';

    public function handle(): int
    {
        $store = $this->laravel['cache']->store($this->option('store'))->getStore();
        if (!$store instanceof RedisLockStore) {
            $this->error('That cache store is not a redis-lock store: name one with --store.');
            return 1;
        }
        $name = (string) $this->argument('name');
        foreach (Inspection::lines($name, $store->inspect($name), (bool) $this->option('json')) as $line) {
            $this->line($line);
        }
        return 0;
    }
}
