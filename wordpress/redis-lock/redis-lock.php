<?php
/**
 * Plugin Name: Redis Lock
 * Description: Atomic, ownership-safe locks on Redis for plugin code, from the redis_lock PHP extension: redis_lock_synchronized() and a RedisMutex class.
 * Version: 0.1.0
 * Requires at least: 6.1
 * Requires PHP: 8.2
 * License: MIT
 * License URI: https://opensource.org/licenses/MIT
 * Text Domain: redis-lock
 *
 * Configuration (wp-config.php, all optional):
 *   define('REDIS_LOCK_DSN', 'redis://127.0.0.1:6379');  // else the redis_lock.dsn ini value
 *   define('REDIS_LOCK_PREFIX', 'wp:lock:');  // default: one of this site's own, wp:<DB_NAME>:<table prefix>lock:
 *   define('REDIS_LOCK_TTL', 10);        // seconds a lock lives if its holder dies
 *   define('REDIS_LOCK_WAIT', 2);        // seconds to wait for a busy lock before answering 429
 *   define('REDIS_LOCK_FAIL', 'closed'); // Redis down: 'closed' refuses (503), 'open' runs unlocked
 */

defined('ABSPATH') || exit;

require_once __DIR__ . '/includes/config.php';
require_once __DIR__ . '/includes/functions.php';
require_once __DIR__ . '/includes/site-health.php';
require_once __DIR__ . '/includes/metrics.php';

if (extension_loaded('redis_lock') && !class_exists('RedisMutex', false)) {
    // Code written as `new RedisMutex()` (the usual plugin shape) gets the
    // extension's mutex. A subclass, because PHP cannot alias internal classes.
    require_once __DIR__ . '/includes/class-redis-mutex.php';
}

add_filter('rest_post_dispatch', 'redis_lock_rest_retry_after', 10, 1);
add_filter('site_status_tests', 'redis_lock_site_status_tests');
add_filter('site_status_tests', 'redis_lock_metrics_site_status_tests');
add_action('admin_notices', 'redis_lock_admin_notice');
