<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\LockManager;

/**
 * A three-master Redis (or Valkey) Cluster on loopback, reached through a
 * `redis-cluster://` DSN: forked workers increment counters on locks spread
 * over all masters, and the counters end exact.
 */
final class ClusterTest extends \PHPUnit\Framework\TestCase
{
    private const WORKERS = 6;
    private const CYCLES = 100;

    /** @var list<RedisServer> */
    private static array $nodes = [];

    public static function setUpBeforeClass(): void
    {
        self::$nodes = RedisServer::startCluster(3);
    }

    public static function tearDownAfterClass(): void
    {
        foreach (self::$nodes as $node) {
            $node->stop();
        }
        self::$nodes = [];
    }

    private static function seeds(): array
    {
        return array_map(fn (RedisServer $n) => "127.0.0.1:{$n->port}", self::$nodes);
    }

    private static function dsn(): string
    {
        return 'redis-cluster://' . implode(',', self::seeds());
    }

    private static function counters(): \RedisCluster
    {
        return new \RedisCluster(null, self::seeds(), 2.0, 2.0);
    }

    /**
     * inspect() on a cluster: the holder's pid and host, a waiter in
     * another process while it waits, the fencing token; readers of a read
     * lock. Six names, spread over the masters.
     */
    public function testInspectShowsTheHolderAndItsWaitersOnEveryMaster(): void
    {
        $lm = new LockManager(self::dsn(), ['fencing' => true]);
        foreach (['i1', 'i2', 'i3', 'i4', 'i5', 'i6'] as $name) {
            $lock = $lm->createLock($name, 10);
            $this->assertTrue($lock->acquire());
            $pid = pcntl_fork();
            if ($pid === 0) {
                $code = 1;
                try {
                    $code = (new LockManager(self::dsn()))->createLock($name, 10)->block(10) ? 0 : 1;
                } finally {
                    while (ob_get_level() > 0) {
                        ob_end_clean();
                    }
                    exit($code);
                }
            }
            $deadline = microtime(true) + 5;
            while ($lm->inspect($name)['waiters'] === 0 && microtime(true) < $deadline) {
                usleep(10_000);
            }
            $seen = $lm->inspect($name);
            $this->assertSame(
                [true, 'exclusive', $lock->owner(), ['host' => TestCase::tokenHost(getmypid()), 'pid' => getmypid()], 1, 0, $lock->fencingToken()],
                [$seen['locked'], $seen['kind'], $seen['owner'], $seen['holder'], $seen['waiters'], $seen['readers'], $seen['fencing']],
                $name
            );
            $this->assertTrue($lock->release());
            pcntl_waitpid($pid, $status);
            $this->assertSame(0, pcntl_wexitstatus($status), "the waiter got $name");
        }
        $a = $lm->createLock('r', 10);
        $b = $lm->createLock('r', 10);
        $this->assertTrue($a->acquireRead());
        $this->assertTrue($b->acquireRead());
        $seen = $lm->inspect('r');
        $this->assertSame(['read', 2], [$seen['kind'], $seen['readers']]);
        $a->release();
        $b->release();
    }

    public function testForkedWorkersIncrementExactlyAcrossMasters(): void
    {
        // Names whose slots lie on every master.
        $redis = self::counters();
        $names = [];
        $masters = [];
        for ($i = 0; count($masters) < 3 || count($names) < 6; $i++) {
            $name = "c$i";
            $slot = $redis->rawCommand(self::seeds()[0], 'CLUSTER', 'KEYSLOT', "lock:{{$name}}");
            $owner = self::ownerOf((int) $slot);
            if (($masters[$owner] ?? 0) < 2) {
                $masters[$owner] = ($masters[$owner] ?? 0) + 1;
                $names[] = $name;
            }
        }
        foreach ($names as $name) {
            $redis->set("{{$name}}:counter", '0');
        }
        $results = Workers::run(self::WORKERS, function (int $w) use ($names) {
            $redis = self::counters();
            $lm = new LockManager(self::dsn(), ['fencing' => true]);
            $done = 0;
            for ($i = 0; $i < self::CYCLES; $i++) {
                $name = $names[($i + $w) % count($names)];
                $lm->waitAndExecute($name, function () use ($redis, $name) {
                    $value = (int) $redis->get("{{$name}}:counter");
                    usleep(random_int(0, 100));
                    $redis->set("{{$name}}:counter", (string) ($value + 1));
                }, 10, 5);
                $done++;
            }
            return [$done];
        });
        $this->assertSame(self::WORKERS * self::CYCLES, array_sum(array_column($results, 0)));
        $total = 0;
        foreach ($names as $name) {
            $total += (int) $redis->get("{{$name}}:counter");
            $this->assertSame(0, $redis->exists("lock:{{$name}}"), 'no lock left behind');
        }
        $this->assertSame(self::WORKERS * self::CYCLES, $total);
        $this->assertCount(3, $masters);
    }

