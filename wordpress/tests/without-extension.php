<?php
/** Inside WordPress, without the extension: no fatal, a clear 503 and a critical Site Health result. */
[$root, $host] = [$argv[1], $argv[2]];
$_SERVER['HTTP_HOST'] = $host;
$_SERVER['REQUEST_URI'] = '/';
require "$root/wp-load.php";
if (extension_loaded('redis_lock')) {
    fwrite(STDERR, "run me without the extension\n");
    exit(2);
}
$result = redis_lock_synchronized('credit:1', fn () => 'ran');
$tests = apply_filters('site_status_tests', ['direct' => [], 'async' => []]);
$health = ($tests['direct']['redis_lock']['test'])();
echo json_encode([
    'is_wp_error' => is_wp_error($result),
    'status' => is_wp_error($result) ? $result->get_error_data()['status'] : null,
    'message' => is_wp_error($result) ? $result->get_error_message() : null,
    'health' => $health['status'],
    'health_text' => strip_tags($health['description']),
    'class_RedisMutex' => class_exists('RedisMutex'),
]), "\n";
