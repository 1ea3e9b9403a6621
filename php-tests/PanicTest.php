<?php
declare(strict_types=1);

namespace RedisLock\Tests;

/**
 * A Rust panic inside the extension reaches PHP as a RedisLock\LockException,
 * and the process carries on. Uses the debug build made with the
 * `panic-injection` feature, where every method panics while
 * REDIS_LOCK_INJECT_PANIC is set.
 */
final class PanicTest extends TestCase
{
    public function testAPanicBecomesALockExceptionAndThePhpProcessSurvives(): void
    {
        $so = getenv('REDIS_LOCK_DEBUG_SO');
        $this->assertIsString($so, 'make test sets REDIS_LOCK_DEBUG_SO');
        $dsn = $this->dsn();
        $file = tempnam(sys_get_temp_dir(), 'rl') . '.php';
        file_put_contents($file, <<<PHP
        <?php
        \$m = new RedisLock\\RedisMutex('$dsn');
        putenv('REDIS_LOCK_INJECT_PANIC=1');
        foreach ([fn () => \$m->acquire('k'), fn () => new RedisLock\\LockManager('$dsn'), fn () => \$m->synchronized('k', fn () => 1)] as \$call) {
            try {
                \$call();
                echo "no exception\\n";
            } catch (RedisLock\\LockException \$e) {
                echo get_class(\$e), ': ', \$e->getMessage(), "\\n";
            }
        }
        putenv('REDIS_LOCK_INJECT_PANIC');
        var_export(\$m->acquire('k'));
        PHP);
        $proc = proc_open([PHP_BINARY, '-n', '-d', "extension=$so", $file], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        $code = proc_close($proc);
        unlink($file);
        $this->assertSame(0, $code, $err);
        $this->assertSame(
            str_repeat("RedisLock\\LockException: internal error in redis_lock: injected panic\n", 3) . 'true',
            $out
        );
    }
}