    public function testWaitersAreWokenAndFencingTokensIncrease(): void
    {
        $dir = sys_get_temp_dir() . '/rl-cluster-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($dir);
        $pid = pcntl_fork();
        if ($pid === 0) {
            // The holder: takes the lock, lets the parent block on it, releases.
            $code = 1;
            try {
                $lm = new LockManager(self::dsn(), ['fencing' => true]);
                $lock = $lm->createLock('fenced', 10);
                if ($lock->acquire()) {
                    file_put_contents("$dir/held", (string) $lock->fencingToken());
                    usleep(400_000);
                    file_put_contents("$dir/released", (string) microtime(true));
                    $lock->release();
                    $code = 0;
                }
            } finally {
                while (ob_get_level() > 0) {
                    ob_end_clean();
                }
                exit($code);
            }
        }
        $deadline = microtime(true) + 5;
        while (!file_exists("$dir/held") && microtime(true) < $deadline) {
            usleep(5_000);
        }
        $lm = new LockManager(self::dsn(), ['fencing' => true]);
        $lock = $lm->createLock('fenced', 10);
        $this->assertTrue($lock->block(5));
        $woken = microtime(true);
        pcntl_waitpid($pid, $status);
        $this->assertSame(0, pcntl_wexitstatus($status));
        $held = (int) file_get_contents("$dir/held");
        $released = (float) file_get_contents("$dir/released");
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
        $this->assertGreaterThan($held, $lock->fencingToken());
        $this->assertLessThan(0.2, $woken - $released, 'woken soon after the release');
        $lock->release();
    }

    public function testSemaphoresOnEveryMasterKeepTheirLimit(): void
    {
        // One semaphore per master: its keys all share the {name} slot.
        $redis = self::counters();
        $names = [];
        for ($i = 0; count($names) < 3; $i++) {
            $slot = $redis->rawCommand(self::seeds()[0], 'CLUSTER', 'KEYSLOT', "lock:{s$i}:sem:permits");
            $names[self::ownerOf((int) $slot)] ??= "s$i";
        }
        $names = array_values($names);
        foreach ($names as $name) {
            $redis->set("{{$name}}:inside", '0');
        }
        $results = Workers::run(self::WORKERS, function (int $w) use ($names) {
            $redis = self::counters();
            $lm = new LockManager(self::dsn());
            $most = 0;
            for ($i = 0; $i < 30; $i++) {
                $name = $names[($i + $w) % count($names)];
                $lm->createSemaphore($name, 2, 10)->block(20, function () use ($redis, $name, &$most) {
                    $most = max($most, $redis->incr("{{$name}}:inside"));
                    usleep(random_int(0, 1000));
                    $redis->decr("{{$name}}:inside");
                });
            }
            return [$most];
        });
        $most = max(array_column($results, 0));
        $this->assertLessThanOrEqual(2, $most);
        $this->assertGreaterThanOrEqual(1, $most);
        foreach ($names as $name) {
            $this->assertSame(0, $redis->exists("lock:{{$name}}:sem:permits"), 'every permit given back');
        }
        $this->assertCount(3, $names);
    }

