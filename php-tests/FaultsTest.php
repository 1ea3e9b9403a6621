<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\ConnectionException;
use RedisLock\LockManager;
use RedisLock\RedisMutex;

/**
 * Faults injected while 8 forked workers use locks: fork, Redis restart,
 * Redis stall, expiry while held. Each worker classifies every call; anything
 * but success, a held lock or ConnectionException fails the test.
 */
final class FaultsTest extends TestCase
{
    private const WORKERS = 8;

    /** How long fault runs last: 1 in `make test`; `make soak` sets more. */
    private static function scale(): float
    {
        return max(1.0, (float) (getenv('REDIS_LOCK_FAULT_SCALE') ?: 1));
    }

    /** Appends a line of figures to $REDIS_LOCK_REPORT, for TESTING.md. */
    private static function report(string $fault, int $injected, array $results): void
    {
        $file = getenv('REDIS_LOCK_REPORT');
        if (!$file) {
            return;
        }
        $sum = fn (string $k) => array_sum(array_column($results, $k));
        file_put_contents($file, sprintf(
            "faults %-8s injected %3d, workers %d, calls %7d: ok %7d, held %6d, ConnectionException %5d, other errors %d, crashes 0, slowest call %.3f s\n",
            $fault, $injected, count($results), $sum('ok') + $sum('held') + $sum('connection') + $sum('other'),
            $sum('ok'), $sum('held'), $sum('connection'), $sum('other'), max(array_column($results, 'slowest'))
        ), FILE_APPEND);
    }

    public function testForkedChildrenLockOnTheirOwnConnectionsAndLeaveTheParentsLockAlone(): void
    {
        $parent = new RedisMutex($this->dsn(), ['fencing' => true]);
        $this->assertTrue($parent->acquire('parent', 60));
        $token = $this->storedToken('parent');
        $before = array_column($this->redis->client('list'), 'id');
        $results = Workers::run(self::WORKERS, function (int $w) use ($parent, $before) {
            $released = $parent->release('parent');          // not the child's to release
            $own = new RedisMutex(self::$server->dsn());
            $cycles = 0;
            for ($i = 0; $i < 50; $i++) {
                $cycles += (int) $own->synchronized("child:$w", fn () => true, 5, 5);
                $cycles += (int) $parent->synchronized('shared', fn () => true, 5, 10); // the inherited object works too
            }
            $probe = self::$server->client();
            $mine = array_filter($probe->client('list'), fn ($c) => !in_array($c['id'], $before) && $c['cmd'] !== 'client|list');
            return [$released, $cycles, count($mine)];
        });
        foreach ($results as [$released, $cycles, $connections]) {
            $this->assertFalse($released);
            $this->assertSame(100, $cycles);
            $this->assertGreaterThanOrEqual(1, $connections, 'CLIENT LIST shows the child\'s own connection');
        }
        $this->assertSame($token, $this->storedToken('parent'), 'the parent\'s lock stayed the parent\'s');
        $this->assertTrue($parent->release('parent'));
    }

    public function testAForkInsideALockedCallback(): void
    {
        $m = new RedisMutex($this->dsn());
        $during = $m->synchronized('outer', function () use ($m) {
            $child = Workers::run(1, function () use ($m) {
                // The child inherited a held lock: it can neither release it nor re-take it.
                return [$m->release('outer'), $m->acquire('outer'), $m->synchronized('inner', fn () => 'child ran', 5)];
            });
            return [$child[0], $this->redis->exists('lock:{outer}')];
        }, 30);
        $this->assertSame([[false, false, 'child ran'], 1], $during, 'still held after the child exited');
        $this->assertSame(0, $this->redis->exists('lock:{outer}'), 'released once, by the parent');
    }

    /**
     * Runs $work in 8 workers for $seconds while $fault($server) runs in this
     * process; returns per-worker counts by outcome.
     */
    private function underFault(RedisServer $server, float $seconds, array $options, callable $fault): array
    {
        $dsn = $server->dsn();
        $deadlineFile = tempnam(sys_get_temp_dir(), 'rl-deadline');
        file_put_contents($deadlineFile, (string) (microtime(true) + $seconds));
        $pids = [];
        $dir = sys_get_temp_dir() . '/rl-fault-' . bin2hex(random_bytes(4));
        mkdir($dir);
        for ($w = 0; $w < self::WORKERS; $w++) {
            $pid = pcntl_fork();
            if ($pid === 0) {
                $counts = ['ok' => 0, 'held' => 0, 'connection' => 0, 'other' => 0, 'slowest' => 0.0, 'ok_after_fault' => 0];
                $m = new RedisMutex($dsn, $options);
                $lm = new LockManager($dsn, $options);
                $lock = $lm->createLock('shared', 5, false);
                $end = (float) file_get_contents($deadlineFile);
                $i = 0;
                while (microtime(true) < $end) {
                    // One extension call per measurement: each must end within its timeout.
                    $op = $i++ % 5;
                    $start = microtime(true);
                    try {
                        $ok = match ($op) {
                            0 => $m->acquire("k$w", 5),
                            1 => $m->release("k$w") || true,
                            2 => $lock->acquire(),
                            3 => $lock->release() || true,
                            4 => $m->isLocked('shared') || true,
                        };
                        $counts[$ok ? 'ok' : 'held']++;
                        if ($ok && file_exists("$dir/fault-over")) {
                            $counts['ok_after_fault']++;
                        }
                    } catch (ConnectionException $e) {
                        $counts['connection']++;
                    } catch (\Throwable $e) {
                        $counts['other']++;
                        $counts['other_message'] = get_class($e) . ': ' . $e->getMessage();
                    }
                    $counts['slowest'] = max($counts['slowest'], microtime(true) - $start);
                }
                file_put_contents("$dir/$w", serialize($counts));
                while (ob_get_level() > 0) {
                    ob_end_clean();
                }
                exit(0);
            }
            $pids[] = $pid;
        }
        $fault($server);
        touch("$dir/fault-over");
        $results = [];
        foreach ($pids as $w => $pid) {
            pcntl_waitpid($pid, $status);
            $this->assertTrue(pcntl_wifexited($status) && pcntl_wexitstatus($status) === 0, "worker $w crashed");
            $results[] = unserialize(file_get_contents("$dir/$w"));
            unlink("$dir/$w");
        }
        @unlink("$dir/fault-over");
        @rmdir($dir);
        unlink($deadlineFile);
        return $results;
    }

