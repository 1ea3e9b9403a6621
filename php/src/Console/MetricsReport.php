<?php
declare(strict_types=1);

namespace RedisLock\Console;

/**
 * How the `redis-lock:metrics` commands (artisan, Symfony console) show the
 * host's lock metrics (`RedisLock\Metrics`): a table a kind a line, JSON
 * (`snapshot()`), or Prometheus text (`prometheus()`).
 */
final class MetricsReport
{
    /**
     * The command's output lines: $format is 'table', 'json' or 'prometheus'.
     *
     * @return list<string>
     */
    public static function lines(string $format): array
    {
        return match ($format) {
            'json' => [json_encode(\RedisLock\Metrics::snapshot(), JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES)],
            'prometheus' => explode("\n", rtrim(\RedisLock\Metrics::prometheus(), "\n")),
            default => self::table(\RedisLock\Metrics::snapshot()),
        };
    }

    /**
     * @param array<string, mixed> $s a Metrics::snapshot()
     * @return list<string>
     */
    private static function table(array $s): array
    {
        $where = $s['mode'] === 'host' ? "host ({$s['shm']}), {$s['processes']} processes counting now" : $s['mode'];
        $lines = ["metrics: $where", sprintf(
            '%-10s %9s %10s %8s %6s %9s %6s %6s %5s %7s  %s',
            'kind', 'acquired', 'conflicted', 'timeout', 'error', 'released', 'lost', 'error', 'held', 'waiting',
            'wait p50 / p99 / max (s)'
        )];
        foreach ($s['acquires'] as $kind => $a) {
            $r = $s['releases'][$kind];
            $w = $s['wait_seconds'][$kind];
            $lines[] = sprintf(
                '%-10s %9d %10d %8d %6d %9d %6d %6d %5d %7d  %s',
                $kind, $a['acquired'], $a['conflicted'], $a['timeout'], $a['error'],
                $r['released'], $r['lost'], $r['error'], $s['held'][$kind], $s['waiting'][$kind],
                $w['count'] === 0 ? '-' : sprintf('%.4f / %.4f / %.4f', $w['p50'], $w['p99'], $w['max'])
            );
        }
        $lines[] = sprintf(
            'watchdog renewals %d, lost %d; Redis unavailable %d',
            $s['watchdog_renewals'], $s['watchdog_lost'], $s['unavailable']
        );
        if ($s['names'] !== []) {
            $lines[] = 'most waited-for keys:';
            foreach ($s['names'] as $key => $waits) {
                $lines[] = sprintf('  %8d  %s', $waits, $key);
            }
        }
        return $lines;
    }
}
