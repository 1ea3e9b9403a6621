<?php
/**
 * K forked workers each add 1 to one shared balance N times with a
 * read-modify-write (GET, then SET), first without a lock and then inside
 * RedisMutex::synchronized(). Without the lock, updates are lost; with it,
 * the balance is exact.
 *
 * Usage: php -d extension=/path/to/libredis_lock.so examples/balance.php PORT [K] [N]
 */
declare(strict_types=1);

$port = (int) ($argv[1] ?? 6379);
$workers = (int) ($argv[2] ?? 8);
$perWorker = (int) ($argv[3] ?? 200);
$dsn = "redis://127.0.0.1:$port";

function runWorkers(int $workers, callable $work): float
{
    $start = microtime(true);
    $children = [];
    for ($w = 0; $w < $workers; $w++) {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $work($w);
            exit(0);
        }
        $children[] = $pid;
    }
    foreach ($children as $pid) {
        pcntl_waitpid($pid, $status);
        if (pcntl_wexitstatus($status) !== 0) {
            fwrite(STDERR, "worker $pid failed\n");
            exit(1);
        }
    }
    return microtime(true) - $start;
}

function credit(Redis $redis): void
{
    $balance = (int) $redis->get('demo:balance');
    usleep(50); // the time a real app spends between reading and writing
    $redis->set('demo:balance', (string) ($balance + 1));
}

$redis = new Redis();
$redis->connect('127.0.0.1', $port);
$expected = $workers * $perWorker;
printf("%d workers x %d credits each, expected balance %d\n\n", $workers, $perWorker, $expected);

$redis->set('demo:balance', '0');
$took = runWorkers($workers, function () use ($port, $perWorker) {
    $r = new Redis();
    $r->connect('127.0.0.1', $port);
    for ($i = 0; $i < $perWorker; $i++) {
        credit($r);
    }
});
$final = (int) $redis->get('demo:balance');
printf("without a lock:  balance %5d, lost updates %5d  (%.2f s)\n", $final, $expected - $final, $took);

$redis->set('demo:balance', '0');
$took = runWorkers($workers, function () use ($port, $perWorker, $dsn) {
    $r = new Redis();
    $r->connect('127.0.0.1', $port);
    $mutex = new RedisLock\RedisMutex($dsn);
    for ($i = 0; $i < $perWorker; $i++) {
        $mutex->synchronized('balance', fn () => credit($r), ttl: 5, wait: 10);
    }
});
$final = (int) $redis->get('demo:balance');
printf("with RedisMutex: balance %5d, lost updates %5d  (%.2f s)\n", $final, $expected - $final, $took);
exit($final === $expected ? 0 : 1);
