<?php
// Laravel's cache lock on Redis (Illuminate\Cache\RedisLock over phpredis):
// block() tries, then sleeps 250 ms (its default) between tries.
require __DIR__ . '/common.php';
require_once '/usr/share/php/Illuminate/autoload.php';
$data = data();
$app = new Illuminate\Container\Container();
$redis = new Illuminate\Redis\RedisManager($app, 'phpredis', [
    'default' => ['host' => '127.0.0.1', 'port' => redis_port(), 'database' => 0, 'persistent' => true],
]);
$store = new Illuminate\Cache\RedisStore($redis, '', 'default');
$store->lock(LOCK_KEY, TTL)->block(WAIT, fn () => critical_section($data));
done($data);
