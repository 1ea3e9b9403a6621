<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

use Illuminate\Console\Command;
use RedisLock\Console\MetricsReport;

/**
 * `php artisan redis-lock:metrics [--json] [--prometheus]`: this host's lock
 * metrics, every PHP process's together (`RedisLock\Metrics`).
 */
class MetricsCommand extends Command
{
    protected $signature = 'redis-lock:metrics
        {--json : print Metrics::snapshot() as JSON}
        {--prometheus : print the Prometheus text}';

    protected $description = 'Shows the lock metrics of every PHP process on this host';

    public function handle(): int
    {
        $format = $this->option('prometheus') ? 'prometheus' : ($this->option('json') ? 'json' : 'table');
        foreach (MetricsReport::lines($format) as $line) {
            $this->line($line);
        }
        return 0;
    }
}
