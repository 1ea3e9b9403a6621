<?php
/** Inside WordPress: the Site Health result of the host's lock metrics, as JSON. */
[$root, $host] = [$argv[1], $argv[2]];
$_SERVER['HTTP_HOST'] = $host;
$_SERVER['REQUEST_URI'] = '/';
require "$root/wp-load.php";
$tests = apply_filters('site_status_tests', ['direct' => [], 'async' => []]);
$health = ($tests['direct']['redis_lock_metrics']['test'])();
$snapshot = RedisLock\Metrics::snapshot();
echo json_encode([
    'status' => $health['status'],
    'text' => html_entity_decode(strip_tags(str_replace('</td><td>', ': ', str_replace('</tr>', "\n", $health['description'])))),
    'acquired' => $snapshot['acquires']['lock']['acquired'],
]), "\n";
