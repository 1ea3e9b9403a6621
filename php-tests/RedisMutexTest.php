<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\LockConflictedException;
use RedisLock\LockTimeoutException;
use RedisLock\RedisMutex;

final class RedisMutexTest extends TestCase
{
    public function testAcquireExcludesOthersAndReleaseFreesTheKey(): void
    {
        $a = new RedisMutex($this->dsn());
        $b = new RedisMutex($this->dsn());
        $this->assertTrue($a->acquire('credit:42', 10));
        $this->assertTrue($a->isLocked('credit:42'));
        $this->assertTrue($b->isLocked('credit:42'), 'held by anyone');
        $this->assertFalse($b->acquire('credit:42'));
        $this->assertFalse($b->release('credit:42'), 'b never held it');
        $this->assertNotFalse($this->storedToken('credit:42'), 'b did not delete a\'s lock');
        $this->assertTrue($a->release('credit:42'));
        $this->assertFalse($a->isLocked('credit:42'));
        $this->assertFalse($a->release('credit:42'), 'nothing left to release');
        $this->assertTrue($b->acquire('credit:42'));
    }

    public function testTtlIsSentInMillisecondsAndDefaultsToTheIniValue(): void
    {
        $m = new RedisMutex($this->dsn());
        $this->assertTrue($m->acquire('a', 0.25));
        $pttl = $this->redis->pTtl('lock:{a}');
        $this->assertGreaterThan(150, $pttl);
        $this->assertLessThanOrEqual(250, $pttl);

        $this->assertTrue($m->acquire('b'));
        $this->assertGreaterThan(4000, $this->redis->pTtl('lock:{b}'), 'redis_lock.ttl defaults to 5 s');

        $custom = new RedisMutex($this->dsn(), ['ttl' => 60, 'prefix' => 'app:']);
        $this->assertTrue($custom->acquire('c'));
        $this->assertGreaterThan(59_000, $this->redis->pTtl('app:{c}'));
    }

    public function testNotReentrant(): void
    {
        $m = new RedisMutex($this->dsn());
        $this->assertTrue($m->acquire('k'));
        $start = microtime(true);
        $this->assertFalse($m->acquire('k', null, 2), 'a second acquire by the holder must not succeed');
        $this->assertLessThan(0.5, microtime(true) - $start, 'and must not wait for itself');
        $this->assertTrue($m->release('k'));
    }

    public function testAnExpiredHolderCanReacquire(): void
    {
        $m = new RedisMutex($this->dsn());
        $this->assertTrue($m->acquire('k', 0.1));
        usleep(150_000);
        $this->assertTrue($m->acquire('k', 5), 'its old hold expired');
        $this->assertTrue($m->release('k'));
    }

    public function testExpiredHolderReleaseLeavesTheNewHolderAlone(): void
    {
        $old = new RedisMutex($this->dsn());
        $new = new RedisMutex($this->dsn());
        $this->assertTrue($old->acquire('job', 0.1));
        usleep(150_000);
        $this->assertTrue($new->acquire('job', 10));
        $token = $this->storedToken('job');

        $this->assertFalse($old->extend('job', 30), 'extend only while owned');
        $this->assertFalse($old->release('job'), 'release only while owned');
        $this->assertSame($token, $this->storedToken('job'), 'the new holder keeps its lock');
        $this->assertTrue($new->isLocked('job'));
        $this->assertTrue($new->release('job'));
    }

    public function testExtendRenewsTheTtlOfAnOwnedLock(): void
    {
        $m = new RedisMutex($this->dsn());
        $this->assertFalse($m->extend('k', 5), 'not held');
        $this->assertTrue($m->acquire('k', 0.3));
        $this->assertTrue($m->extend('k', 20));
        $this->assertGreaterThan(19_000, $this->redis->pTtl('lock:{k}'));
        usleep(400_000);
        $this->assertTrue($m->isLocked('k'));
    }

    public function testFencingTokensIncreaseAndAreNullWithoutFencing(): void
    {
        $plain = new RedisMutex($this->dsn());
        $this->assertTrue($plain->acquire('f'));
        $this->assertNull($plain->fencingToken('f'));
        $plain->release('f');
        $this->assertSame(0, $this->redis->exists('lock:{f}:fence'));

        $a = new RedisMutex($this->dsn(), ['fencing' => true]);
        $b = new RedisMutex($this->dsn(), ['fencing' => true]);
        $this->assertNull($a->fencingToken('f'), 'not held');
        $this->assertTrue($a->acquire('f'));
        $first = $a->fencingToken('f');
        $this->assertIsInt($first);
        $a->release('f');
        $this->assertNull($a->fencingToken('f'), 'released');
        $this->assertTrue($b->acquire('f'));
        $this->assertGreaterThan($first, $b->fencingToken('f'));
    }

