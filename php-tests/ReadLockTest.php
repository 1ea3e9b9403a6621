<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\LockException;
use RedisLock\LockManager;
use RedisLock\Symfony\RedisLockStore;
use Symfony\Component\Lock\Exception\LockConflictedException;
use Symfony\Component\Lock\Key;
use Symfony\Component\Lock\LockFactory;
use Symfony\Component\Lock\Store\RedisStore;

/**
 * Read locks (`Lock::acquireRead`): many readers or one writer, checked by
 * forked workers through shared state in Redis; arrival order; a killed
 * reader freed at its TTL; the Symfony store's shared locks side by side
 * with Symfony's own RedisStore.
 */
final class ReadLockTest extends TestCase
{
    public static function setUpBeforeClass(): void
    {
        require_once '/usr/share/php/Symfony/Component/Lock/autoload.php';
    }

    public function testManyReadersOrOneWriter(): void
    {
        $lm = new LockManager($this->dsn());
        [$r1, $r2, $w] = [$lm->createLock('doc', 5), $lm->createLock('doc', 5), $lm->createLock('doc', 5)];
        $this->assertTrue($r1->acquireRead());
        $this->assertTrue($r2->acquireRead());
        $this->assertTrue($lm->isLocked('doc'));
        $this->assertFalse($w->acquire(), 'a writer waits for the readers');
        $this->assertTrue($r1->isAcquired());
        $this->assertFalse($w->isAcquired());
        $left = $r1->getRemainingLifetime();
        $this->assertGreaterThan(4.0, $left);
        $this->assertTrue($r1->refresh(20));
        $this->assertGreaterThan(19.0, $r1->getRemainingLifetime());
        $this->assertTrue($r1->release());
        $this->assertFalse($r1->isAcquired());
        $this->assertFalse($w->acquire(), 'one reader still holds it');
        $this->assertTrue($r2->release());
        $this->assertFalse($lm->isLocked('doc'), 'the last reader frees it');
        $this->assertTrue($w->acquire());
        $this->assertFalse($r1->acquireRead(), 'no reader beside a writer');
        $this->assertTrue($w->release());
        // A restored reader is released by its owner token.
        $this->assertTrue($r1->acquireRead());
        $restored = $lm->restoreLock('doc', $r1->owner());
        $this->assertTrue($restored->isAcquired());
        $this->assertTrue($restored->release());
        $this->assertFalse($lm->isLocked('doc'));
    }

    public function testTheOnlyReaderIsPromotedAndAWriterDemoted(): void
    {
        $lm = new LockManager($this->dsn());
        [$lock, $other] = [$lm->createLock('doc', 5), $lm->createLock('doc', 5)];
        $this->assertTrue($lock->acquireRead());
        $this->assertTrue($lock->acquireRead(), 'a reader taking it again renews its hold');
        $this->assertTrue($lock->acquire(), 'the only reader is promoted');
        $this->assertFalse($other->acquireRead(), 'a writer now: no reader beside it');
        $this->assertTrue($lock->acquireRead(), 'the writer is demoted');
        $this->assertTrue($other->acquireRead(), 'readers come in beside it');
        $this->assertFalse($lock->acquire(), 'another reader holds it: no promotion');
        $this->assertTrue($lock->isAcquired(), 'the read lock is kept');
        $this->assertTrue($other->release());
        $this->assertTrue($lock->acquire(), 'the only reader again: promoted');
        $this->assertTrue($lock->release());
        $this->assertFalse($lm->isLocked('doc'));
    }

