<?php
declare(strict_types=1);

namespace RedisLock\Tests;

/**
 * RedisLock\Metrics: one table in shared memory for every process on the
 * host (api.md "Observability"). Each test counts in a segment of its own
 * (`redis_lock.metrics_shm`), in php processes of its own, so the counts
 * are exact whatever else runs on the machine.
 */
final class MetricsTest extends TestCase
{
    private string $shm;

    protected function setUp(): void
    {
        parent::setUp();
        $this->shm = '/redis_lock.test.' . getmypid() . '.' . bin2hex(random_bytes(4));
    }

    protected function tearDown(): void
    {
        @unlink('/dev/shm' . $this->shm);
        parent::tearDown();
    }

    public function testSeparateProcessesAndForkedChildrenAddUpInOneTable(): void
    {
        $dsn = $this->dsn();
        $cycles = "
            \$lm = new RedisLock\\LockManager('$dsn');
            for (\$i = 0; \$i < 25; \$i++) {
                \$l = \$lm->createLock('a', 5);
                if (!\$l->block(5)) { exit(3); }
                \$l->release();
            }";
        for ($p = 0; $p < 2; $p++) {
            $this->assertSame(0, $this->inSegment($cycles)[0]);
        }
        // One process forks four children, each with its own slot: the
        // parent never counts (it takes no lock).
        [$code, , $err] = $this->inSegment("
            \$pids = [];
            for (\$c = 0; \$c < 4; \$c++) {
                \$pid = pcntl_fork();
                if (\$pid === 0) { $cycles exit(0); }
                \$pids[] = \$pid;
            }
            foreach (\$pids as \$pid) { pcntl_waitpid(\$pid, \$status); if (pcntl_wexitstatus(\$status) !== 0) { exit(4); } }");
        $this->assertSame(0, $code, $err);

        $s = $this->snapshot();
        $this->assertSame('host', $s['mode']);
        $this->assertSame($this->shm, $s['shm']);
        $this->assertSame(['acquired' => 150, 'conflicted' => 0, 'timeout' => 0, 'error' => 0], $s['acquires']['lock']);
        $this->assertSame(['released' => 150, 'lost' => 0, 'error' => 0], $s['releases']['lock']);
        $this->assertSame(150, $s['hold_seconds']['lock']['count']);
        $this->assertSame(150, $s['wait_seconds']['lock']['count'], 'block() could wait: every acquire is observed');
        $this->assertSame(0, $s['held']['lock']);
        $this->assertSame(0, $s['processes'], 'processes that ended give their slots back');
        $this->assertSame(0, $s['acquires']['read']['acquired']);
        $this->assertSame(0600, fileperms('/dev/shm' . $this->shm) & 0777);
    }

    public function testAKilledProcessKeepsItsCountsAndStopsHolding(): void
    {
        $dsn = $this->dsn();
        $worker = $this->spawn("
            \$lm = new RedisLock\\LockManager('$dsn');
            for (\$i = 0; \$i < 10; \$i++) { \$l = \$lm->createLock('a', 5); \$l->acquire(); \$l->release(); }
            \$held = \$lm->createLock('held', 2);
            \$held->acquire();
            \$read = \$lm->createLock('r', 2);
            \$read->acquireRead();
            echo \"ready\\n\";
            fgets(STDIN);
            posix_kill(getmypid(), SIGKILL);");
        $this->assertSame("ready\n", fgets($worker['pipes'][1]));
        $s = $this->snapshot();
        $this->assertSame(['lock' => 1, 'read' => 1, 'multi' => 0, 'semaphore' => 0], $s['held']);
        $this->assertSame(1, $s['processes']);

        fwrite($worker['pipes'][0], "die\n");
        proc_close($worker['proc']);
        $s = $this->snapshot();
        $this->assertSame(11, $s['acquires']['lock']['acquired'], 'a SIGKILL loses nothing already counted');
        $this->assertSame(1, $s['acquires']['read']['acquired']);
        $this->assertSame(10, $s['releases']['lock']['released']);
        $this->assertSame(['lock' => 0, 'read' => 0, 'multi' => 0, 'semaphore' => 0], $s['held'], 'a dead process holds nothing');
        $this->assertSame(0, $s['processes']);
    }

    public function testAWaitIsCountedWhileItWaitsAndByName(): void
    {
        $dsn = $this->dsn();
        $holder = $this->spawn("
            \$l = (new RedisLock\\LockManager('$dsn'))->createLock('hot', 10);
            \$l->acquire();
            echo \"held\\n\";
            fgets(STDIN);
            \$l->release();");
        $this->assertSame("held\n", fgets($holder['pipes'][1]));
        $waiter = $this->spawn("
            \$lm = new RedisLock\\LockManager('$dsn');
            var_dump(\$lm->createLock('hot', 10)->acquire());
            echo \"tried\\n\";
            \$l = \$lm->createLock('hot', 10);
            echo \$l->block(10) ? \"got it\\n\" : \"no\\n\";
            \$l->release();");
        $this->assertStringContainsString('tried', fgets($waiter['pipes'][1]) . fgets($waiter['pipes'][1]));
        $deadline = microtime(true) + 5;
        while ($this->snapshot()['waiting']['lock'] === 0 && microtime(true) < $deadline) {
            usleep(20_000);
        }
        $this->assertSame(1, $this->snapshot()['waiting']['lock']);
        usleep(200_000);
        fwrite($holder['pipes'][0], "go\n");
        $this->assertSame("got it\n", stream_get_contents($waiter['pipes'][1]));
        foreach ([$holder, $waiter] as $p) {
            $this->assertSame(0, proc_close($p['proc']));
        }

        $s = $this->snapshot();
        $this->assertSame(['acquired' => 2, 'conflicted' => 1, 'timeout' => 0, 'error' => 0], $s['acquires']['lock']);
        $this->assertSame(0, $s['waiting']['lock']);
        $this->assertSame(['lock:{hot}' => 1], $s['names'], 'one acquire waited, for that key');
        $this->assertSame(1, $s['wait_seconds']['lock']['count']);
        $this->assertGreaterThanOrEqual(0.2, $s['wait_seconds']['lock']['max']);
        $this->assertStringContainsString(
            "redis_lock_name_waits_total{name=\"lock:{hot}\"} 1\n",
            $this->inSegment('echo RedisLock\Metrics::prometheus();')[1]
        );
    }

    /** @group promtool */
    #[\PHPUnit\Framework\Attributes\Group('promtool')]
    public function testTheExpositionPassesPromtool(): void
    {
        $dsn = $this->dsn();
        [$code, $text, $err] = $this->inSegment("
            \$lm = new RedisLock\\LockManager('$dsn');
            \$a = \$lm->createLock('quote\"back\\\\slash', 5);
            \$a->acquire();
            try { \$lm->createLock('quote\"back\\\\slash', 5)->block(0.05); } catch (RedisLock\\LockTimeoutException) {}
            \$lm->createSemaphore('s', 2, 5)->acquire();
            \$m = \$lm->createMultiLock(['x', 'y'], 5);
            \$m->acquire();
            \$m->release();
            \$a->release();
            echo RedisLock\\Metrics::prometheus();");
        $this->assertSame(0, $code, $err);
        $this->assertStringContainsString("redis_lock_acquires_total{kind=\"lock\",result=\"timeout\"} 1\n", $text);
        $this->assertStringContainsString("redis_lock_acquires_total{kind=\"multi\",result=\"acquired\"} 1\n", $text);
        $this->assertStringContainsString("redis_lock_acquires_total{kind=\"semaphore\",result=\"acquired\"} 1\n", $text);
        $this->assertStringContainsString('redis_lock_name_waits_total{name="lock:{quote\"back\\\\slash}"} 1', $text);
        $promtool = proc_open(['promtool', 'check', 'metrics'], [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        fwrite($pipes[0], $text);
        fclose($pipes[0]);
        $said = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
        $this->assertSame(0, proc_close($promtool), "promtool check metrics: $said");
        $this->assertSame('', $said);
    }

    public function testAGarbageTruncatedOrOpenSegmentIsReplacedWithOneLoggedWarning(): void
    {
        $path = '/dev/shm' . $this->shm;
        $dsn = $this->dsn();
        // A real segment's size, for the garbage that is not short.
        $this->assertSame(0, $this->inSegment('RedisLock\Metrics::snapshot();')[0]);
        $size = filesize($path);
        $cycle = "
            \$l = (new RedisLock\\LockManager('$dsn'))->createLock('a', 5);
            \$l->acquire(); \$l->release();
            echo json_encode(RedisLock\\Metrics::snapshot()['acquires']['lock']['acquired']);";
        foreach ([
            'garbage' => fn () => file_put_contents($path, random_bytes($size)),
            'truncated' => fn () => truncate($path, 4096),
            'readable by others' => fn () => chmod($path, 0644),
        ] as $what => $spoil) {
            $spoil();
            $log = tempnam(sys_get_temp_dir(), 'rl-log');
            [$code, $out, $err] = $this->inSegment($cycle, ['error_log' => $log]);
            $this->assertSame(0, $code, "$what: $err");
            $this->assertSame('1', $out, "$what: a fresh table, with this process's acquire only");
            $logged = file_get_contents($log);
            unlink($log);
            $this->assertSame(1, substr_count($logged, 'redis_lock: the metrics segment'), "$what: $logged");
            $this->assertSame('', $err, "$what: not a PHP warning");
            $this->assertSame(0600, fileperms($path) & 0777);
            $this->assertSame($size, filesize($path));
        }
    }

    public function testProcessAndOffModes(): void
    {
        $dsn = $this->dsn();
        $cycle = "
            \$l = (new RedisLock\\LockManager('$dsn'))->createLock('a', 5);
            \$l->acquire(); \$l->release();
            \$s = RedisLock\\Metrics::snapshot();
            echo \$s['mode'], ' ', \$s['acquires']['lock']['acquired'], ' ', json_encode(\$s['shm']);";
        foreach (range(1, 2) as $_) {
            $this->assertSame([0, 'process 1 null', ''], $this->inSegment($cycle, ['redis_lock.metrics' => 'process']));
        }
        $this->assertSame([0, 'off 0 null', ''], $this->inSegment($cycle, ['redis_lock.metrics' => 'off']));
        $this->assertFileDoesNotExist('/dev/shm' . $this->shm);
        // A process-mode child after fork counts its own work only.
        [, $out] = $this->inSegment("
            \$lm = new RedisLock\\LockManager('$dsn');
            \$l = \$lm->createLock('a', 5); \$l->acquire(); \$l->release();
            \$pid = pcntl_fork();
            if (\$pid === 0) {
                echo RedisLock\\Metrics::snapshot()['acquires']['lock']['acquired'], ' ';
                exit(0);
            }
            pcntl_waitpid(\$pid, \$status);
            echo RedisLock\\Metrics::snapshot()['acquires']['lock']['acquired'];", ['redis_lock.metrics' => 'process']);
        $this->assertSame('0 1', $out);
    }

    public function testAValueNotUnderstoodIsLoggedOnceAndTheDefaultUsed(): void
    {
        $log = tempnam(sys_get_temp_dir(), 'rl-log');
        [$code, $out, $err] = $this->inSegment(
            '$s = RedisLock\Metrics::snapshot(); RedisLock\Metrics::snapshot(); echo $s["mode"];',
            ['redis_lock.metrics' => 'everywhere', 'redis_lock.metrics_names' => 'many', 'error_log' => $log]
        );
        $logged = file_get_contents($log);
        unlink($log);
        $this->assertSame([0, 'host', ''], [$code, $out, $err]);
        $this->assertSame(1, substr_count($logged, 'redis_lock.metrics must be host, process or off, not "everywhere"'), $logged);
        $this->assertSame(1, substr_count($logged, 'redis_lock.metrics_names must be 0 to 128, not "many"'), $logged);
    }

    /** @return array{int, string, string} exit code, stdout, stderr of $code run in this test's segment */
    private function inSegment(string $code, array $ini = []): array
    {
        return self::runPhp("<?php\n$code", ['redis_lock.metrics_shm' => $this->shm] + $ini);
    }

    /** @return array<string, mixed> the segment's snapshot, read by another process */
    private function snapshot(): array
    {
        [$code, $out, $err] = $this->inSegment('echo json_encode(RedisLock\Metrics::snapshot());');
        $this->assertSame(0, $code, $err);
        return json_decode($out, true, 512, JSON_THROW_ON_ERROR);
    }

    /**
     * A php process running $code in this test's segment, with its stdin and stdout as pipes.
     *
     * @return array{proc: resource, pipes: array<int, resource>}
     */
    private function spawn(string $code): array
    {
        $file = tempnam(sys_get_temp_dir(), 'rl') . '.php';
        file_put_contents($file, "<?php\n$code");
        $proc = proc_open(
            [...self::php(), '-d', "redis_lock.metrics_shm={$this->shm}", $file],
            [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => STDERR],
            $pipes
        );
        register_shutdown_function(fn () => @unlink($file));
        return ['proc' => $proc, 'pipes' => $pipes];
    }
}

function truncate(string $path, int $size): void
{
    $f = fopen($path, 'r+');
    ftruncate($f, $size);
    fclose($f);
}
