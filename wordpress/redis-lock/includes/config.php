<?php
/** The plugin's settings, from wp-config.php constants with defaults. */

defined('ABSPATH') || exit;

/**
 * @return array{dsn: ?string, prefix: string, ttl: float, wait: float, fail_open: bool}
 */
function redis_lock_config(): array
{
    return [
        'dsn' => defined('REDIS_LOCK_DSN') ? (string) REDIS_LOCK_DSN : null,
        'prefix' => defined('REDIS_LOCK_PREFIX') ? (string) REDIS_LOCK_PREFIX : redis_lock_site_prefix(),
        'ttl' => defined('REDIS_LOCK_TTL') ? (float) REDIS_LOCK_TTL : 10.0,
        'wait' => defined('REDIS_LOCK_WAIT') ? (float) REDIS_LOCK_WAIT : 2.0,
        'fail_open' => defined('REDIS_LOCK_FAIL') && REDIS_LOCK_FAIL === 'open',
    ];
}

/**
 * The key prefix of this site's locks when REDIS_LOCK_PREFIX is not set:
 * `wp:<DB_NAME>:<table prefix>lock:`, so that sites sharing one Redis (each
 * its own database or table prefix) and the sites of a multisite network
 * (each its own table prefix, `wp_2_`, …) never share a lock by accident.
 */
function redis_lock_site_prefix(): string
{
    global $wpdb;
    $tables = isset($wpdb) ? $wpdb->get_blog_prefix() : ($GLOBALS['table_prefix'] ?? 'wp_');
    $db = defined('DB_NAME') ? (string) DB_NAME : '';
    return 'wp:' . $db . ':' . $tables . 'lock:';
}

/**
 * The current site's mutex (one per prefix: in a multisite network,
 * switch_to_blog() switches sites), or null when the extension is not loaded.
 */
function redis_lock_mutex(): ?RedisLock\RedisMutex
{
    static $mutexes = [];
    if (!extension_loaded('redis_lock')) {
        return null;
    }
    $c = redis_lock_config();
    return $mutexes[$c['prefix']] ??= new RedisLock\RedisMutex($c['dsn'], [
        'prefix' => $c['prefix'],
        'ttl' => $c['ttl'],
        'on_unavailable' => $c['fail_open'] ? 'open' : 'closed',
    ]);
}
