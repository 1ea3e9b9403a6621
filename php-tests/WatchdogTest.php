<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\LockManager;
use RedisLock\RedisMutex;

/**
 * The watchdog (`watchdog` option): a holder busy in a long call keeps its
 * lock without refresh(), a holder that is killed or stopped loses it within
 * about one TTL, `watchdog_max` ends the renewal, a forked child never renews
 * its parent's locks. Holders are separate php processes (signalled by pid);
 * the test process looks at Redis and competes for the locks. TTLs are 1 s;
 * bounds on timings are generous (3 TTLs), never tight.
 */
final class WatchdogTest extends TestCase
{
    /** @var list<array{resource, array<int, resource>}> */
    private array $holders = [];

    protected function tearDown(): void
    {
        foreach ($this->holders as [$proc, $pipes]) {
            $status = proc_get_status($proc);
            if ($status['running']) {
                posix_kill($status['pid'], SIGKILL);
                posix_kill($status['pid'], SIGCONT);
            }
            foreach ($pipes as $pipe) {
                @fclose($pipe);
            }
            proc_close($proc);
        }
        $this->holders = [];
        parent::tearDown();
    }

    /**
     * Starts `$code` in a php process that loads the extension; returns its
     * index in $this->holders. `$dsn` in the code is this suite's server.
     */
    private function startHolder(string $code): int
    {
        $dsn = $this->dsn();
        $file = tempnam(sys_get_temp_dir(), 'rl-wd') . '.php';
        file_put_contents($file, "<?php\n\$dsn = '$dsn';\n" . $code);
        // An argument list: no shell in between, so the pid is php's own.
        $cmd = [...self::php(), '-d', 'display_errors=stderr', $file];
        $proc = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $this->holders[] = [$proc, $pipes];
        register_shutdown_function(fn () => @unlink($file));
        return count($this->holders) - 1;
    }

    /** The next line the holder prints (fails after 20 s). */
    private function readLine(int $holder): string
    {
        [$proc, $pipes] = $this->holders[$holder];
        $read = [$pipes[1]];
        $none = null;
        $line = '';
        $until = microtime(true) + 20;
        while (!str_ends_with($line, "\n")) {
            $left = $until - microtime(true);
            if ($left <= 0) {
                proc_terminate($proc, SIGKILL);
                $this->fail("holder said nothing more after '$line'; stderr: " . stream_get_contents($pipes[2]));
            }
            $read = [$pipes[1]];
            if (stream_select($read, $none, $none, 0, (int) ($left * 1e6)) > 0) {
                $chunk = fgets($pipes[1]);
                if ($chunk === false) {
                    $this->fail("holder ended early: $line; stderr: " . stream_get_contents($pipes[2]));
                }
                $line .= $chunk;
            }
        }
        return rtrim($line, "\n");
    }

    private function tell(int $holder, string $line): void
    {
        fwrite($this->holders[$holder][1][0], "$line\n");
    }

    private function pid(int $holder): int
    {
        return proc_get_status($this->holders[$holder][0])['pid'];
    }

    private function running(int $holder): bool
    {
        return proc_get_status($this->holders[$holder][0])['running'];
    }

    /** Seconds until a try-once acquire of `$name` by this process succeeds (at most `$limit`), else null. */
    private function secondsUntilFree(string $name, float $limit): ?float
    {
        $m = new RedisMutex($this->dsn());
        $start = microtime(true);
        do {
            if ($m->acquire($name, 10)) {
                return microtime(true) - $start;
            }
            usleep(20_000);
        } while (microtime(true) - $start < $limit);
        return null;
    }

    /** @return iterable<string, array{string}> */
    public static function longCalls(): iterable
    {
        yield 'LockManager::executeWithLock' => ['(new RedisLock\LockManager($dsn, $o))->executeWithLock("job", $busy, 1)'];
        yield 'RedisMutex::synchronized' => ['(new RedisLock\RedisMutex($dsn, $o))->synchronized("job", $busy, 1)'];
        yield 'Lock::acquire' => ['($l = (new RedisLock\LockManager($dsn, $o))->createLock("job", 1))->acquire() && $busy() && $l->release()'];
    }

