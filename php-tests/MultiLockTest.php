<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use PHPUnit\Framework\Attributes\DataProvider;
use RedisLock\LockManager;
use RedisLock\LockTimeoutException;

/**
 * MultiLock: several names all or none; plain locks and multi-locks exclude
 * each other; no deadlock between callers naming the same locks in other
 * orders (forked workers); woken by the release of the name it waits for;
 * a killed holder's locks end at their TTL; bad input refused before Redis.
 */
final class MultiLockTest extends TestCase
{
    public function testAllOrNone(): void
    {
        $lm = new LockManager($this->dsn());
        $before = $lm->stats()['multi'];
        $multi = $lm->createMultiLock(['b', 'a', 'c'], 5);
        $this->assertSame(['a', 'b', 'c'], $multi->names());
        $this->assertTrue($multi->acquire());
        foreach (['a', 'b', 'c'] as $name) {
            $this->assertSame($multi->owner(), $this->storedToken($name));
        }
        $this->assertTrue($multi->isAcquired());
        $this->assertGreaterThan(4.0, $multi->getRemainingLifetime());
        $this->assertTrue($multi->refresh(20));
        $this->assertGreaterThan(19.0, $multi->getRemainingLifetime());
        $plainB = $lm->createLock('b');
        $this->assertFalse($plainB->acquire(), 'a name held by a MultiLock blocks a plain Lock');
        $other = $lm->createMultiLock(['c', 'd'], 5);
        $this->assertFalse($other->acquire());
        $this->assertSame(0, $this->redis->exists('lock:{d}'), 'a failed MultiLock holds none of its names');
        $this->assertTrue($multi->release());
        $this->assertFalse($multi->isAcquired());
        $this->assertSame([], self::lockKeys($this->redis, 'lock:*'));
        $plain = $lm->createLock('d', 5);
        $this->assertTrue($plain->acquire());
        $this->assertFalse($other->acquire(), 'a plain Lock blocks a MultiLock');
        $this->assertSame(0, $this->redis->exists('lock:{c}'), 'the name it did get was given back');
        $this->assertTrue($plain->release());
        $this->assertTrue($other->acquire());
        $this->assertTrue($other->release());
        // The process's figures: this test's share is the difference.
        $stats = $lm->stats()['multi'];
        $this->assertSame(2, $stats['acquired'] - $before['acquired']);
        $this->assertSame(2, $stats['conflicts'] - $before['conflicts']);
        $this->assertSame(2, $stats['releases'] - $before['releases']);
    }

