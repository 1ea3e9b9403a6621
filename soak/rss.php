<?php
/**
 * Worker memory over many lock cycles: RSS after 10 k acquire/release cycles
 * against RSS after CYCLES. Fails when it grew by more than 1 MiB.
 *
 * Usage: php -d extension=… soak/rss.php DSN CYCLES
 */
declare(strict_types=1);

[$dsn, $cycles] = [$argv[1], (int) $argv[2]];
$rss = static function (): int {
    preg_match('/^VmRSS:\s+(\d+) kB/m', file_get_contents('/proc/self/status'), $m);
    return (int) $m[1];
};
$m = new RedisLock\RedisMutex($dsn);
$lm = new RedisLock\LockManager($dsn);
$start = microtime(true);
$at10k = 0;
for ($i = 1; $i <= $cycles; $i++) {
    if ($i % 2) {
        $m->acquire('rss', 5) && $m->release('rss');
    } else {
        $l = $lm->createLock('rss', 5);
        $l->acquire() && $l->release();
    }
    if ($i === 10_000) {
        $at10k = $rss();
    }
}
$end = $rss();
$took = microtime(true) - $start;
printf("rss: %d cycles in %.1f s (%.1f us/cycle); RSS %d kB after 10k, %d kB after %d (%+d kB)\n",
    $cycles, $took, $took / $cycles * 1e6, $at10k, $end, $cycles, $end - $at10k);
exit($end - $at10k <= 1024 ? 0 : 1);
