<?php
// Symfony Lock's RedisStore over phpredis: acquire(true) tries, then sleeps
// 100 ms (+-10) between tries (RedisStore cannot wait in Redis). It has no time limit.
require __DIR__ . '/common.php';
require_once '/usr/share/php/Symfony/Component/Lock/autoload.php';
$data = data();
$redis = new Redis();
$redis->pconnect('127.0.0.1', redis_port());
$factory = new Symfony\Component\Lock\LockFactory(new Symfony\Component\Lock\Store\RedisStore($redis, TTL));
$lock = $factory->createLock(LOCK_KEY, TTL);
$lock->acquire(true);
try {
    critical_section($data);
} finally {
    $lock->release();
}
done($data);
