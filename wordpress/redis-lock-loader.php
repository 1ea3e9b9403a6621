<?php
/**
 * Plugin Name: Redis Lock (must-use loader)
 * Description: Loads the Redis Lock plugin from wp-content/mu-plugins/redis-lock/: WordPress runs only the files at the top of mu-plugins/, not those in its folders.
 * Requires at least: 6.1
 * Requires PHP: 8.2
 * License: MIT
 * Text Domain: redis-lock
 *
 * Copy this file and the redis-lock/ folder into wp-content/mu-plugins/.
 */

defined('ABSPATH') || exit;

require_once __DIR__ . '/redis-lock/redis-lock.php';