    /**
     * TTL 1 s and a callback that sleeps 5 s: with the watchdog no one else
     * gets the lock during the sleep; without it (the control), someone does.
     *
     * @dataProvider longCalls
     */
    #[\PHPUnit\Framework\Attributes\DataProvider('longCalls')]
    public function testALongCallKeepsItsLockOnlyWithTheWatchdog(string $call): void
    {
        foreach ([true, false] as $watchdog) {
            $this->redis->flushAll();
            $on = $watchdog ? 'true' : 'false';
            $h = $this->startHolder(<<<PHP
            \$o = ['watchdog' => $on];
            \$busy = function () { echo "held\\n"; sleep(5); return true; };
            $call;
            echo json_encode((new RedisLock\\LockManager(\$dsn))->stats()), "\\n";
            PHP);
            $this->assertSame('held', $this->readLine($h));
            $m = new RedisMutex($this->dsn());
            $taken = false;
            $start = microtime(true);
            while ($this->running($h) && microtime(true) - $start < 4.0) {
                if ($m->acquire('job', 30)) {
                    $taken = true;
                    $m->release('job');
                    break;
                }
                usleep(50_000);
            }
            $stats = json_decode($this->readLine($h), true);
            if ($watchdog) {
                $this->assertFalse($taken, 'another process took a watched lock while its holder slept');
                $this->assertGreaterThanOrEqual(3, $stats['watchdog_renewals'], 'renewed every third of the TTL');
                $this->assertSame(0, $stats['watchdog_lost']);
                $this->assertSame(1, $stats['releases'], 'released by its holder at the end');
            } else {
                $this->assertTrue($taken, 'control: without the watchdog the 1 s lock expires during the sleep');
                $this->assertSame(0, $stats['watchdog_renewals']);
            }
        }
    }

    /**
     * The default (`watchdog` auto, TTL 5 s): a lock taken without a TTL is
     * watched. A 12 s callback under `createLock('report')` keeps its lock
     * throughout, while a holder of another such lock that is SIGKILLed
     * frees it within the default TTL. A lock given a TTL is not watched.
     */
    public function testALockWithoutATtlIsWatchedByDefault(): void
    {
        $long = $this->startHolder(<<<'PHP'
        $lm = new RedisLock\LockManager($dsn);
        $lock = $lm->createLock('report');
        $lock->block(0, function () { echo "held\n"; sleep(12); });
        $given = $lm->createLock('given', 1);
        $given->acquire();
        usleep(1_500_000);
        echo json_encode($lm->stats() + ['given_expired' => !$given->isAcquired()]), "\n";
        PHP);
        $killed = $this->startHolder(<<<'PHP'
        $lock = (new RedisLock\LockManager($dsn))->createLock('job');
        $lock->acquire() or exit(3);
        echo "held\n";
        fgets(STDIN);
        PHP);
        $this->assertSame('held', $this->readLine($long));
        $this->assertSame('held', $this->readLine($killed));
        $owner = $this->storedToken('report');
        usleep(2_000_000);
        posix_kill($this->pid($killed), SIGKILL);
        $killedAt = microtime(true);
        $freedAfter = $this->secondsUntilFree('job', 10);
        $this->assertNotNull($freedAfter, 'a killed holder\'s lock must be freed');
        $this->assertLessThan(6.0, $freedAfter, 'freed within the default TTL (5 s; 1 s of slack for polling)');

        $m = new RedisMutex($this->dsn());
        while ($this->running($long) && microtime(true) - $killedAt < 9.0) {
            $this->assertFalse($m->acquire('report', 30), 'taken from a holder busy in a 12 s callback');
            $this->assertSame($owner, $this->storedToken('report'));
            usleep(250_000);
        }
        $stats = json_decode($this->readLine($long), true);
        $this->assertGreaterThanOrEqual(6, $stats['watchdog_renewals'], 'renewed every third of 5 s for 12 s');
        $this->assertSame(0, $stats['watchdog_lost']);
        $this->assertSame(1, $stats['releases'], 'released by its holder at the end');
        $this->assertTrue($stats['given_expired'], 'a lock given a TTL (1 s) lives exactly that');
    }

    /** @return iterable<string, array{int}> */
    public static function signals(): iterable
    {
        yield 'SIGKILL' => [SIGKILL];
        yield 'SIGSTOP' => [SIGSTOP];
    }

