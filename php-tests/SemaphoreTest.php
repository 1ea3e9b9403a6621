<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\LockConflictedException;
use RedisLock\LockException;
use RedisLock\LockManager;
use RedisLock\LockTimeoutException;
use RedisLock\Semaphore;

/**
 * `LockManager::createSemaphore()` with forked php workers on a real Redis:
 * never more than `$limit` holders, waiters served in arrival order, a
 * SIGKILLed holder's permit freed at its TTL, per-kind stats.
 */
final class SemaphoreTest extends TestCase
{
    private const WORKERS = 8;
    private const CYCLES = 25;

    private function permits(string $name): string
    {
        return 'lock:{' . $name . '}:sem:permits';
    }

    private function holders(string $name): int
    {
        return (int) $this->redis->zCount($this->permits($name), '(' . (int) (microtime(true) * 1000), '+inf');
    }

    public function testTheObjectAndItsMethods(): void
    {
        $lm = new LockManager($this->dsn());
        $a = $lm->createSemaphore('s', 2, 10);
        $this->assertInstanceOf(Semaphore::class, $a);
        $this->assertSame('s', $a->name());
        $this->assertSame(2, $a->limit());
        $this->assertMatchesRegularExpression('/^[A-Za-z0-9_-]{22}:\d+@/', $a->owner());
        $this->assertFalse($a->isAcquired());
        $this->assertTrue($a->acquire());
        $this->assertTrue($a->isAcquired());
        $this->assertTrue($a->acquire(), 'acquiring again renews the one permit');
        $this->assertSame(1, $this->holders('s'));
        $b = $lm->createSemaphore('s', 2, 10);
        $c = $lm->createSemaphore('s', 2, 10);
        $this->assertTrue($b->acquire());
        $this->assertFalse($c->acquire(), 'two permits only');
        try {
            $c->block(0);
            $this->fail('no permit was free');
        } catch (LockConflictedException $e) {
            $this->assertNotInstanceOf(LockTimeoutException::class, $e);
            $this->assertStringContainsString('Semaphore "s"', $e->getMessage());
        }
        try {
            $c->block(0.1);
            $this->fail('no permit was free');
        } catch (LockTimeoutException $e) {
            $this->assertStringContainsString('no free permit within 0.1 s', $e->getMessage());
        }
        $this->assertTrue($a->refresh(30));
        $this->assertGreaterThan(25, $a->getRemainingLifetime());
        $this->assertTrue($a->release());
        $this->assertFalse($a->release(), 'released already');
        $this->assertFalse($a->refresh(), 'not held');
        $this->assertNull($a->getRemainingLifetime());
        $this->assertSame('done', $c->block(1, fn () => 'done'));
        $this->assertFalse($c->isAcquired(), 'block with a callback releases');
        unset($b);
        $this->assertSame(0, $this->holders('s'), 'a destroyed Semaphore gives its permit back');
        $this->assertSame([], self::lockKeys($this->redis), 'nothing left but release markers');
    }

    public function testEightWorkersNeverHoldMoreThanTheLimit(): void
    {
        $this->redis->set('inside', '0');
        $this->redis->set('done', '0');
        $results = Workers::run(self::WORKERS, function () {
            $r = self::$server->client();
            $lm = new LockManager(self::$server->dsn());
            $s = $lm->createSemaphore('pool', 3, 10);
            $most = 0;
            for ($i = 0; $i < self::CYCLES; $i++) {
                $s->acquire(true);
                // Shared state changed only while holding a permit.
                $most = max($most, $r->incr('inside'));
                usleep(2000);
                $r->decr('inside');
                $r->incr('done');
                if (!$s->release()) {
                    throw new \RuntimeException('the permit was lost');
                }
            }
            return [$most, $lm->stats()];
        });
        $most = max(array_column($results, 0));
        $this->assertLessThanOrEqual(3, $most, "$most holders at once");
        $this->assertGreaterThanOrEqual(2, $most, 'the workers did overlap');
        $this->assertSame((string) (self::WORKERS * self::CYCLES), $this->redis->get('done'));
        foreach (array_column($results, 1) as $stats) {
            $this->assertSame(self::CYCLES, $stats['semaphore']['acquired']);
            $this->assertSame(self::CYCLES, $stats['semaphore']['releases']);
            $this->assertSame(0, $stats['semaphore']['timeouts']);
            $this->assertSame(0, $stats['acquired'], 'no lock was taken: the figures are per kind');
        }
    }

    public function testWaitersAreServedInArrivalOrder(): void
    {
        $waiters = self::WORKERS - 1;
        Workers::run(self::WORKERS, function (int $i) use ($waiters) {
            $r = self::$server->client();
            $lm = new LockManager(self::$server->dsn());
            $until = function (callable $check) {
                $deadline = microtime(true) + 30;
                while (!$check()) {
                    if (microtime(true) > $deadline) {
                        throw new \RuntimeException('gave up waiting');
                    }
                    usleep(2000);
                }
            };
            $queued = fn () => (int) $r->zCard('lock:{fifo}:sem:waiters');
            $s = $lm->createSemaphore('fifo', 1, 10);
            if ($i === 0) {
                // The holder: keeps the permit until every waiter queued.
                $s->acquire();
                $r->set('held', '1');
                $until(fn () => $queued() === $waiters);
                $s->release();
                return [];
            }
            // Waiter $i queues after waiter $i - 1.
            $until(fn () => $r->get('held') === '1' && $queued() === $i - 1);
            $s->block(30);
            $r->rPush('served', (string) $i);
            usleep(5000);
            $s->release();
            return [];
        });
        $this->assertSame(array_map('strval', range(1, $waiters)), $this->redis->lRange('served', 0, -1));
    }