    public function testRedisRestartMidRun(): void
    {
        $server = RedisServer::start();
        $port = $server->port;
        $restarts = 0;
        $seconds = 3.0 * self::scale();
        $results = $this->underFault($server, $seconds, ['timeout' => 0.5, 'connect_timeout' => 0.5], function () use (&$server, &$restarts, $port, $seconds) {
            // One restart takes about 1.1 s; leave the workers at least as long to recover.
            $end = microtime(true) + $seconds;
            do {
                usleep(700_000);
                try {
                    $server->client()->rawCommand('SHUTDOWN', 'NOSAVE');
                } catch (\RedisException) {
                    // the connection closes as the server exits
                }
                $server->stop();
                usleep(300_000);
                $server = RedisServer::start($port);
                $restarts++;
            } while ($end - microtime(true) > 2.3);
        });
        self::report('restart', $restarts, $results);
        foreach ($results as $w => $r) {
            $this->assertSame(0, $r['other'], "worker $w: " . ($r['other_message'] ?? ''));
            $this->assertGreaterThan(0, $r['ok_after_fault'], "worker $w recovered in the same process");
        }
        $this->assertGreaterThan(0, array_sum(array_column($results, 'connection')), 'the outage was seen');
        // The new server had no scripts: EVALSHA was answered NOSCRIPT and the script re-sent.
        $stats = $server->client()->info('commandstats');
        $this->assertMatchesRegularExpression('/failed_calls=[1-9]/', $stats['cmdstat_evalsha'] ?? '', 'NOSCRIPT was seen');
        $this->assertArrayHasKey('cmdstat_eval', $stats, 'and the script sent again with its source');
        $server->stop();
    }

    public function testRedisStalledEveryCallEndsWithinItsTimeout(): void
    {
        $server = RedisServer::start();
        $timeout = 0.5;
        $stalls = 0;
        $seconds = 3.0 * self::scale();
        $results = $this->underFault($server, $seconds, ['timeout' => $timeout, 'connect_timeout' => $timeout], function (RedisServer $server) use (&$stalls, $seconds) {
            // One stall takes 1.5 s; leave the workers at least 1 s to resume.
            $end = microtime(true) + $seconds;
            do {
                usleep(500_000);
                $server->pause();
                usleep(1_000_000);
                $server->resume();
                $stalls++;
            } while ($end - microtime(true) > 2.6);
        });
        self::report('stall', $stalls, $results);
        foreach ($results as $w => $r) {
            $this->assertSame(0, $r['other'], "worker $w: " . ($r['other_message'] ?? ''));
            $this->assertGreaterThan(0, $r['connection'], "worker $w saw the stall");
            $this->assertLessThan($timeout * 1.1, $r['slowest'], "worker $w: slowest call {$r['slowest']} s");
            $this->assertGreaterThan(0, $r['ok_after_fault'], "worker $w resumed");
        }
        $server->stop();
    }

    public function testExpiryWhileHeldLetsASecondHolderInAndFencingShowsTheOrder(): void
    {
        $lm = new LockManager($this->dsn(), ['fencing' => true]);
        $first = $lm->createLock('job', 0.2);
        $this->assertTrue($first->acquire());
        $firstToken = $first->fencingToken();
        usleep(300_000); // the critical section outlives the TTL
        [$second] = Workers::run(1, function () {
            $lm = new LockManager(self::$server->dsn(), ['fencing' => true]);
            $l = $lm->createLock('job', 30, false);
            return [$l->acquire(), $l->fencingToken(), $l->owner()];
        });
        [$acquired, $secondToken, $secondOwner] = $second;
        $this->assertTrue($acquired, 'the second holder got in after the TTL');
        $this->assertFalse($first->refresh(10));
        $this->assertFalse($first->release());
        $this->assertSame($secondOwner, $this->storedToken('job'), 'the second holder\'s key is untouched');
        $this->assertGreaterThan($firstToken, $secondToken, 'a storage that checks fencing tokens rejects the stale writer');
    }
}