    public function testSynchronizedRunsUnderTheLockAndReturnsTheValue(): void
    {
        $m = new RedisMutex($this->dsn());
        $seen = null;
        $result = $m->synchronized('k', function () use ($m, &$seen) {
            $seen = $m->isLocked('k');
            return ['done' => true];
        });
        $this->assertTrue($seen, 'held while the callback runs');
        $this->assertSame(['done' => true], $result);
        $this->assertFalse($m->isLocked('k'), 'released afterwards');
    }

    public function testSynchronizedReleasesWhenTheCallbackThrows(): void
    {
        $m = new RedisMutex($this->dsn());
        $thrown = new \DomainException('insufficient funds', 7);
        try {
            $m->synchronized('k', function () use ($thrown) {
                throw $thrown;
            });
            $this->fail('the exception must propagate');
        } catch (\DomainException $e) {
            $this->assertSame($thrown, $e, 'the original exception, unchanged');
        }
        $this->assertFalse($m->isLocked('k'));
        $this->assertSame(0, $this->redis->exists('lock:{k}'));
    }

    public function testSynchronizedThrowsConflictOrTimeoutWhenHeld(): void
    {
        $holder = new RedisMutex($this->dsn());
        $other = new RedisMutex($this->dsn());
        $this->assertTrue($holder->acquire('k', 10));
        $ran = false;
        try {
            $other->synchronized('k', function () use (&$ran) { $ran = true; });
            $this->fail('expected a conflict');
        } catch (LockConflictedException $e) {
            $this->assertNotInstanceOf(LockTimeoutException::class, $e);
        }
        $start = microtime(true);
        try {
            $other->synchronized('k', function () use (&$ran) { $ran = true; }, null, 0.3);
            $this->fail('expected a timeout');
        } catch (LockTimeoutException $e) {
            $took = microtime(true) - $start;
            $this->assertGreaterThanOrEqual(0.29, $took);
            $this->assertLessThan(1.0, $took);
        }
        $this->assertFalse($ran);
        $this->assertNotFalse($this->storedToken('k'), 'the holder keeps its lock');
    }

    public function testCallbackMayUseTheSameMutex(): void
    {
        $m = new RedisMutex($this->dsn());
        $inner = $m->synchronized('outer', fn () => $m->synchronized('inner', fn () => 'nested'));
        $this->assertSame('nested', $inner);
        $this->assertFalse($m->isLocked('outer'));
        $this->assertFalse($m->isLocked('inner'));
    }

    public function testWaitIsWokenByReleaseNotByTheTtl(): void
    {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $holder = new RedisMutex($this->dsn());
            $holder->acquire('k', 30);
            usleep(300_000);
            $holder->release('k');
            posix_kill(getmypid(), SIGKILL); // skip all shutdown work
        }
        $waiter = new RedisMutex($this->dsn());
        while (!$waiter->isLocked('k')) {
            usleep(1000);
        }
        $start = microtime(true);
        $this->assertTrue($waiter->acquire('k', 5, 10));
        $took = microtime(true) - $start;
        pcntl_waitpid($pid, $status);
        $this->assertGreaterThanOrEqual(0.2, $took);
        $this->assertLessThan(0.8, $took, 'woken when released, not after the 30 s TTL');
    }

    public function testAForkedChildCannotReleaseItsParentsLock(): void
    {
        $parent = new RedisMutex($this->dsn());
        $this->assertTrue($parent->acquire('k', 30));
        [$child] = Workers::run(1, function () use ($parent) {
            $released = $parent->release('k');
            $extended = $parent->extend('k', 1);
            $fence = $parent->fencingToken('k');
            unset($parent); // the child's destructor must not release either
            return [$released, $extended, $fence];
        });
        $this->assertSame([false, false, null], $child);
        $this->assertTrue($parent->isLocked('k'), 'still held after the child exited');
        $this->assertGreaterThan(25_000, $this->redis->pTtl('lock:{k}'));
        $this->assertTrue($parent->release('k'));
    }

    public function testWaitNoticesADeadHolderWhenItsTtlRunsOut(): void
    {
        $holder = new RedisMutex($this->dsn());
        $this->assertTrue($holder->acquire('k', 0.5));
        $waiter = new RedisMutex($this->dsn());
        $start = microtime(true);
        $this->assertTrue($waiter->acquire('k', 5, 5));
        $took = microtime(true) - $start;
        $this->assertGreaterThanOrEqual(0.4, $took);
        $this->assertLessThan(1.5, $took);
    }

    public function testDestroyingTheMutexReleasesItsLocks(): void
    {
        $m = new RedisMutex($this->dsn());
        $this->assertTrue($m->acquire('a', 30));
        $this->assertTrue($m->acquire('b', 30));
        unset($m);
        $this->assertSame(0, $this->redis->exists('lock:{a}', 'lock:{b}'));
    }

    public function testBinarySafeNames(): void
    {
        $m = new RedisMutex($this->dsn());
        $this->assertTrue($m->acquire("a\0b"));
        $this->assertFalse($m->isLocked("a\0c"));
        $this->assertTrue($m->isLocked("a\0b"));
        $this->assertTrue($m->acquire(str_repeat('x', 1024)));
        $this->assertTrue($m->release("a\0b"));
    }
}