    public function testABlockingMultiLockIsWokenWhenTheLastNameItNeedsIsFreed(): void
    {
        $lm = new LockManager($this->dsn());
        $b = $lm->createLock('b', 10);
        $this->assertTrue($b->acquire());
        $dsn = $this->dsn();
        $file = tempnam(sys_get_temp_dir(), 'rl') . '.php';
        file_put_contents($file, "<?php
            \$lm = new RedisLock\\LockManager('$dsn');
            \$m = \$lm->createMultiLock(['a', 'b'], 10);
            \$t = microtime(true);
            \$ok = \$m->acquire(true);
            echo json_encode([\$ok, microtime(true) - \$t, \$m->isAcquired()]);
            \$m->release();");
        $proc = proc_open([...self::php(), $file], [1 => ['pipe', 'w']], $pipes);
        $deadline = microtime(true) + 5;
        while ($this->redis->zCard('lock:{b}:waiters') === 0 && microtime(true) < $deadline) {
            usleep(10_000);
        }
        $this->assertSame(0, $this->redis->exists('lock:{a}'), 'it waits holding nothing');
        usleep(300_000);
        $this->assertTrue($b->release());
        [$ok, $waited, $held] = json_decode((string) stream_get_contents($pipes[1]), true);
        proc_close($proc);
        unlink($file);
        $this->assertTrue($ok);
        $this->assertTrue($held);
        $this->assertGreaterThan(0.25, $waited);
        $this->assertLessThan(2.0, $waited, 'woken by the release, not by a poll');
    }

    /**
     * Eight forked workers take three of four names each, in their own order,
     * blocking, and add one to a counter per name inside: every count exact,
     * and all finish (no deadlock).
     */
    public function testEightWorkersInDifferentOrdersNeverDeadlockAndCountExactly(): void
    {
        $dsn = $this->dsn();
        $port = self::$server->port;
        $all = ['w', 'x', 'y', 'z'];
        $results = Workers::run(8, function (int $w) use ($dsn, $port, $all) {
            $redis = new \Redis();
            $redis->connect('127.0.0.1', $port);
            $lm = new LockManager($dsn);
            $mine = [];
            for ($i = 0; $i < 40; $i++) {
                $names = $all;
                unset($names[($i + $w) % 4]);
                $names = array_values($names);
                if ($w % 2) {
                    $names = array_reverse($names);
                }
                $multi = $lm->createMultiLock($names, 5);
                $multi->block(30);
                foreach ($names as $name) {
                    $v = (int) $redis->get("n:$name");
                    $redis->set("n:$name", (string) ($v + 1));
                    $mine[$name] = ($mine[$name] ?? 0) + 1;
                }
                $multi->release();
            }
            return [$mine];
        });
        $expected = [];
        foreach ($results as [$mine]) {
            foreach ($mine as $name => $n) {
                $expected[$name] = ($expected[$name] ?? 0) + $n;
            }
        }
        foreach ($all as $name) {
            $this->assertSame((string) $expected[$name], $this->redis->get("n:$name"), "count of $name");
        }
        $this->assertSame(8 * 40 * 3, array_sum($expected));
        $this->assertSame([], self::lockKeys($this->redis, 'lock:{*}'));
    }

    /** Multi-locks queued on a held name enter in their arrival order. */
    public function testWaitersAreServedInArrivalOrder(): void
    {
        $lm = new LockManager($this->dsn());
        $holder = $lm->createLock('a', 10);
        $this->assertTrue($holder->acquire());
        $dsn = $this->dsn();
        $port = self::$server->port;
        $procs = [];
        foreach (['m1', 'm2', 'm3'] as $i => $who) {
            $file = tempnam(sys_get_temp_dir(), 'rl') . '.php';
            file_put_contents($file, "<?php
                \$lm = new RedisLock\\LockManager('$dsn');
                \$r = new Redis(); \$r->connect('127.0.0.1', $port);
                \$m = \$lm->createMultiLock(['b', 'a'], 10);
                \$m->acquire(true);
                \$r->rPush('entered', '$who');
                usleep(100000);
                \$m->release();");
            $procs[] = proc_open([...self::php(), $file], [], $pipes);
            $deadline = microtime(true) + 5;
            while ($this->redis->zCard('lock:{a}:waiters') < $i + 1 && microtime(true) < $deadline) {
                usleep(10_000);
            }
        }
        $this->assertTrue($holder->release());
        foreach ($procs as $proc) {
            proc_close($proc);
        }
        $this->assertSame(['m1', 'm2', 'm3'], $this->redis->lRange('entered', 0, -1));
    }

    public function testAKilledHoldersLocksEndAtTheirTtl(): void
    {
        $dsn = $this->dsn();
        [$code, $out, $err] = self::runPhp("<?php
            \$lm = new RedisLock\\LockManager('$dsn');
            \$m = \$lm->createMultiLock(['a', 'b'], 1);
            \$m->acquire() or exit(3);
            echo 'held';
            posix_kill(getmypid(), SIGKILL);");
        $this->assertSame('held', $out, $err);
        $this->assertSame(1, $this->redis->exists('lock:{a}'), 'no request end ran');
        $lm = new LockManager($dsn);
        $start = microtime(true);
        $this->assertTrue($lm->createMultiLock(['b', 'a'])->block(5));
        $this->assertLessThan(3.0, microtime(true) - $start);
    }

    public function testABoundedWaitThrowsWhenNotAllAreFree(): void
    {
        $lm = new LockManager($this->dsn());
        $held = $lm->createLock('a', 10);
        $this->assertTrue($held->acquire());
        $this->expectException(LockTimeoutException::class);
        $lm->createMultiLock(['a', 'b'])->block(0.2);
    }

    public static function badNames(): array
    {
        return [
            'not an array' => ['a', \TypeError::class, 'Argument #1 ($names) must be of type array, string given'],
            'empty' => [[], \ValueError::class, 'Argument #1 ($names) must not be empty'],
            'a non-string' => [['a', 7], \TypeError::class, 'must contain only strings, int given at key 1'],
            'an empty name' => [['a', ''], \ValueError::class, 'must not contain an empty name'],
            'too long' => [['a', str_repeat('n', 1025)], \ValueError::class, 'longer than 1024 bytes'],
            'twice' => [['a', 'b', 'a'], \ValueError::class, 'must not contain a name twice ("a")'],
        ];
    }

    /**
     * @dataProvider badNames
     */
    #[DataProvider('badNames')]
    public function testBadNamesAreRefusedBeforeRedis(mixed $names, string $class, string $message): void
    {
        $this->redis->rawCommand('CONFIG', 'RESETSTAT');
        $lm = new LockManager($this->dsn());
        try {
            $lm->createMultiLock($names);
            $this->fail('accepted ' . json_encode($names));
        } catch (\Throwable $e) {
            $this->assertInstanceOf($class, $e, $e->getMessage());
            $this->assertStringContainsString($message, $e->getMessage());
        }
        $calls = array_filter(
            $this->redis->info('commandstats'),
            fn ($k) => !preg_match('/^cmdstat_(config|info)\b/', $k),
            ARRAY_FILTER_USE_KEY
        );
        $this->assertSame([], $calls, 'no command reached Redis');
    }
}