    /** The port of the master serving $slot. */
    /**
     * A MultiLock whose names live on all three masters (so in different
     * slots): taken name by name in sorted order, given back at the first
     * held one; forked workers naming them in other orders count exactly.
     */
    public function testMultiLocksAcrossMastersCountExactly(): void
    {
        $redis = self::counters();
        $names = [];
        $masters = [];
        for ($i = 0; count($masters) < 3; $i++) {
            $name = "m$i";
            $owner = self::ownerOf((int) $redis->rawCommand(self::seeds()[0], 'CLUSTER', 'KEYSLOT', "lock:{{$name}}"));
            if (!isset($masters[$owner])) {
                $masters[$owner] = true;
                $names[] = $name;
                $redis->set("{{$name}}:n", '0');
            }
        }
        $lm = new LockManager(self::dsn());
        $multi = $lm->createMultiLock($names, 5);
        $this->assertTrue($multi->acquire());
        $plain = $lm->createLock($names[2]);
        $this->assertFalse($plain->acquire(), 'a name of a held MultiLock');
        $this->assertTrue($multi->release());
        $this->assertTrue($plain->acquire());
        $this->assertFalse($lm->createMultiLock($names, 5)->acquire());
        $this->assertSame(0, $redis->exists("lock:{{$names[0]}}"), 'given back at the held name');
        $this->assertTrue($plain->release());
        Workers::run(4, function (int $w) use ($names) {
            $redis = self::counters();
            $lm = new LockManager(self::dsn());
            $order = $w % 2 ? array_reverse($names) : $names;
            for ($i = 0; $i < 25; $i++) {
                $lm->createMultiLock($order, 5)->block(30, function () use ($redis, $names) {
                    foreach ($names as $name) {
                        $redis->set("{{$name}}:n", (string) ((int) $redis->get("{{$name}}:n") + 1));
                    }
                });
            }
            return [];
        });
        foreach ($names as $name) {
            $this->assertSame('100', $redis->get("{{$name}}:n"), $name);
            $this->assertSame(0, $redis->exists("lock:{{$name}}"));
        }
    }

    /**
     * Read locks on a cluster: the lock key, the readers' set and the wait
     * queue of a name share its slot; many readers or one writer, and a
     * writer waiting in another process is handed the lock by the last
     * reader's release.
     */
    public function testReadLocksOnACluster(): void
    {
        $lm = new LockManager(self::dsn());
        $r1 = $lm->createLock('doc', 10);
        $r2 = $lm->createLock('doc', 10);
        $this->assertTrue($r1->acquireRead());
        $this->assertTrue($r2->acquireRead());
        $w = $lm->createLock('doc', 10);
        $this->assertFalse($w->acquire());
        $dir = sys_get_temp_dir() . '/rl-cluster-rw-' . getmypid();
        @mkdir($dir);
        $pid = pcntl_fork();
        if ($pid === 0) {
            $code = 1;
            try {
                $writer = (new LockManager(self::dsn()))->createLock('doc', 10);
                file_put_contents("$dir/waiting", '1');
                $code = $writer->block(10) && $writer->release() ? 0 : 2;
            } finally {
                while (ob_get_level() > 0) {
                    ob_end_clean();
                }
                exit($code);
            }
        }
        $deadline = microtime(true) + 5;
        while (!file_exists("$dir/waiting") && microtime(true) < $deadline) {
            usleep(5_000);
        }
        usleep(200_000);
        $this->assertTrue($r1->release());
        $this->assertTrue($r2->release());
        pcntl_waitpid($pid, $status);
        @unlink("$dir/waiting");
        @rmdir($dir);
        $this->assertSame(0, pcntl_wexitstatus($status), 'the waiting writer got the lock and released it');
        $this->assertFalse($lm->isLocked('doc'));
    }

    /** The watchdog renews a lock on a cluster while its holder sleeps past the TTL. */
    public function testTheWatchdogRenewsOnACluster(): void
    {
        $lm = new LockManager(self::dsn(), ['watchdog' => true]);
        $lock = $lm->createLock('watched', 1);
        $this->assertTrue($lock->acquire());
        sleep(3);
        $other = (new LockManager(self::dsn()))->createLock('watched', 1);
        $this->assertFalse($other->acquire(), 'renewed past three TTLs');
        $this->assertTrue($lock->isAcquired());
        $this->assertGreaterThanOrEqual(3, $lm->stats()['watchdog_renewals']);
        $this->assertTrue($lock->release());
    }

    private static function ownerOf(int $slot): int
    {
        $redis = self::$nodes[0]->client();
        foreach ($redis->rawCommand('CLUSTER', 'SLOTS') as $range) {
            if ($range[0] <= $slot && $slot <= $range[1]) {
                return (int) $range[2][1];
            }
        }
        throw new \RuntimeException("slot $slot is not served");
    }
}
