<?php
// What a plugin without a lock library writes: SET NX PX with a random token,
// a 100 ms sleep between tries, and a compare-and-delete script to release.
require __DIR__ . '/common.php';
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
$data = data();
$token = bin2hex(random_bytes(16));
$end = microtime(true) + WAIT;
while (!$data->set(LOCK_KEY, $token, ['nx', 'px' => TTL * 1000])) {
    if (microtime(true) >= $end) {
        throw new RuntimeException('lock wait timed out');
    }
    usleep(100_000);
}
try {
    critical_section($data);
} finally {
    $data->eval(RELEASE, [LOCK_KEY, $token], 1);
}
done($data);
