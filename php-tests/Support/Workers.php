<?php
declare(strict_types=1);

namespace RedisLock\Tests;

/** Runs closures in forked worker processes and collects their results. */
final class Workers
{
    /**
     * Forks $count workers running $work($index); each returns an array that
     * is passed back through a temp file. Throws if any worker fails.
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
        foreach ($pids as $i => $pid) {
            pcntl_waitpid($pid, $status);
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