    /**
     * A holder that dies, or is stopped, loses its watched lock within about
     * one TTL (asserted: 3 TTLs). A stopped holder that is let go again
     * finds the lock gone, counts it lost, and does not take it back.
     *
     * @dataProvider signals
     */
    #[\PHPUnit\Framework\Attributes\DataProvider('signals')]
    public function testAKilledOrStoppedHolderLosesItsLockWithinAboutOneTtl(int $signal): void
    {
        $h = $this->startHolder(<<<'PHP'
        $lm = new RedisLock\LockManager($dsn, ['watchdog' => true]);
        $lock = $lm->createLock('job', 1);
        $lock->acquire() or exit(3);
        echo "held\n";
        fgets(STDIN); // a long call
        echo json_encode(['acquired' => $lock->isAcquired()] + $lm->stats()), "\n";
        PHP);
        $this->assertSame('held', $this->readLine($h));
        $owner = $this->storedToken('job');
        // Kept past its TTL by the watchdog first, so that what follows is the signal's doing.
        usleep(2_000_000);
        $this->assertSame($owner, $this->storedToken('job'), 'renewed while the holder waits');

        posix_kill($this->pid($h), $signal);
        $freedAfter = $this->secondsUntilFree('job', 10);
        $this->assertNotNull($freedAfter, 'the lock of a dead or stopped holder must be freed');
        $this->assertLessThan(3.0, $freedAfter, 'freed within about one TTL (1 s; bound 3 s)');
        $mine = $this->storedToken('job');
        $this->assertNotSame($owner, $mine);

        if ($signal === SIGSTOP) {
            posix_kill($this->pid($h), SIGCONT);
            // Its watchdog wakes with renewals overdue; each finds the lock another's.
            usleep(1_000_000);
            $this->tell($h, 'report');
            $report = json_decode($this->readLine($h), true);
            $this->assertFalse($report['acquired']);
            $this->assertSame(1, $report['watchdog_lost'], 'the renewal that found the lock gone is counted');
            $this->assertSame($mine, $this->storedToken('job'), 'the new holder keeps it');
        }
    }

    /**
     * `watchdog_max`: renewal stops that long after the acquire, while the
     * holder is still busy; the lock then runs out its TTL.
     */
    public function testRenewalEndsAtWatchdogMax(): void
    {
        $h = $this->startHolder(<<<'PHP'
        $lm = new RedisLock\LockManager($dsn, ['watchdog' => true, 'watchdog_max' => 3]);
        $lock = $lm->createLock('job', 1);
        $lock->acquire() or exit(3);
        echo "held\n";
        fgets(STDIN);
        echo json_encode($lm->stats()), "\n";
        PHP);
        $this->assertSame('held', $this->readLine($h));
        $start = microtime(true);
        $freedAfter = $this->secondsUntilFree('job', 15);
        $this->assertNotNull($freedAfter, 'watchdog_max must end the renewal');
        // Lower bound: the 1 s lock lived well past its TTL, so it was renewed
        // (a slow machine only makes this longer). Upper: max + 3 TTLs.
        $this->assertGreaterThan(2.0, $freedAfter);
        $this->assertLessThan(6.0, microtime(true) - $start);
        $this->assertTrue($this->running($h), 'the holder is still busy: the renewal stopped by itself');
        $this->tell($h, 'report');
        $stats = json_decode($this->readLine($h), true);
        $this->assertGreaterThanOrEqual(3, $stats['watchdog_renewals']);
        $this->assertSame(0, $stats['watchdog_lost'], 'reaching watchdog_max is not a lost lock');
    }

    /**
     * After fork() the child's watchdog is its own: with the parent killed,
     * the parent's lock expires while the child is alive and renewing its
     * own lock.
     */
    public function testAForkedChildDoesNotRenewItsParentsLocks(): void
    {
        $h = $this->startHolder(<<<'PHP'
        $lm = new RedisLock\LockManager($dsn, ['watchdog' => true]);
        $parent = $lm->createLock('parent', 1);
        $parent->acquire() or exit(3);
        usleep(500_000); // the parent's watchdog is running and has renewed
        $pid = pcntl_fork();
        if ($pid === 0) {
            $child = $lm->createLock('child', 1);
            $child->acquire() or exit(4);
            echo "child held\n";
            fgets(STDIN);
            exit(0);
        }
        echo "parent " . getmypid() . "\n"; // one write: the child writes to the same pipe
        fgets(STDIN);
        PHP);
        $lines = [$this->readLine($h), $this->readLine($h)];
        sort($lines);
        $this->assertSame('child held', $lines[0]);
        $this->assertMatchesRegularExpression('/^parent \d+$/', $lines[1]);
        $parentPid = (int) substr($lines[1], 7);
        $child = $this->storedToken('child');
        $this->assertIsString($child);

        posix_kill($parentPid, SIGKILL);
        $freedAfter = $this->secondsUntilFree('parent', 10);
        $this->assertNotNull($freedAfter, "the child must not keep its parent's lock alive");
        $this->assertLessThan(3.0, $freedAfter);
        // Meanwhile, and a while after, the child's own lock is renewed by its own watchdog.
        usleep(1_500_000);
        $this->assertSame($child, $this->storedToken('child'), "the child's lock is renewed by the child");
        $this->tell($h, 'bye'); // the child reads the same stdin
    }