    public function testAKilledHolderFreesItsPermitAtItsTtl(): void
    {
        $lm = new LockManager($this->dsn());
        $pid = pcntl_fork();
        if ($pid === 0) {
            $s = (new LockManager(self::$server->dsn()))->createSemaphore('killed', 1, 1.5);
            $s->acquire();
            self::$server->client()->set('holding', '1');
            sleep(60);
            exit(0);
        }
        $deadline = microtime(true) + 10;
        while ($this->redis->get('holding') !== '1' && microtime(true) < $deadline) {
            usleep(5000);
        }
        $this->assertSame('1', $this->redis->get('holding'));
        posix_kill($pid, SIGKILL);
        pcntl_waitpid($pid, $status);
        $this->assertTrue(pcntl_wifsignaled($status));

        $s = $lm->createSemaphore('killed', 1, 10);
        $this->assertFalse($s->acquire(), 'the dead holder still holds until its TTL');
        $this->assertTrue($s->block(10), 'and its permit is free at its TTL');
        $this->assertSame(1, $this->holders('killed'));
        $this->assertSame([$s->owner()], $this->redis->zRange($this->permits('killed'), 0, -1));
    }

    public function testAForkedChildNeverReleasesItsParentsPermit(): void
    {
        $lm = new LockManager($this->dsn());
        $s = $lm->createSemaphore('parent', 1, 10);
        $this->assertTrue($s->acquire());
        Workers::run(1, function () use ($s) {
            // The child's copy of $s is destroyed at its exit, and its
            // request shutdown runs: neither gives the parent's permit back.
            return [];
        });
        $this->assertTrue($s->isAcquired());
        $this->assertSame(1, $this->holders('parent'));
    }

    public function testPermitsAreReleasedAtRequestEnd(): void
    {
        [$code, , $err] = self::runPhp(sprintf(
            '<?php $lm = new RedisLock\LockManager(%s);
            $kept = $lm->createSemaphore("end", 3, 30);
            $kept->acquire();
            $GLOBALS["kept"] = $kept;
            $manual = $lm->createSemaphore("end", 3, 30, false);
            $manual->acquire();
            $GLOBALS["manual"] = $manual;
            trigger_error("fatal", E_USER_ERROR);',
            var_export($this->dsn(), true)
        ));
        $this->assertSame(255, $code, $err);
        $this->assertSame(1, $this->holders('end'), 'only the autoRelease=false permit stays, until its TTL');
    }

    public function testStatsCountPermitsApartFromLocks(): void
    {
        $lm = new LockManager($this->dsn());
        [$stats] = Workers::run(1, function () use ($lm) {
            $before = $lm->stats();
            $a = $lm->createSemaphore('st', 1, 10);
            $b = $lm->createSemaphore('st', 1, 10);
            $a->acquire();
            $b->acquire();                 // conflict
            try {
                $b->block(0.05);           // timeout
            } catch (LockTimeoutException) {
            }
            usleep(20_000);
            $a->release();
            $c = $lm->createSemaphore('st2', 1, 0.05);
            $c->acquire();
            usleep(80_000);
            $c->release();                 // expired: lost
            $lock = $lm->createLock('st', 10);
            $lock->acquire();
            $lock->release();
            return [$before, $lm->stats()];
        });
        [$before, $after] = $stats;
        $this->assertSame(0, $before['semaphore']['acquired'], 'a forked worker starts from zero');
        $sem = $after['semaphore'];
        $this->assertSame(
            [2, 1, 1, 1, 1],
            [$sem['acquired'], $sem['conflicts'], $sem['timeouts'], $sem['releases'], $sem['releases_lost']]
        );
        $this->assertSame(2, $sem['wait']['count']);
        $this->assertSame(2, $sem['hold']['count']);
        $this->assertGreaterThanOrEqual(0.02, $sem['hold']['max']);
        $this->assertSame(
            [1, 0, 0, 1, 0],
            [$after['acquired'], $after['conflicts'], $after['timeouts'], $after['releases'], $after['releases_lost']],
            'the lock is counted at the top level only'
        );
    }

    public function testRedlockRefusesSemaphores(): void
    {
        $lm = new LockManager([$this->dsn(), 'redis://127.0.0.1:1', 'redis://127.0.0.1:2']);
        $this->expectException(LockException::class);
        $this->expectExceptionMessage('semaphores are not supported with Redlock');
        $lm->createSemaphore('s', 2);
    }

    public function testFailOpenGrantsPermitsWithoutRedis(): void
    {
        [$code, $out, $err] = self::runPhp(
            '<?php $lm = new RedisLock\LockManager("redis://127.0.0.1:1", ["on_unavailable" => "open", "connect_timeout" => 0.2]);
            $s = $lm->createSemaphore("x", 1);
            var_export([$s->acquire(), $s->isAcquired(), $s->refresh(), $s->release()]);'
        );
        $this->assertSame(0, $code, $err);
        $this->assertSame('array ( 0 => true, 1 => true, 2 => true, 3 => true, )', preg_replace('/\s+/', ' ', $out));
        $this->assertStringContainsString('on_unavailable=open', $err);
    }
}
