<?php
/**
 * Runs inside the network namespace: locks and unlocks one name over the
 * Redlock of argv[1] (comma-separated DSNs) for argv[2] seconds, and prints
 * one JSON line per second (its start and end): cycles, cycles that acquired and released,
 * ConnectionExceptions, other errors, the slowest single call, the first error.
 */
declare(strict_types=1);

[$_, $dsns, $seconds] = $argv;
$lm = new RedisLock\LockManager(explode(',', $dsns), ['timeout' => 0.3, 'connect_timeout' => 0.3]);
$end = microtime(true) + (float) $seconds;
while (microtime(true) < $end) {
    $second = ['t' => microtime(true), 'calls' => 0, 'ok' => 0, 'unavailable' => 0, 'other' => 0, 'slowest' => 0.0, 'error' => null];
    $until = min($end, microtime(true) + 1.0);
    while (microtime(true) < $until) {
        $second['calls']++;
        $lock = $lm->createLock('cut', 5);
        $ok = 0;
        foreach (['acquire', 'release'] as $call) {
            $start = microtime(true);
            $failure = null;
            try {
                $ok += $lock->$call() ? 1 : 0;
            } catch (RedisLock\ConnectionException $e) {
                $failure = $e->getMessage();
                $second['unavailable']++;
                $second['error'] ??= $e->getMessage();
            } catch (Throwable $e) {
                $second['other']++;
                $second['error'] ??= get_class($e) . ': ' . $e->getMessage();
            }
            $took = microtime(true) - $start;
            if ($took > 0.7) {
                fwrite(STDERR, sprintf("slow %s %.3f: %s\n", $call, $took, $failure ?? 'no error'));
            }
            if ($took > $second['slowest']) {
                $second['slowest'] = $took;
                $second['slowest_call'] = $call;
            }
            if ($ok === 0) {
                break;
            }
        }
        $second['ok'] += $ok === 2 ? 1 : 0;
    }
    // A second ends with its last call, which may run past the second.
    $second['end'] = microtime(true);
    echo json_encode($second), "\n";
}
