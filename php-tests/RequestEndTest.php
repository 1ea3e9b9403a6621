<?php
declare(strict_types=1);

namespace RedisLock\Tests;

/**
 * Locks still held when a PHP process ends are released by the extension's
 * request shutdown, also where PHP runs no destructors (fatal errors).
 * Each case runs in its own php process and holds locks with a 60 s TTL, so
 * expiry cannot explain their disappearance.
 */
final class RequestEndTest extends TestCase
{
    private function holdThen(string $ending): array
    {
        $dsn = $this->dsn();
        return self::runPhp(<<<PHP
        <?php
        \$m = new RedisLock\\RedisMutex('$dsn');
        \$lm = new RedisLock\\LockManager('$dsn');
        \$m->acquire('mutex', 60) or exit(3);
        \$lock = \$lm->createLock('lock', 60);
        \$lock->acquire() or exit(3);
        \$kept = \$lm->createLock('kept', 60, false);
        \$kept->acquire() or exit(3);
        // Objects kept reachable from a global-scope cycle are not destroyed before the end.
        \$GLOBALS['keep'] = [\$m, \$lock, \$kept];
        echo "held\\n";
        $ending
        PHP, ['memory_limit' => '32M']);
    }

    /** @return iterable<string, array{string, int}> */
    public static function endings(): iterable
    {
        yield 'normal end' => ['', 0];
        yield 'exit()' => ['exit(0);', 0];
        yield 'uncaught exception' => ['throw new RuntimeException("boom");', 255];
        yield 'E_USER_ERROR' => ['trigger_error("fatal", E_USER_ERROR);', 255];
        yield 'memory limit' => ['$a = []; while (true) { $a[] = str_repeat("x", 1 << 20); }', 255];
        yield 'fatal error in a synchronized callback' => [
            '$m->synchronized("cb", function () { trigger_error("fatal", E_USER_ERROR); });', 255,
        ];
        yield 'exit() in a synchronized callback' => ['$m->synchronized("cb", function () { exit(0); });', 0];
        yield 'exit() in a waitAndExecute callback' => ['$lm->waitAndExecute("cb", function () { exit(0); });', 0];
    }

    /** @dataProvider endings */
    #[\PHPUnit\Framework\Attributes\DataProvider('endings')]
    public function testHeldLocksAreReleasedWhenTheProcessEnds(string $ending, int $exitCode): void
    {
        [$code, $out, $err] = $this->holdThen($ending);
        $this->assertSame("held\n", $out, $err);
        $this->assertSame($exitCode, $code, $err);
        $this->assertSame(0, $this->redis->exists('lock:{mutex}'), 'RedisMutex lock released');
        $this->assertSame(0, $this->redis->exists('lock:{lock}'), 'auto-release Lock released');
        $this->assertSame(0, $this->redis->exists('lock:{cb}'), 'callback lock released');
        $this->assertSame(1, $this->redis->exists('lock:{kept}'), 'autoRelease=false is kept until its TTL');
        $this->assertGreaterThan(50_000, $this->redis->pTtl('lock:{kept}'));
    }

