<?php
/**
 * Read-heavy locking, printed as one JSON line:
 *
 *   php readheavy.php IMPL PORT SECONDS
 *
 * Ten forked workers on one name for SECONDS: nine readers (read lock, a
 * GET, a 1 ms sleep, release) and one writer (write lock, INCR, a 1 ms
 * sleep, release). Inside the lock each worker counts itself in and out of
 * shared counters, so a writer found with anyone else inside is counted as
 * a violation. IMPL:
 *   ext      RedisLock\Lock: acquireRead(true) / acquire(true), woken waits
 *   symfony  Symfony Lock on Symfony's RedisStore over phpredis: its
 *            acquireRead(true) and acquire(true) retry every ~100 ms
 */
declare(strict_types=1);

const TTL = 10;

/** @return callable(bool $write): callable(): void  takes the lock, returns its release */
function locker(string $impl, int $port): callable
{
    if ($impl === 'ext') {
        $lm = new RedisLock\LockManager("redis://127.0.0.1:$port");
        return function (bool $write) use ($lm) {
            $lock = $lm->createLock('bench:rw', TTL);
            $write ? $lock->acquire(true) : $lock->acquireRead(true);
            return fn () => $lock->release();
        };
    }
    require_once '/usr/share/php/Symfony/Component/Lock/autoload.php';
    $r = new Redis();
    $r->connect('127.0.0.1', $port);
    $factory = new Symfony\Component\Lock\LockFactory(new Symfony\Component\Lock\Store\RedisStore($r));
    return function (bool $write) use ($factory) {
        $lock = $factory->createLock('bench:rw', TTL, false);
        $write ? $lock->acquire(true) : $lock->acquireRead(true);
        return fn () => $lock->release();
    };
}

function quantile(array $sorted, float $p): float
{
    return $sorted ? $sorted[min(count($sorted) - 1, (int) floor($p * count($sorted)))] : 0.0;
}

[$impl, $port, $seconds] = [$argv[1], (int) $argv[2], (float) $argv[3]];
$admin = new Redis();
$admin->connect('127.0.0.1', $port);
$admin->flushAll();
$dir = sys_get_temp_dir() . '/rl-bench-rw-' . getmypid();
@mkdir($dir);
$workers = 10;
$start = microtime(true) + 0.5 + $workers * 0.02;
$pids = [];
for ($w = 0; $w < $workers; $w++) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        $write = $w === 0;
        $take = locker($impl, $port);
        $data = new Redis();
        $data->connect('127.0.0.1', $port);
        time_sleep_until($start);
        $end = $start + $seconds;
        $waits = [];
        $violations = 0;
        while (microtime(true) < $end) {
            $t0 = hrtime(true);
            $release = $take($write);
            $waits[] = (hrtime(true) - $t0) / 1e6;
            $inside = $data->incr('bench:rw:inside');
            if ($write) {
                $violations += $inside === 1 ? 0 : 1;
                $data->incr('bench:rw:writes');
            } else {
                $violations += (int) $data->get('bench:rw:writing');
            }
            $write && $data->set('bench:rw:writing', '1');
            usleep(1000);
            $write && $data->set('bench:rw:writing', '0');
            $data->decr('bench:rw:inside');
            $release();
        }
        file_put_contents("$dir/$w", json_encode(['waits' => $waits, 'violations' => $violations]));
        exit(0);
    }
    $pids[] = $pid;
}
$reads = [];
$writes = [];
$violations = 0;
foreach ($pids as $w => $pid) {
    pcntl_waitpid($pid, $status);
    $r = json_decode((string) file_get_contents("$dir/$w"), true);
    @unlink("$dir/$w");
    $w === 0 ? array_push($writes, ...$r['waits']) : array_push($reads, ...$r['waits']);
    $violations += $r['violations'];
}
@rmdir($dir);
sort($reads);
sort($writes);
echo json_encode([
    'mode' => 'readheavy',
    'impl' => $impl,
    'reads_per_s' => count($reads) / $seconds,
    'writes_per_s' => count($writes) / $seconds,
    'read_wait_p99_ms' => quantile($reads, 0.99),
    'write_wait_p50_ms' => quantile($writes, 0.5),
    'write_wait_p99_ms' => quantile($writes, 0.99),
    'write_wait_max_ms' => $writes ? end($writes) : 0.0,
    'violations' => $violations,
]), "\n";
