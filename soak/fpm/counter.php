<?php
// The endpoint under load: a read-modify-write of one counter, under a lock;
// at /metrics, the host's lock metrics for Prometheus (no lock taken).
if (parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) === '/metrics') {
    header('Content-Type: text/plain; version=0.0.4');
    echo RedisLock\Metrics::prometheus();
    return;
}
$redis = new Redis();
$redis->pconnect('127.0.0.1', (int) $_SERVER['REDIS_PORT']);
$mutex = new RedisLock\RedisMutex('redis://127.0.0.1:' . (int) $_SERVER['REDIS_PORT']);
$mutex->synchronized('counter', function () use ($redis) {
    $value = (int) $redis->get('counter');
    $redis->set('counter', (string) ($value + 1));
}, 5, 10);
echo "ok\n";
