<?php
/**
 * Inside WordPress, with the plugin installed as a must-use plugin (the
 * loader and the redis-lock/ folder in mu-plugins/, nothing in plugins/):
 * it is loaded, its lock works, and its keys carry this site's prefix.
 */
[$root, $host] = [$argv[1], $argv[2]];
$_SERVER['HTTP_HOST'] = $host;
$_SERVER['REQUEST_URI'] = '/';
require "$root/wp-load.php";
require_once ABSPATH . 'wp-admin/includes/plugin.php'; // get_mu_plugins()
$result = redis_lock_synchronized('mu-probe', fn () => 'ran');
echo json_encode([
    'loaded' => function_exists('redis_lock_synchronized'),
    'result' => is_wp_error($result) ? $result->get_error_message() : $result,
    'prefix' => redis_lock_config()['prefix'],
    'mu_plugins' => array_keys(get_mu_plugins()),
]), "\n";
