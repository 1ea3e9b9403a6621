<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\Lock;
use RedisLock\LockConflictedException;
use RedisLock\LockManager;
use RedisLock\LockTimeoutException;

final class LockManagerTest extends TestCase
{
    private LockManager $lm;

    protected function setUp(): void
    {
        parent::setUp();
        $this->lm = new LockManager($this->dsn());
    }

    public function testCreateLockGivesAnUnacquiredLockWithAUniqueOwner(): void
    {
        $a = $this->lm->createLock('report', 10);
        $b = $this->lm->createLock('report', 10);
        $this->assertInstanceOf(Lock::class, $a);
        $this->assertSame('report', $a->name());
        // 128 random bits in base64url, then who made it (for inspect()),
        // in at most 44 bytes: what Redis keeps inline.
        $this->assertMatchesRegularExpression('/^[A-Za-z0-9_-]{22}:' . getmypid() . '@' . preg_quote(self::tokenHost(getmypid()), '/') . '$/', $a->owner());
        $this->assertLessThanOrEqual(44, strlen($a->owner()));
        $this->assertNotSame($a->owner(), $b->owner());
        $this->assertFalse($a->isAcquired());
        $this->assertFalse($this->lm->isLocked('report'), 'creating sends nothing');
    }

    public function testAcquireReleaseAndOwnership(): void
    {
        $a = $this->lm->createLock('report', 10);
        $b = $this->lm->createLock('report', 10);
        $this->assertTrue($a->acquire());
        $this->assertSame($a->owner(), $this->storedToken('report'));
        $this->assertTrue($a->isAcquired());
        $this->assertFalse($b->acquire());
        $this->assertFalse($b->isAcquired());
        $this->assertFalse($b->release(), 'another owner cannot release');
        $this->assertTrue($this->lm->isLocked('report'));
        $this->assertTrue($a->release());
        $this->assertFalse($a->isAcquired());
        $this->assertFalse($this->lm->isLocked('report'));
        $this->assertTrue($b->acquire());
    }

    public function testReacquireBySameOwnerRenews(): void
    {
        $a = $this->lm->createLock('k', 10);
        $this->assertTrue($a->acquire());
        $this->assertTrue($a->acquire(), 'the owner already holds it');
        $this->assertTrue($a->release());
        $this->assertFalse($this->lm->isLocked('k'));
    }

