<?php
// redis_lock: RedisMutex::synchronized with a wait (woken on release, no sleep between tries).
require __DIR__ . '/common.php';
$data = data();
$mutex = new RedisLock\RedisMutex('redis://127.0.0.1:' . redis_port());
$mutex->synchronized(LOCK_KEY, fn () => critical_section($data), TTL, WAIT);
done($data);
