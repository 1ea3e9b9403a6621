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
        'prefix' => defined('REDIS_LOCK_PREFIX') ? (string) REDIS_LOCK_PREFIX : 'wp:lock:',
        'ttl' => defined('REDIS_LOCK_TTL') ? (float) REDIS_LOCK_TTL : 10.0,
        'wait' => defined('REDIS_LOCK_WAIT') ? (float) REDIS_LOCK_WAIT : 2.0,
        'fail_open' => defined('REDIS_LOCK_FAIL') && REDIS_LOCK_FAIL === 'open',
    ];
}

/** The shared mutex, or null when the extension is not loaded. */
function redis_lock_mutex(): ?RedisLock\RedisMutex
{
    static $mutex = null;
    if ($mutex === null && extension_loaded('redis_lock')) {
        $c = redis_lock_config();
        $mutex = new RedisLock\RedisMutex($c['dsn'], [
            'prefix' => $c['prefix'],
            'ttl' => $c['ttl'],
            'on_unavailable' => $c['fail_open'] ? 'open' : 'closed',
        ]);
    }
    return $mutex;
}
