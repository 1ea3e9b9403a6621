<?php
/**
 * Calls every public method of the extension, the error paths included, so
 * that valgrind can look for leaks. Usage: php -d extension=… soak/every-method.php DSN
 */
declare(strict_types=1);

$dsn = $argv[1];
$try = static function (callable $f): void {
    try {
        $f();
    } catch (Throwable) {
    }
};
for ($round = 0; $round < 3; $round++) {
    $m = new RedisLock\RedisMutex($dsn, ['fencing' => true, 'prefix' => 'vg:']);
    $m->acquire('a', 5);
    $m->acquire('a', 5, 0.05);
    $m->extend('a', 10);
    $m->isLocked('a');
    $m->fencingToken('a');
    $m->release('a');
    $m->synchronized('b', fn () => [1, 2, 3], 5, 1);
    $try(fn () => $m->synchronized('b', function () { throw new RuntimeException('x'); }));
    $m->acquire('held', 5);
    $other = new RedisLock\RedisMutex($dsn, ['prefix' => 'vg:']);
    $try(fn () => $other->synchronized('held', fn () => 1));
    $try(fn () => $other->synchronized('held', fn () => 1, 1, 0.05));

    $lm = new RedisLock\LockManager($dsn, ['fencing' => true, 'prefix' => 'vg:']);
    $l = $lm->createLock('c', 5);
    $l->acquire();
    $l->acquire(true);
    $l->refresh(6);
    $l->isAcquired();
    $l->isExpired();
    $l->getRemainingLifetime();
    $l->owner();
    $l->name();
    $l->fencingToken();
    $try(fn () => $lm->createLock('c', 5)->block(0.05));
    $l->release();
    $l->block(1, fn () => 'x');
    $r = $lm->restoreLock('c', $l->owner());
    $r->release();
    $lm->executeWithLock('d', fn () => 1);
    $lm->waitAndExecute('d', fn () => 1, 1, 5);
    $try(fn () => $lm->executeWithLock('held', fn () => 1));
    $lm->isLocked('d');
    $lm->forceRelease('held');
    $lm->stats();
    foreach (['', str_repeat('x', 1025), [], null] as $bad) {
        $try(fn () => $m->acquire($bad));
    }
    foreach ([0, -1, NAN, INF, 1e12, 'x'] as $bad) {
        $try(fn () => $m->acquire('k', $bad));
        $try(fn () => $lm->createLock('k', $bad));
    }
    foreach (['', 'http://x', 'redis://', 'redis://h/x'] as $bad) {
        $try(fn () => new RedisLock\RedisMutex($bad));
    }
    $try(fn () => new RedisLock\LockManager($dsn, ['nope' => 1]));
    $down = new RedisLock\RedisMutex('redis://:pw@127.0.0.1:1', ['connect_timeout' => 0.1]);
    $try(fn () => $down->acquire('k'));
    $open = new RedisLock\RedisMutex('redis://127.0.0.1:1', ['connect_timeout' => 0.1, 'on_unavailable' => 'open']);
    @$open->acquire('k');
    $open->release('k');
    $m->acquire('left-for-shutdown', 5); // released by request shutdown
}
echo "every method called\n";
