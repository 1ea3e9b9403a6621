<?php
/**
 * The host's lock metrics (RedisLock\Metrics: every PHP process on this
 * server together) in Site Health, and the `wp redis-lock` commands.
 */

defined('ABSPATH') || exit;

/**
 * The figures Site Health and `wp redis-lock metrics` show, one row each.
 *
 * @return list<array{figure: string, value: string}>
 */
function redis_lock_metrics_rows(array $s): array
{
    $rows = [];
    $add = function (string $figure, $value) use (&$rows): void {
        $rows[] = ['figure' => $figure, 'value' => (string) $value];
    };
    $add(__('Counted for', 'redis-lock'), $s['mode'] === 'host' ? sprintf(__('this server (%d PHP processes now)', 'redis-lock'), $s['processes']) : $s['mode']);
    foreach ($s['acquires'] as $kind => $a) {
        if (array_sum($a) === 0) {
            continue;
        }
        $r = $s['releases'][$kind];
        $add(sprintf(__('%s: acquired / busy / timed out / failed', 'redis-lock'), $kind), "{$a['acquired']} / {$a['conflicted']} / {$a['timeout']} / {$a['error']}");
        $add(sprintf(__('%s: released / lost / failed', 'redis-lock'), $kind), "{$r['released']} / {$r['lost']} / {$r['error']}");
        $add(sprintf(__('%s: held now / waiting now', 'redis-lock'), $kind), "{$s['held'][$kind]} / {$s['waiting'][$kind]}");
        $w = $s['wait_seconds'][$kind];
        if ($w['count'] > 0) {
            $add(sprintf(__('%s: wait p50 / p99 / max (ms)', 'redis-lock'), $kind), sprintf('%.1f / %.1f / %.1f', $w['p50'] * 1e3, $w['p99'] * 1e3, $w['max'] * 1e3));
        }
    }
    $add(__('Redis unavailable', 'redis-lock'), $s['unavailable']);
    foreach ($s['names'] as $key => $waits) {
        $add(sprintf(__('Waited for: %s', 'redis-lock'), $key), $waits);
    }
    return $rows;
}

/** The Site Health result: good, or recommended when locks were lost or Redis was unavailable. */
function redis_lock_metrics_health(): array
{
    $result = [
        'label' => __('Redis lock metrics', 'redis-lock'),
        'status' => 'good',
        'badge' => ['label' => __('Performance', 'redis-lock'), 'color' => 'blue'],
        'test' => 'redis_lock_metrics',
    ];
    if (!class_exists('RedisLock\Metrics')) {
        return ['description' => '<p>' . esc_html__('The redis_lock extension is not loaded: no metrics.', 'redis-lock') . '</p>', 'status' => 'recommended'] + $result;
    }
    $s = RedisLock\Metrics::snapshot();
    $lost = array_sum(array_column($s['releases'], 'lost'));
    if ($lost > 0 || $s['unavailable'] > 0) {
        $result['status'] = 'recommended';
        $result['label'] = __('Some locks ran out before they were released, or Redis was unavailable', 'redis-lock');
    }
    $table = '<table class="widefat striped"><tbody>';
    foreach (redis_lock_metrics_rows($s) as $row) {
        $table .= '<tr><td>' . esc_html($row['figure']) . '</td><td>' . esc_html($row['value']) . '</td></tr>';
    }
    $table .= '</tbody></table>';
    $result['description'] = '<p>' . esc_html__('Lock activity of every PHP process on this server since the metrics began.', 'redis-lock') . '</p>' . $table;
    return $result;
}

function redis_lock_metrics_site_status_tests(array $tests): array
{
    $tests['direct']['redis_lock_metrics'] = [
        'label' => __('Redis lock metrics', 'redis-lock'),
        'test' => 'redis_lock_metrics_health',
    ];
    return $tests;
}

if (defined('WP_CLI') && WP_CLI && class_exists('WP_CLI')) {
    /** `wp redis-lock inspect <name>` and `wp redis-lock metrics [--format=table|json|prometheus]`. */
    class Redis_Lock_CLI_Command
    {
        /**
         * Shows who holds a lock of this site, for how long, and who waits.
         *
         * ## OPTIONS
         *
         * <name>
         * : The lock's name, as given to redis_lock_synchronized().
         */
        public function inspect(array $args): void
        {
            $c = redis_lock_config();
            $seen = (new RedisLock\LockManager($c['dsn'], ['prefix' => $c['prefix']]))->inspect($args[0]);
            foreach ($seen as $field => $value) {
                WP_CLI::line(sprintf('%-8s %s', $field, is_array($value) ? json_encode($value) : var_export($value, true)));
            }
        }

        /**
         * Shows the lock metrics of every PHP process on this server.
         *
         * ## OPTIONS
         *
         * [--format=<format>]
         * : table, json or prometheus.
         * ---
         * default: table
         * ---
         */
        public function metrics(array $args, array $assoc): void
        {
            $format = $assoc['format'] ?? 'table';
            if ($format === 'prometheus') {
                WP_CLI::out(RedisLock\Metrics::prometheus());
            } elseif ($format === 'json') {
                WP_CLI::line(json_encode(RedisLock\Metrics::snapshot()));
            } else {
                WP_CLI\Utils\format_items('table', redis_lock_metrics_rows(RedisLock\Metrics::snapshot()), ['figure', 'value']);
            }
        }
    }
    WP_CLI::add_command('redis-lock', 'Redis_Lock_CLI_Command');
}