    public function testBlockingAcquireWaitsUntilReleased(): void
    {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $lm = new LockManager($this->dsn());
            $l = $lm->createLock('k', 30);
            $l->acquire();
            usleep(300_000);
            $l->release();
            posix_kill(getmypid(), SIGKILL);
        }
        while (!$this->lm->isLocked('k')) {
            usleep(1000);
        }
        $start = microtime(true);
        $this->assertTrue($this->lm->createLock('k', 5)->acquire(true));
        $took = microtime(true) - $start;
        pcntl_waitpid($pid, $status);
        $this->assertGreaterThan(0.2, $took);
        $this->assertLessThan(0.8, $took);
    }

    public function testBlockReturnsTrueOrRunsTheCallbackOrTimesOut(): void
    {
        $l = $this->lm->createLock('k', 10);
        $this->assertTrue($l->block(1));
        $this->assertTrue($l->isAcquired());

        $other = $this->lm->createLock('k', 10);
        $start = microtime(true);
        try {
            $other->block(0.3, fn () => $this->fail('must not run'));
            $this->fail('expected LockTimeoutException');
        } catch (LockTimeoutException $e) {
            $this->assertStringContainsString('"k"', $e->getMessage());
        }
        $this->assertGreaterThanOrEqual(0.29, microtime(true) - $start);
        $this->assertLessThan(1.0, microtime(true) - $start);
        $l->release();

        $this->assertSame(42, $other->block(1, function () {
            $this->assertTrue($this->lm->isLocked('k'));
            return 42;
        }));
        $this->assertFalse($this->lm->isLocked('k'), 'block with a callback releases');
    }

    public function testRefreshOnlyWhileOwned(): void
    {
        $l = $this->lm->createLock('k', 0.3);
        $this->assertFalse($l->refresh(), 'not held');
        $this->assertTrue($l->acquire());
        $this->assertTrue($l->refresh(20));
        $this->assertGreaterThan(19.0, $l->getRemainingLifetime());
        $this->assertTrue($l->refresh(), 'null: refresh with the last TTL');
        $this->assertGreaterThan(19.0, $l->getRemainingLifetime());
    }

    public function testExpiryIsSeenAndTheNewHolderIsLeftAlone(): void
    {
        $old = $this->lm->createLock('k', 0.1);
        $this->assertFalse($old->isExpired(), 'never acquired');
        $this->assertNull($old->getRemainingLifetime());
        $this->assertTrue($old->acquire());
        $remaining = $old->getRemainingLifetime();
        $this->assertGreaterThan(0.0, $remaining);
        $this->assertLessThanOrEqual(0.1, $remaining);
        usleep(150_000);
        $this->assertTrue($old->isExpired());
        $this->assertFalse($old->isAcquired());
        $this->assertNull($old->getRemainingLifetime());

        $new = $this->lm->createLock('k', 10);
        $this->assertTrue($new->acquire());
        $this->assertFalse($old->refresh(10));
        $this->assertFalse($old->release());
        $this->assertSame($new->owner(), $this->storedToken('k'));
    }

    public function testRestoreLockActsForTheOwnerFromAnotherProcess(): void
    {
        $l = $this->lm->createLock('job', 30);
        $this->assertTrue($l->acquire());
        $owner = $l->owner();
        [$child] = Workers::run(1, function () use ($owner) {
            $lm = new LockManager($this->dsn());
            $stranger = $lm->restoreLock('job', 'not-the-owner');
            $restored = $lm->restoreLock('job', $owner);
            return [$stranger->release(), $restored->owner(), $restored->isAcquired(), $restored->release()];
        });
        $this->assertSame([false, $owner, true, true], $child);
        $this->assertFalse($this->lm->isLocked('job'));
        $this->assertFalse($l->isAcquired());
    }

    public function testRestoredLockIsNotReleasedWhenDestroyed(): void
    {
        $l = $this->lm->createLock('job', 30, false);
        $this->assertTrue($l->acquire());
        $restored = $this->lm->restoreLock('job', $l->owner());
        unset($restored);
        $this->assertTrue($this->lm->isLocked('job'));
    }

    public function testAutoReleaseOnDestroyUnlessDisabled(): void
    {
        $auto = $this->lm->createLock('a', 30);
        $this->assertTrue($auto->acquire());
        unset($auto);
        $this->assertFalse($this->lm->isLocked('a'));

        $kept = $this->lm->createLock('b', 30, autoRelease: false);
        $this->assertTrue($kept->acquire());
        unset($kept);
        $this->assertTrue($this->lm->isLocked('b'));
    }

    public function testExecuteWithLockTriesOnceAndReleases(): void
    {
        $this->assertSame('ok', $this->lm->executeWithLock('k', function () {
            $this->assertTrue($this->lm->isLocked('k'));
            return 'ok';
        }));
        $this->assertFalse($this->lm->isLocked('k'));

        $holder = $this->lm->createLock('k', 10);
        $holder->acquire();
        $start = microtime(true);
        try {
            $this->lm->executeWithLock('k', fn () => $this->fail('must not run'));
            $this->fail('expected LockConflictedException');
        } catch (LockConflictedException $e) {
            $this->assertNotInstanceOf(LockTimeoutException::class, $e);
        }
        $this->assertLessThan(0.2, microtime(true) - $start, 'no waiting');
        $this->assertSame($holder->owner(), $this->storedToken('k'));
    }

    public function testWaitAndExecuteWaitsThenTimesOut(): void
    {
        $holder = $this->lm->createLock('k', 10);
        $holder->acquire();
        $start = microtime(true);
        try {
            $this->lm->waitAndExecute('k', fn () => $this->fail('must not run'), 0.3);
            $this->fail('expected LockTimeoutException');
        } catch (LockTimeoutException) {
        }
        $took = microtime(true) - $start;
        $this->assertGreaterThanOrEqual(0.29, $took);
        $this->assertLessThan(1.0, $took);
        try {
            $this->lm->waitAndExecute('k', fn () => $this->fail('must not run'), 0);
            $this->fail('expected LockTimeoutException');
        } catch (LockTimeoutException) {
            // maxWait 0 is still a (zero-length) wait: a timeout, not a plain conflict
        }
        $holder->release();
        $this->assertSame(7, $this->lm->waitAndExecute('k', fn () => 7, maxWait: 1, ttl: 2));
        $this->assertFalse($this->lm->isLocked('k'));
    }

    public function testCallbackExceptionsPropagateAfterRelease(): void
    {
        foreach (['executeWithLock', 'waitAndExecute'] as $method) {
            try {
                $this->lm->$method('k', function () {
                    throw new \LogicException("from the callback");
                });
                $this->fail('the exception must propagate');
            } catch (\LogicException) {
            }
            $this->assertFalse($this->lm->isLocked('k'), "$method released");
        }
    }

    public function testForceReleaseDeletesWhoeverHoldsIt(): void
    {
        $this->assertFalse($this->lm->forceRelease('k'));
        $l = $this->lm->createLock('k', 30);
        $l->acquire();
        $this->assertTrue($this->lm->forceRelease('k'));
        $this->assertFalse($this->lm->isLocked('k'));
        $this->assertFalse($l->isAcquired());
        $this->assertFalse($l->release());
    }

    public function testFencingTokensPerName(): void
    {
        $lm = new LockManager($this->dsn(), ['fencing' => true]);
        $a = $lm->createLock('k', 10);
        $this->assertNull($a->fencingToken());
        $a->acquire();
        $t1 = $a->fencingToken();
        $a->release();
        $this->assertNull($a->fencingToken());
        $b = $lm->createLock('k', 10);
        $b->acquire();
        $this->assertGreaterThan($t1, $b->fencingToken());
        $this->assertNull($this->lm->createLock('other')->fencingToken(), 'fencing off');
    }

    /**
     * inspect() tells an operator who holds a lock (another process, named
     * by its pid and host), for how long, who waits, and the last fencing
     * token; read locks by their readers; an owner this extension did not
     * make has no holder.
     */
    public function testInspectShowsTheHolderItsWaitersAndReaders(): void
    {
        $lm = new LockManager($this->dsn(), ['fencing' => true]);
        $this->assertSame(
            ['locked' => false, 'kind' => null, 'owner' => null, 'holder' => null, 'ttl' => null, 'waiters' => 0, 'readers' => 0, 'fencing' => null],
            $lm->inspect('k')
        );
        $dsn = $this->dsn();
        $holder = self::spawn("
            \$l = (new RedisLock\\LockManager('$dsn', ['fencing' => true]))->createLock('k', 10);
            \$l->acquire();
            echo \$l->owner(), ' ', \$l->fencingToken(), \"\\n\";
            fgets(STDIN);");
        [$owner, $fence] = explode(' ', trim((string) fgets($holder['pipes'][1])));
        $waiter = self::spawn("
            (new RedisLock\\LockManager('$dsn'))->createLock('k', 10)->block(10);
            echo \"got it\\n\";");
        $deadline = microtime(true) + 5;
        while ($lm->inspect('k')['waiters'] === 0 && microtime(true) < $deadline) {
            usleep(10_000);
        }
        $seen = $lm->inspect('k');
        $this->assertTrue($seen['locked']);
        $this->assertSame('exclusive', $seen['kind']);
        $this->assertSame($owner, $seen['owner']);
        $pid = proc_get_status($holder['proc'])['pid'];
        $this->assertSame(['host' => self::tokenHost($pid), 'pid' => $pid], $seen['holder']);
        $this->assertGreaterThan(0.0, $seen['ttl']);
        $this->assertLessThanOrEqual(10.0, $seen['ttl']);
        $this->assertSame(1, $seen['waiters']);
        $this->assertSame(0, $seen['readers']);
        $this->assertSame((int) $fence, $seen['fencing']);

        // The holder ends: the waiter has it, and no one waits.
        fwrite($holder['pipes'][0], "go\n");
        $this->assertSame("got it\n", stream_get_contents($waiter['pipes'][1]));
        foreach ([$holder, $waiter] as $p) {
            $this->assertSame(0, proc_close($p['proc']));
        }

        $a = $lm->createLock('r', 10);
        $b = $lm->createLock('r', 10);
        $this->assertTrue($a->acquireRead());
        $this->assertTrue($b->acquireRead());
        $seen = $lm->inspect('r');
        $this->assertSame(['read', null, null, 0, 2], [$seen['kind'], $seen['owner'], $seen['holder'], $seen['waiters'], $seen['readers']]);
        $this->assertTrue($seen['locked']);

        $foreign = $lm->restoreLock('f', 'laravel-owner-1234');
        $this->assertTrue($foreign->acquire());
        $seen = $lm->inspect('f');
        $this->assertSame(['exclusive', 'laravel-owner-1234', null], [$seen['kind'], $seen['owner'], $seen['holder']]);
    }

    /**
     * A php process running $code, with its stdin and stdout as pipes.
     *
     * @return array{proc: resource, pipes: array<int, resource>}
     */
    private static function spawn(string $code): array
    {
        $file = tempnam(sys_get_temp_dir(), 'rl') . '.php';
        file_put_contents($file, "<?php unlink(__FILE__); $code");
        $proc = proc_open([...self::php(), $file], [0 => ['pipe', 'r'], 1 => ['pipe', 'w']], $pipes);
        return ['proc' => $proc, 'pipes' => $pipes];
    }

    public function testStatsCountThisWorkersLocks(): void
    {
        $lm = $this->lm;
        [$stats] = Workers::run(1, function () use ($lm) {
            $before = $lm->stats();
            $a = $lm->createLock('s', 10);
            $b = $lm->createLock('s', 10);
            $a->acquire();
            $b->acquire();                 // conflict
            try {
                $b->block(0.05);           // timeout
            } catch (LockTimeoutException) {
            }
            usleep(20_000);
            $a->release();
            $c = $lm->createLock('t', 0.05);
            $c->acquire();
            usleep(80_000);
            $c->release();                 // expired: lost
            return [$before, $lm->stats()];
        });
        [$before, $after] = $stats;
        $this->assertSame(0, $before['acquired'], 'a forked worker starts from zero');
        $this->assertSame(2, $after['acquired']);
        $this->assertSame(1, $after['conflicts']);
        $this->assertSame(1, $after['timeouts']);
        $this->assertSame(1, $after['releases']);
        $this->assertSame(1, $after['releases_lost']);
        $this->assertSame(2, $after['wait']['count']);
        $this->assertSame(2, $after['hold']['count']);
        $this->assertGreaterThanOrEqual(0.02, $after['hold']['max']);
        foreach (['count', 'mean', 'p50', 'p99', 'max'] as $k) {
            $this->assertArrayHasKey($k, $after['wait']);
            $this->assertArrayHasKey($k, $after['hold']);
        }
        $this->assertLessThanOrEqual($after['hold']['max'], $after['hold']['p50']);
    }
}
