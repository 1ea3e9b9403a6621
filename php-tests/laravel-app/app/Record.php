<?php

namespace App;

use Illuminate\Support\Facades\Redis;

/**
 * What ran, in which process, from when to when: one JSON entry per run on
 * the Redis list `runs:<what>`, which the tests read back.
 */
final class Record
{
    /** Runs $work and records its interval under $what; returns what $work returned. */
    public static function run(string $what, ?callable $work = null, array $extra = [])
    {
        $start = microtime(true);
        try {
            return $work === null ? null : $work();
        } finally {
            Redis::connection()->rpush("runs:$what", json_encode(
                ['pid' => getmypid(), 'start' => $start, 'end' => microtime(true)] + $extra
            ));
        }
    }

    /**
     * Waits until $count processes have reached the barrier $name (at most
     * 10 s), so that processes the tests start together act together
     * however long each took to boot.
     */
    public static function barrier(string $name, int $count): void
    {
        $redis = Redis::connection();
        $redis->incr("barrier:$name");
        $deadline = microtime(true) + 10;
        while ((int) $redis->get("barrier:$name") < $count && microtime(true) < $deadline) {
            usleep(5_000);
        }
    }

    /** Sleeps $seconds (a stand-in for real work). */
    public static function work(float $seconds): void
    {
        usleep((int) ($seconds * 1_000_000));
    }
}
