<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\LockConflictedException;
use RedisLock\LockManager;
use RedisLock\RedisMutex;

/**
 * 8 forked workers x 200 cycles of a non-atomic GET-then-SET increment of one
 * counter. Under each locking API the counter must end exact.
 */
final class ConcurrencyTest extends TestCase
{
    private const WORKERS = 8;
    private const CYCLES = 200;

    /** The read-modify-write that loses updates when unprotected. */
    private static function increment(\Redis $redis): void
    {
        $value = (int) $redis->get('counter');
        usleep(random_int(0, 100));
        $redis->set('counter', (string) ($value + 1));
    }

    private function assertExact(array $results): void
    {
        $this->assertSame(self::WORKERS * self::CYCLES, (int) $this->redis->get('counter'));
        $this->assertSame(self::WORKERS * self::CYCLES, array_sum(array_column($results, 0)));
        $this->assertSame(0, $this->redis->exists('lock:{counter}'), 'no lock left behind');
    }

    public function testTheUnprotectedIncrementReallyLosesUpdates(): void
    {
        // The control: proves the workload races, so the exact totals below mean something.
        $this->redis->set('counter', '0');
        Workers::run(self::WORKERS, function () {
            $r = self::$server->client();
            for ($i = 0; $i < self::CYCLES; $i++) {
                self::increment($r);
            }
            return [self::CYCLES];
        });
        $this->assertLessThan(self::WORKERS * self::CYCLES, (int) $this->redis->get('counter'));
    }

    public function testRedisMutexSynchronizedIsExact(): void
    {
        $this->redis->set('counter', '0');
        $results = Workers::run(self::WORKERS, function () {
            $r = self::$server->client();
            $m = new RedisMutex(self::$server->dsn());
            for ($i = 0; $i < self::CYCLES; $i++) {
                $m->synchronized('counter', fn () => self::increment($r), 5, 30);
            }
            return [self::CYCLES];
        });
        $this->assertExact($results);
    }

    public function testExecuteWithLockRetryingOnConflictIsExact(): void
    {
        $this->redis->set('counter', '0');
        $results = Workers::run(self::WORKERS, function () {
            $r = self::$server->client();
            $lm = new LockManager(self::$server->dsn());
            $done = 0;
            $conflicts = 0;
            while ($done < self::CYCLES) {
                try {
                    $lm->executeWithLock('counter', fn () => self::increment($r), 5);
                    $done++;
                } catch (LockConflictedException) {
                    $conflicts++;
                    usleep(random_int(50, 500));
                }
            }
            return [$done, $conflicts];
        });
        $this->assertExact($results);
        $this->assertGreaterThan(0, array_sum(array_column($results, 1)), 'the workers did contend');
    }

    public function testWaitAndExecuteIsExact(): void
    {
        $this->redis->set('counter', '0');
        $results = Workers::run(self::WORKERS, function () {
            $r = self::$server->client();
            $lm = new LockManager(self::$server->dsn());
            for ($i = 0; $i < self::CYCLES; $i++) {
                $lm->waitAndExecute('counter', fn () => self::increment($r), 30, 5);
            }
            return [self::CYCLES, $lm->stats()];
        });
        $this->assertExact($results);
        foreach ($results as [, $stats]) {
            $this->assertSame(self::CYCLES, $stats['acquired']);
            $this->assertSame(0, $stats['timeouts']);
        }
    }

    public function testFencingTokensFollowTheOrderOfHolds(): void
    {
        $this->redis->del('fence-log');
        Workers::run(self::WORKERS, function () {
            $r = self::$server->client();
            $m = new RedisMutex(self::$server->dsn(), ['fencing' => true]);
            for ($i = 0; $i < 50; $i++) {
                $m->synchronized('fenced', fn () => $r->rPush('fence-log', (string) $m->fencingToken('fenced')), 5, 30);
            }
            return [];
        });
        $log = array_map('intval', $this->redis->lRange('fence-log', 0, -1));
        $this->assertCount(self::WORKERS * 50, $log);
        $sorted = $log;
        sort($sorted);
        $this->assertSame($sorted, $log, 'tokens strictly increase in the order locks were held');
        $this->assertSame(count($log), count(array_unique($log)));
    }
}