    /**
     * A worker that never ends its request (FrankenPHP's worker mode,
     * RoadRunner, Octane, a queue worker): each "request" is one turn of a
     * loop, and request end comes only when the worker stops. What a turn
     * leaves to its objects is freed when they go out of scope, also when
     * the turn throws; a lock kept past the turn (a static) stays held, its
     * watchdog renewing it, until it is released or the worker ends.
     */
    public function testAWorkerLoopFreesEachTurnsLocksAndKeepsWhatItKeeps(): void
    {
        $dsn = $this->dsn();
        [$code, $out, $err] = self::runPhp(<<<PHP
        <?php
        \$lm = new RedisLock\LockManager('$dsn', ['ttl' => 0.3]);
        \$m = new RedisLock\RedisMutex('$dsn');
        \$redis = new Redis();
        \$redis->connect('127.0.0.1', (int) parse_url('$dsn', PHP_URL_PORT));
        \$handle = function (int \$turn) use (\$lm, \$m) {
            \$lock = \$lm->createLock('job:' . (\$turn % 5));
            \$lock->acquire() or exit(3);
            \$m->synchronized('mutex', fn () => null);
            \$read = \$lm->createLock('doc');
            \$read->acquireRead() or exit(4);
            if (\$turn % 7 === 0) {
                throw new RuntimeException('this turn fails');
            }
            if (\$turn === 10) {
                static \$kept;
                \$kept = \$lm->createLock('kept');
                \$kept->acquire() or exit(5);
            }
            // No release: the objects go out of scope with the turn.
        };
        for (\$turn = 0; \$turn < 300; \$turn++) {
            try {
                \$handle(\$turn);
            } catch (RuntimeException) {
            }
            \$left = array_filter(\$redis->keys('lock:*'), fn (\$k) => !str_contains(\$k, ':call:') && !str_contains(\$k, 'kept'));
            if (\$left !== []) {
                echo "turn \$turn left ", implode(' ', \$left), "\n";
                exit(6);
            }
        }
        usleep(1_000_000); // three TTLs: only the watchdog keeps 'kept'
        \$s = RedisLock\Metrics::snapshot();
        echo json_encode([\$redis->exists('lock:{kept}'), \$s['held']['lock'], \$s['acquires']['lock']['acquired'],
            \$s['releases']['lock']['released'], \$s['acquires']['read']['acquired'], \$s['releases']['read']['released']]), "\n";
        PHP, ['redis_lock.metrics' => 'process']);
        $this->assertSame(0, $code, $out . $err);
        // 300 turns: a lock and a mutex key each (600 + 1 kept), a read lock each.
        $this->assertSame("[1,1,601,600,300,300]\n", $out, $err);
        $this->assertSame(0, $this->redis->exists('lock:{kept}'), 'the kept lock ends with the worker');
    }

    /**
     * A request that ends holding 20 locks (of each kind) on a stalled Redis
     * gives the server up after its first failed release: it ends within
     * about one timeout (0.5 s here), not 20 (10 s before).
     */
    public function testARequestEndingOnAStalledRedisWaitsAboutOneTimeoutNotOnePerLock(): void
    {
        $server = RedisServer::start();
        $stamp = tempnam(sys_get_temp_dir(), 'rl-end');
        try {
            $dsn = $server->dsn();
            $pid = $server->pid();
            $started = microtime(true);
            [$code, $out, $err] = self::runPhp(<<<PHP
            <?php
            \$lm = new RedisLock\\LockManager('$dsn', ['timeout' => 0.5]);
            \$m = new RedisLock\\RedisMutex('$dsn', ['timeout' => 0.5]);
            \$keep = [];
            for (\$i = 0; \$i < 8; \$i++) {
                \$keep[] = \$l = \$lm->createLock("l\$i", 60);
                \$l->acquire() or exit(3);
                \$m->acquire("m\$i", 60) or exit(3);
            }
            \$keep[] = \$r = \$lm->createLock('read', 60);
            \$r->acquireRead() or exit(3);
            \$keep[] = \$ml = \$lm->createMultiLock(['a', 'b'], 60);
            \$ml->acquire() or exit(3);
            \$keep[] = \$s = \$lm->createSemaphore('s', 3, 60);
            \$s->acquire() or exit(3);
            \$GLOBALS['keep'] = \$keep;
            posix_kill($pid, SIGSTOP);
            echo "held\\n";
            file_put_contents('$stamp', (string) microtime(true));
            PHP);
            $ended = microtime(true);
            $this->assertSame(0, $code, $err);
            $this->assertSame("held\n", $out, $err);
            $endTook = $ended - (float) file_get_contents($stamp);
            // One timeout, and a margin for a loaded machine; 20 would be 10 s.
            $this->assertLessThan(2.0, $endTook, sprintf('the request end took %.3f s (whole run %.3f s)', $endTook, $ended - $started));
        } finally {
            $server->resume();
            $server->stop();
            @unlink($stamp);
        }
    }

    public function testACallbacksExceptionPropagatesAfterRelease(): void
    {
        $dsn = $this->dsn();
        [$code, $out, $err] = self::runPhp(<<<PHP
        <?php
        \$m = new RedisLock\\RedisMutex('$dsn');
        \$r = new Redis();
        \$r->connect('127.0.0.1', {$this->redis->getPort()});
        try {
            \$m->synchronized('k', function () { throw new DomainException('inner', 3); }, 60);
        } catch (DomainException \$e) {
            echo get_class(\$e), ':', \$e->getMessage(), ':', \$e->getCode(), ':', \$r->exists('lock:{k}'), "\\n";
        }
        PHP);
        $this->assertSame(0, $code, $err);
        $this->assertSame("DomainException:inner:3:0\n", $out);
    }
}