    public function testABlockingPromotionWaitsForTheOtherReadersAheadOfTheQueue(): void
    {
        $lm = new LockManager($this->dsn());
        [$lock, $other] = [$lm->createLock('doc', 10), $lm->createLock('doc', 10)];
        $this->assertTrue($lock->acquireRead());
        $this->assertTrue($other->acquireRead());
        $dsn = $this->dsn();
        // Another process releases its read lock 0.3 s from now.
        $proc = self::spawn("<?php
            \$lm = new RedisLock\\LockManager('$dsn');
            \$r = \$lm->restoreLock('doc', '{$other->owner()}');
            usleep(300000);
            echo json_encode(\$r->release());");
        $t = microtime(true);
        $this->assertTrue($lock->acquire(true), 'promoted once the other reader left');
        $waited = microtime(true) - $t;
        $out = stream_get_contents(self::$pipes[(int) $proc]);
        proc_close($proc);
        $this->assertSame('true', $out);
        $this->assertLessThan(2.0, $waited, 'woken by the release, not by its TTL');
        $this->assertFalse($other->acquireRead());
        $this->assertTrue($lock->release());
    }

    public function testReadersAreReleasedAtRequestEnd(): void
    {
        $dsn = $this->dsn();
        [$code, $out, $err] = self::runPhp("<?php
            \$lm = new RedisLock\\LockManager('$dsn');
            \$keep = \$lm->createLock('doc', 30);
            \$keep->acquireRead() or exit(3);
            echo 'held';
            trigger_error('fatal', E_USER_ERROR);");
        $this->assertSame('held', $out, $err);
        $this->assertSame(0, $this->redis->exists('lock:{doc}'), 'freed although the request died in a fatal error');
    }

    /**
     * Eight forked workers, each mostly a reader and sometimes a writer, on one
     * name: inside the lock a worker counts itself in and out of Redis
     * counters; a writer must find itself alone, a reader no writer. Readers
     * must overlap at least once.
     */
    public function testEightForkedWorkersNeverSeeAWriterWithAnyone(): void
    {
        $dsn = $this->dsn();
        $port = self::$server->port;
        $results = Workers::run(8, function (int $w) use ($dsn, $port) {
            $redis = new \Redis();
            $redis->connect('127.0.0.1', $port);
            $lm = new LockManager($dsn);
            $violations = 0;
            $overlaps = 0;
            for ($i = 0; $i < 60; $i++) {
                $write = ($i + $w) % 10 === 0;
                $lock = $lm->createLock('doc', 5);
                $write ? $lock->acquire(true) : $lock->acquireRead(true);
                $inside = $redis->incr('inside');
                if ($write) {
                    $violations += $redis->incr('writers') === 1 && $inside === 1 ? 0 : 1;
                    $redis->incr('writes');
                } else {
                    $violations += (int) $redis->get('writers') === 0 ? 0 : 1;
                    $overlaps += $inside > 1 ? 1 : 0;
                }
                usleep(300);
                if ($write) {
                    $redis->decr('writers');
                }
                $redis->decr('inside');
                $lock->release() or $violations++;
            }
            return [$violations, $overlaps, $lm->stats()];
        });
        $this->assertSame([0], array_values(array_unique(array_column($results, 0))), 'no writer ever saw anyone inside');
        $this->assertGreaterThan(0, array_sum(array_column($results, 1)), 'readers shared the lock');
        $this->assertSame('48', $this->redis->get('writes'), 'every write ran');
        foreach ($results as [, , $stats]) {
            $this->assertSame(60, $stats['acquired']);
            $this->assertSame(54, $stats['read_acquired']);
        }
        $this->assertSame([], self::lockKeys($this->redis, 'lock:*'), 'nothing left behind');
    }

    /**
     * Arrival order: a writer holds; then a writer, two readers and a writer
     * queue in that order. They enter as: the writer, the two readers
     * together, the last writer.
     */
    public function testWaitersAreServedInArrivalOrderReadersTogether(): void
    {
        $lm = new LockManager($this->dsn());
        $holder = $lm->createLock('doc', 10);
        $this->assertTrue($holder->acquire());
        $dsn = $this->dsn();
        $pids = [];
        foreach (['w1', 'r1', 'r2', 'w2'] as $i => $who) {
            $read = $who[0] === 'r' ? 'true' : 'false';
            $pids[] = self::spawn("<?php
                \$lm = new RedisLock\\LockManager('$dsn');
                \$r = new Redis(); \$r->connect('127.0.0.1', " . self::$server->port . ");
                \$lock = \$lm->createLock('doc', 10);
                $read ? \$lock->acquireRead(true) : \$lock->acquire(true);
                \$r->rPush('entered', '$who:' . \$r->lLen('left'));
                usleep(200000);
                \$r->rPush('left', '$who');
                \$lock->release();");
            $this->waitFor(fn () => $this->redis->zCard('lock:{doc}:waiters') === $i + 1, "$who queued");
        }
        $this->assertTrue($holder->release());
        foreach ($pids as $proc) {
            proc_close($proc);
        }
        // Each entry: who entered, and how many had left before it did.
        $entered = $this->redis->lRange('entered', 0, -1);
        $this->assertSame('w1:0', $entered[0]);
        $this->assertEqualsCanonicalizing(['r1:1', 'r2:1'], array_slice($entered, 1, 2), 'both readers entered together, after the first writer');
        $this->assertSame('w2:3', $entered[3], 'the last writer entered after both readers left');
    }

    public function testAKilledReaderFreesTheLockAtItsTtl(): void
    {
        $dsn = $this->dsn();
        $proc = self::spawn("<?php
            \$lm = new RedisLock\\LockManager('$dsn');
            \$lock = \$lm->createLock('doc', 1);
            \$lock->acquireRead() or exit(3);
            echo 'held';
            sleep(60);");
        $this->waitFor(fn () => $this->redis->zCard('lock:{doc}:readers') === 1, 'the reader holds it');
        $status = proc_get_status($proc);
        posix_kill($status['pid'], SIGKILL);
        proc_close($proc);
        $lm = new LockManager($dsn);
        $start = microtime(true);
        $this->assertTrue($lm->createLock('doc', 5)->acquire(true), 'the writer gets it once the reader TTL ends');
        $this->assertLessThan(3.0, microtime(true) - $start);
    }

    public function testReadLocksAreRefusedWithRedlock(): void
    {
        $lm = new LockManager([$this->dsn()]);
        try {
            $lm->createLock('doc')->acquireRead();
            $this->fail('a read lock over Redlock');
        } catch (LockException $e) {
            $this->assertStringContainsString('read locks are not supported with Redlock', $e->getMessage());
        }
    }

    /**
     * The Symfony store's read locks, and Symfony's own RedisStore's, in the
     * same scenario through a LockFactory.
     */
    public function testSymfonySharedLocksBehaveAsSymfonysRedisStore(): void
    {
        $stores = ['redis_lock' => new RedisLockStore($this->dsn()), 'symfony RedisStore' => new RedisStore(self::$server->client())];
        $seen = [];
        foreach ($stores as $name => $store) {
            $factory = new LockFactory($store);
            $r1 = $factory->createLock("shared-$name", 10);
            $r2 = $factory->createLock("shared-$name", 10);
            $w = $factory->createLock("shared-$name", 10);
            $steps = [];
            $steps[] = $r1->acquireRead();
            $steps[] = $r2->acquireRead();
            $steps[] = $w->acquire();
            $steps[] = $r1->isAcquired();
            $r1->release();
            $steps[] = $w->acquire();
            $r2->release();
            $steps[] = $w->acquire();
            $steps[] = $r1->acquireRead();
            $w->release();
            $steps[] = $r1->acquireRead();
            $steps[] = $w->isAcquired();
            $r1->release();
            $seen[$name] = $steps;
        }
        $this->assertSame([true, true, false, true, false, true, false, true, false], $seen['redis_lock']);
        $this->assertSame($seen['symfony RedisStore'], $seen['redis_lock']);
    }

    public function testSymfonyBlockingReadIsWokenByTheWritersRelease(): void
    {
        $factory = new LockFactory(new RedisLockStore($this->dsn()));
        $writer = $factory->createLock('shared', 10);
        $this->assertTrue($writer->acquire());
        $dsn = $this->dsn();
        $proc = self::spawn("<?php
            require '/usr/share/php/Symfony/Component/Lock/autoload.php';
            require '" . __DIR__ . "/../php/autoload.php';
            \$f = new Symfony\\Component\\Lock\\LockFactory(new RedisLock\\Symfony\\RedisLockStore('$dsn'));
            \$l = \$f->createLock('shared', 10);
            \$t = microtime(true);
            \$l->acquireRead(true);
            echo json_encode([\$l->isAcquired(), microtime(true) - \$t]);");
        $this->waitFor(fn () => $this->redis->zCard('lock:{shared}:waiters') === 1, 'the reader waits');
        usleep(300_000);
        $writer->release();
        $out = stream_get_contents(self::$pipes[(int) $proc]);
        proc_close($proc);
        [$held, $waited] = json_decode((string) $out, true);
        $this->assertTrue($held);
        $this->assertLessThan(2.0, $waited, 'woken by the release, not by a poll');
        $this->assertGreaterThan(0.25, $waited);
    }

    /**
     * The shared-lock scenarios of Symfony's own store tests (its
     * SharedLockStoreTestTrait: read first, write first, promotion refused and
     * allowed, demotion), on our store and on Symfony's RedisStore side by
     * side: same outcomes, step by step.
     */
    public function testSymfonysSharedLockStoreScenariosAsWithItsRedisStore(): void
    {
        $scenarios = [
            'read first' => [['read', 1], ['read', 2], ['write', 3], ['delete', 1], ['delete', 2], ['write', 3], ['delete', 3]],
            'write first' => [['write', 1], ['read', 2], ['delete', 1], ['write', 2], ['delete', 2]],
            'promotion refused' => [['read', 1], ['read', 2], ['write', 1]],
            'promotion allowed' => [['read', 1], ['write', 1], ['read', 2], ['delete', 1], ['read', 2]],
            'demotion' => [['write', 1], ['read', 1], ['read', 2]],
        ];
        $seen = [];
        foreach (['redis_lock' => new RedisLockStore($this->dsn()), 'symfony RedisStore' => new RedisStore(self::$server->client())] as $name => $store) {
            foreach ($scenarios as $scenario => $steps) {
                $keys = [1 => new Key("$name $scenario"), 2 => new Key("$name $scenario"), 3 => new Key("$name $scenario")];
                foreach ($steps as [$step, $k]) {
                    try {
                        match ($step) {
                            'read' => $store->saveRead($keys[$k]),
                            'write' => $store->save($keys[$k]),
                            'delete' => $store->delete($keys[$k]),
                        };
                        $outcome = 'ok';
                    } catch (LockConflictedException) {
                        $outcome = 'conflict';
                    }
                    $exists = array_map(fn (Key $key) => $store->exists($key) ? 1 : 0, $keys);
                    $seen[$name][$scenario][] = "$step $k: $outcome, held " . implode('', $exists);
                }
                foreach ($keys as $key) {
                    $store->delete($key);
                }
            }
        }
        $this->assertSame($seen['symfony RedisStore'], $seen['redis_lock']);
        $this->assertSame([
            'read 1: ok, held 100', 'write 1: ok, held 100', 'read 2: conflict, held 100',
            'delete 1: ok, held 000', 'read 2: ok, held 010',
        ], $seen['redis_lock']['promotion allowed']);
        $this->assertSame(['write 1: ok, held 100', 'read 1: ok, held 100', 'read 2: ok, held 110'], $seen['redis_lock']['demotion']);
    }

    public function testSymfonysLockPromotesAndDemotes(): void
    {
        $factory = new LockFactory(new RedisLockStore($this->dsn()));
        $lock = $factory->createLock('shared', 10);
        $reader = $factory->createLock('shared', 10);
        $this->assertTrue($lock->acquireRead());
        $this->assertTrue($lock->acquire(), 'promoted: the only reader');
        $this->assertFalse($reader->acquireRead());
        $this->assertTrue($lock->acquireRead(), 'demoted');
        $this->assertTrue($reader->acquireRead());
        $this->assertFalse($lock->acquire(), 'not the only reader');
        $reader->release();
        $lock->release();
        $this->assertSame(0, $this->redis->exists('lock:{shared}'));
    }

    /** @var array<int, resource> stdout pipes of spawned processes, by process */
    private static array $pipes = [];

    /** Starts PHP code in a php process with the extension; returns its process. */
    private static function spawn(string $code)
    {
        $file = tempnam(sys_get_temp_dir(), 'rl') . '.php';
        file_put_contents($file, $code);
        $proc = proc_open([...self::php(), $file],
            [1 => ['pipe', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
        self::$pipes[(int) $proc] = $pipes[1];
        return $proc;
    }

    private function waitFor(callable $check, string $what): void
    {
        $deadline = microtime(true) + 5;
        while (!$check()) {
            if (microtime(true) > $deadline) {
                $this->fail("timed out waiting until: $what");
            }
            usleep(10_000);
        }
    }
}