    /** A lock taken over while watched: the renewal finds it gone, counts it, and stops. */
    public function testARenewalThatFindsTheLockGoneCountsItLost(): void
    {
        $lm = new LockManager($this->dsn(), ['watchdog' => true]);
        $before = $lm->stats();
        $lock = $lm->createLock('job', 0.3);
        $this->assertTrue($lock->acquire());
        $this->assertTrue((new LockManager($this->dsn()))->forceRelease('job'));
        $until = microtime(true) + 10;
        while ($lm->stats()['watchdog_lost'] === $before['watchdog_lost'] && microtime(true) < $until) {
            usleep(20_000);
        }
        $this->assertSame($before['watchdog_lost'] + 1, $lm->stats()['watchdog_lost']);
        $this->assertFalse($lock->release());
    }

    /** refresh() to a longer TTL: the watchdog renews to that TTL, not the old one. */
    public function testRefreshChangesTheTtlTheWatchdogRenewsTo(): void
    {
        $lm = new LockManager($this->dsn(), ['watchdog' => true]);
        $lock = $lm->createLock('job', 0.3);
        $this->assertTrue($lock->acquire());
        $this->assertTrue($lock->refresh(30));
        usleep(500_000); // more than the old TTL
        $this->assertGreaterThan(25, $lock->getRemainingLifetime());
        $m = new RedisMutex($this->dsn(), ['watchdog' => true]);
        $this->assertTrue($m->acquire('mutex', 0.3));
        $this->assertTrue($m->extend('mutex', 30));
        usleep(500_000);
        $this->assertGreaterThan(25_000, $this->redis->pTtl('lock:{mutex}'));
        $this->assertTrue($lock->release());
        $this->assertTrue($m->release('mutex'));
    }

    /** The same for a semaphore's permit and a multi-lock: renewed to the new TTL, not the old one. */
    public function testRefreshChangesTheTtlTheWatchdogRenewsToForPermitsAndMultiLocks(): void
    {
        $lm = new LockManager($this->dsn(), ['watchdog' => true]);
        $semaphore = $lm->createSemaphore('sem', 2, 0.3);
        $this->assertTrue($semaphore->acquire());
        $multi = $lm->createMultiLock(['a', 'b'], 0.3);
        $this->assertTrue($multi->acquire());
        $this->assertTrue($semaphore->refresh(30));
        $this->assertTrue($multi->refresh(30));
        usleep(500_000); // more than the old TTL: renewals to it would have landed by now
        $this->assertGreaterThan(25, $semaphore->getRemainingLifetime());
        $this->assertGreaterThan(25, $multi->getRemainingLifetime());
        $this->assertTrue($semaphore->release());
        $this->assertTrue($multi->release());
    }

    /** Off by default, and released locks are no longer renewed. */
    public function testReleasedLocksAreNotRenewed(): void
    {
        $lm = new LockManager($this->dsn(), ['watchdog' => true]);
        $before = $lm->stats();
        $lock = $lm->createLock('job', 0.2);
        $this->assertTrue($lock->acquire());
        usleep(500_000);
        $this->assertTrue($lock->release());
        $after = $lm->stats();
        $this->assertGreaterThan($before['watchdog_renewals'], $after['watchdog_renewals']);
        usleep(300_000);
        $this->assertSame($after['watchdog_renewals'], $lm->stats()['watchdog_renewals'], 'no renewal after release');
        $this->assertSame($before['watchdog_lost'], $lm->stats()['watchdog_lost'], 'a release is not a lost lock');

        $off = new LockManager($this->dsn());
        $plain = $off->createLock('plain', 0.2);
        $this->assertTrue($plain->acquire());
        usleep(500_000);
        $this->assertFalse($plain->isAcquired(), 'without the watchdog a lock expires by its TTL');
    }
}
