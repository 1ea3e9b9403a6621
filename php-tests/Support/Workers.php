<?php
declare(strict_types=1);

namespace RedisLock\Tests;

/** Runs closures in forked worker processes and collects their results. */
final class Workers
{
    /**
     * How long workers may run before they count as hung: far beyond any
     * test's work (`make soak`'s longest fault runs take 30 s), so that a
     * worker that hangs fails its test instead of stopping the suite.
     */
    private const HUNG_AFTER = 300;

    /**
     * Forks $count workers running $work($index); each returns an array that
     * is passed back through a temp file. Throws if any worker fails, or
     * hangs (it is then killed).
     *
     * @return list<array> the workers' results, in worker order
     */
    public static function run(int $count, callable $work): array
    {
        $dir = sys_get_temp_dir() . '/rl-workers-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($dir);
        $pids = [];
        for ($i = 0; $i < $count; $i++) {
            $pid = pcntl_fork();
            if ($pid === -1) {
                throw new \RuntimeException('fork failed');
            }
            if ($pid === 0) {
                $code = 0;
                try {
                    file_put_contents("$dir/$i", serialize($work($i)));
                } catch (\Throwable $e) {
                    file_put_contents("$dir/$i", serialize(['error' => (string) $e]));
                    $code = 1;
                }
                // Leave without PHPUnit's shutdown work; the extension's own
                // request shutdown still runs (this is a normal exit).
                while (ob_get_level() > 0) {
                    ob_end_clean();
                }
                exit($code);
            }
            $pids[$i] = $pid;
        }
        $results = [];
        $deadline = microtime(true) + self::HUNG_AFTER;
        foreach ($pids as $i => $pid) {
            while (pcntl_waitpid($pid, $status, WNOHANG) === 0) {
                if (microtime(true) > $deadline) {
                    foreach ($pids as $other) {
                        posix_kill($other, SIGKILL);
                        pcntl_waitpid($other, $ignored);
                    }
                    throw new \RuntimeException("worker $i hung: killed after " . self::HUNG_AFTER . ' s');
                }
                usleep(5_000);
            }
            $result = unserialize((string) @file_get_contents("$dir/$i"));
            @unlink("$dir/$i");
            if (!pcntl_wifexited($status) || pcntl_wexitstatus($status) !== 0 || !is_array($result)) {
                throw new \RuntimeException("worker $i failed: " . print_r($result, true));
            }
            $results[$i] = $result;
        }
        @rmdir($dir);
        return $results;
    }
}
