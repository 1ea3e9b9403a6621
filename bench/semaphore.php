<?php
/**
 * Semaphore throughput, printed as one JSON line:
 *
 *   php semaphore.php IMPL PORT WORKERS LIMIT SECONDS
 *
 * WORKERS forked processes take permits of one semaphore of LIMIT for
 * SECONDS; inside each hold, INCR then DECR of a shared counter (two round
 * trips; the highest INCR seen is the most holders at once, checked against
 * LIMIT). IMPL:
 *   ext          RedisLock\Semaphore, acquire(true): woken in arrival order
 *   symfony      Symfony Semaphore on Symfony's RedisStore over phpredis
 *   symfony-ext  Symfony Semaphore on RedisLock\Symfony\SemaphoreStore
 *   polling      userland: a phpredis Lua script on a sorted set, as most
 *                hand-written Redis semaphores are
 * Symfony's Semaphore has no blocking acquire, so the last three try again
 * after a 1 ms sleep (the userland retry of bench.php).
 */
declare(strict_types=1);

const TTL = 10;
const RETRY_US = 1000;

/** The userland semaphore: expired permits dropped, then a permit if fewer than the limit. */
const POLLING_ACQUIRE = <<<'LUA'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return 1
end
return 0
LUA;

/** @return array{callable(): void, callable(): void} acquire (until had) and release */
function semaphore(string $impl, int $port, int $limit): array
{
    switch ($impl) {
        case 'ext':
            $s = (new RedisLock\LockManager("redis://127.0.0.1:$port"))->createSemaphore('bench:sem', $limit, TTL);
            return [fn () => $s->acquire(true), fn () => $s->release()];
        case 'symfony':
        case 'symfony-ext':
            require_once '/usr/share/php/Symfony/Component/Semaphore/autoload.php';
            require_once dirname(__DIR__) . '/php/autoload.php';
            if ($impl === 'symfony') {
                $r = new Redis();
                $r->connect('127.0.0.1', $port);
                $store = new Symfony\Component\Semaphore\Store\RedisStore($r);
            } else {
                $store = new RedisLock\Symfony\SemaphoreStore("redis://127.0.0.1:$port");
            }
            $factory = new Symfony\Component\Semaphore\SemaphoreFactory($store);
            $current = null;
            return [
                function () use ($factory, $limit, &$current) {
                    $current = $factory->createSemaphore('bench:sem', $limit, 1, TTL, false);
                    while (!$current->acquire()) {
                        usleep(RETRY_US);
                    }
                },
                function () use (&$current) {
                    $current->release();
                },
            ];
        case 'polling':
            $r = new Redis();
            $r->connect('127.0.0.1', $port);
            $sha = $r->script('load', POLLING_ACQUIRE);
            $token = bin2hex(random_bytes(16));
            return [
                function () use ($r, $sha, $token, $limit) {
                    while (!$r->evalSha($sha, ['bench:sem:polling', $token, $limit, TTL * 1000], 1)) {
                        usleep(RETRY_US);
                    }
                },
                fn () => $r->zRem('bench:sem:polling', $token),
            ];
    }
    fwrite(STDERR, "unknown implementation $impl\n");
    exit(2);
}

function quantile(array $sorted, float $p): float
{
    return $sorted ? $sorted[min(count($sorted) - 1, (int) floor($p * count($sorted)))] : 0.0;
}

[$impl, $port, $workers, $limit, $seconds] = [$argv[1], (int) $argv[2], (int) $argv[3], (int) $argv[4], (float) $argv[5]];
$admin = new Redis();
$admin->connect('127.0.0.1', $port);
$admin->flushAll();
$admin->set('bench:inside', '0');
$commands0 = (int) $admin->info('stats')['total_commands_processed'];
$dir = sys_get_temp_dir() . '/rl-bench-sem-' . getmypid();
@mkdir($dir);
$start = microtime(true) + 0.5 + $workers * 0.02; // every worker connected before the start
$pids = [];
for ($w = 0; $w < $workers; $w++) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        [$acquire, $release] = semaphore($impl, $port, $limit);
        $data = new Redis();
        $data->connect('127.0.0.1', $port);
        time_sleep_until($start);
        $end = $start + $seconds;
        $waits = [];
        $most = 0;
        while (microtime(true) < $end) {
            $t0 = hrtime(true);
            $acquire();
            $waits[] = (hrtime(true) - $t0) / 1e6;
            $most = max($most, $data->incr('bench:inside'));
            $data->decr('bench:inside');
            $release();
        }
        file_put_contents("$dir/$w", json_encode(['waits' => $waits, 'most' => $most]));
        exit(0);
    }
    $pids[] = $pid;
}
$waits = [];
$counts = [];
$most = 0;
foreach ($pids as $w => $pid) {
    pcntl_waitpid($pid, $status);
    $r = json_decode((string) file_get_contents("$dir/$w"), true);
    @unlink("$dir/$w");
    array_push($waits, ...$r['waits']);
    $counts[] = count($r['waits']);
    $most = max($most, $r['most']);
}
@rmdir($dir);
$total = array_sum($counts);
// Less the INCR and DECR of each hold and the admin's own INFO.
$commands = (int) $admin->info('stats')['total_commands_processed'] - $commands0 - 2 * $total - 1;
sort($waits);
$squares = array_sum(array_map(fn ($c) => $c * $c, $counts));
echo json_encode([
    'mode' => 'semaphore',
    'impl' => $impl,
    'workers' => $workers,
    'limit' => $limit,
    'permits_per_s' => $total / $seconds,
    'wait_p50_ms' => quantile($waits, 0.5),
    'wait_p99_ms' => quantile($waits, 0.99),
    'wait_max_ms' => $waits ? end($waits) : 0.0,
    'commands_per_permit' => $total ? $commands / $total : 0.0,
    'per_worker_min' => min($counts),
    'per_worker_max' => max($counts),
    'jain' => $squares ? $total * $total / (count($counts) * $squares) : 0.0,
    'most_inside' => $most,
    'within_limit' => $most <= $limit,
]), "\n";
