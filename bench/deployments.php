<?php
/**
 * Acquire + release cycles on each deployment, in one run, taking turns in
 * blocks: one node, a three-master cluster, Redlock over five masters (the
 * extension asks them in parallel), and a userland Redlock over phpredis that
 * asks the masters one after another, as the PHP Redlock libraries do.
 * Prints one JSON line per implementation: median us per cycle over rounds.
 *
 *   php bench/deployments.php NETWORK HOST ONE_PORT CLUSTER_SEEDS REDLOCK_PORTS ROUNDS CYCLES
 *   (CLUSTER_SEEDS and REDLOCK_PORTS comma-separated; NETWORK labels the lines)
 */
declare(strict_types=1);

[$_, $network, $host, $onePort, $seeds, $redlockPorts, $rounds, $cycles] = $argv;
$redlockPorts = explode(',', $redlockPorts);
$ttl = 5;

/** The userland Redlock of the PHP libraries: SET NX PX, then EVALSHA compare-and-delete, master by master. */
final class SequentialRedlock
{
    private const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    /** @var list<Redis> */
    private array $masters = [];
    private string $sha;
    private string $token = '';

    public function __construct(string $host, array $ports)
    {
        foreach ($ports as $port) {
            $r = new Redis();
            $r->connect($host, (int) $port, 1.0);
            $this->masters[] = $r;
        }
        $this->sha = sha1(self::RELEASE);
        foreach ($this->masters as $r) {
            $r->script('load', self::RELEASE);
        }
    }

    public function acquire(string $key, int $ttlMs): bool
    {
        $this->token = bin2hex(random_bytes(16));
        $start = hrtime(true);
        $n = 0;
        foreach ($this->masters as $r) {
            if ($r->set($key, $this->token, ['NX', 'PX' => $ttlMs])) {
                $n++;
            }
        }
        $validity = $ttlMs - (hrtime(true) - $start) / 1e6 - ($ttlMs * 0.01 + 2);
        if ($n >= intdiv(count($this->masters), 2) + 1 && $validity > 0) {
            return true;
        }
        $this->release($key);
        return false;
    }

    public function release(string $key): bool
    {
        $n = 0;
        foreach ($this->masters as $r) {
            $n += (int) $r->evalSha($this->sha, [$key, $this->token], 1);
        }
        return $n >= intdiv(count($this->masters), 2) + 1;
    }
}

$dsns = array_map(fn ($p) => "redis://$host:$p", $redlockPorts);
$impls = [
    'one node' => new RedisLock\RedisMutex("redis://$host:$onePort"),
    'cluster (3 masters)' => new RedisLock\RedisMutex("redis-cluster://$seeds"),
    'Redlock, 5 masters' => new RedisLock\RedisMutex($dsns),
    'Redlock, 3 masters' => new RedisLock\RedisMutex(array_slice($dsns, 0, 3)),
    'userland Redlock over phpredis, 5 masters one after another' => new SequentialRedlock($host, $redlockPorts),
];
/**
 * The floor of asking N servers: a PING written to each of N raw sockets,
 * then each reply read (no lock logic, no client library).
 */
function pinger(string $host, array $ports): Closure
{
    $socks = array_map(fn ($p) => stream_socket_client("tcp://$host:$p", $errno, $errstr, 1.0), $ports);
    return function () use ($socks): void {
        foreach ([1, 2] as $_) { // two commands per cycle, as acquire + release
            foreach ($socks as $s) {
                fwrite($s, "PING\r\n");
            }
            foreach ($socks as $s) {
                fgets($s) === "+PONG\r\n" || throw new RuntimeException('PING failed');
            }
        }
    };
}

$cycle = [
    'floor: 2 PINGs to one server' => pinger($host, [$onePort]),
    'floor: 2 PINGs to each of 5 servers, written to all before reading' => pinger($host, $redlockPorts),
];
foreach ($impls as $name => $impl) {
    $cycle[$name] = $impl instanceof SequentialRedlock
        ? function () use ($impl, $ttl): void {
            $impl->acquire('bench:deploy', $ttl * 1000) && $impl->release('bench:deploy') || throw new RuntimeException('userland redlock cycle failed');
        }
        : function () use ($impl, $ttl, $name): void {
            $impl->acquire('bench:deploy', $ttl) && $impl->release('bench:deploy') || throw new RuntimeException("$name cycle failed");
        };
    for ($i = 0; $i < 200; $i++) {
        $cycle[$name]();  // warm: connections, scripts, slot map
    }
}
$perRound = [];
for ($round = 0; $round < (int) $rounds; $round++) {
    foreach ($cycle as $name => $run) {
        $start = hrtime(true);
        for ($i = 0; $i < (int) $cycles; $i++) {
            $run();
        }
        $perRound[$name][] = (hrtime(true) - $start) / 1e3 / (int) $cycles;
    }
}
foreach ($perRound as $name => $us) {
    sort($us);
    echo json_encode(['mode' => 'deployment', 'network' => $network, 'impl' => $name, 'us_per_cycle' => $us[intdiv(count($us), 2)],
        'min' => $us[0], 'max' => end($us), 'rounds' => count($us), 'cycles' => (int) $cycles]), "\n";
}

/*
 * Contended: 8 forked workers on one key, each cycle a GET then SET of a
 * counter on the one-node server inside the lock, for 3 s: what Redlock's
 * random-retry waits cost against one server's woken, in-order grants.
 */
$contended = [
    'one node' => fn () => new RedisLock\RedisMutex("redis://$host:$onePort"),
    'Redlock, 5 masters' => fn () => new RedisLock\RedisMutex($dsns),
];
foreach ($contended as $name => $make) {
    $admin = new Redis();
    $admin->connect($host, (int) $onePort);
    $admin->set('bench:deploy:n', '0');
    $seconds = 3.0;
    $dir = sys_get_temp_dir() . '/rl-deploy-' . getmypid();
    @mkdir($dir);
    $start = microtime(true) + 0.5;
    $pids = [];
    for ($w = 0; $w < 8; $w++) {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $m = $make();
            $r = new Redis();
            $r->connect($host, (int) $onePort);
            time_sleep_until($start);
            $end = $start + $seconds;
            $waits = [];
            while (microtime(true) < $end) {
                $t = hrtime(true);
                if (!$m->acquire('bench:deploy:hot', 5, 10)) {
                    continue;
                }
                $waits[] = (hrtime(true) - $t) / 1e6;
                $r->set('bench:deploy:n', (string) ((int) $r->get('bench:deploy:n') + 1));
                $m->release('bench:deploy:hot');
            }
            file_put_contents("$dir/$w", json_encode($waits));
            exit(0);
        }
        $pids[] = $pid;
    }
    $all = [];
    $counts = [];
    foreach ($pids as $w => $pid) {
        pcntl_waitpid($pid, $status);
        $waits = json_decode((string) file_get_contents("$dir/$w"), true) ?: [];
        @unlink("$dir/$w");
        $counts[] = count($waits);
        $all = array_merge($all, $waits);
    }
    @rmdir($dir);
    sort($all);
    $total = array_sum($counts);
    $jain = $total ? ($total ** 2) / (count($counts) * array_sum(array_map(fn ($c) => $c * $c, $counts))) : 0.0;
    $p = fn (float $q) => $all ? $all[min(count($all) - 1, (int) floor($q * count($all)))] : 0.0;
    echo json_encode(['mode' => 'deployment-contended', 'impl' => $name, 'workers' => 8,
        'cycles_per_s' => $total / $seconds, 'wait_p50_ms' => $p(0.5), 'wait_p99_ms' => $p(0.99),
        'wait_max_ms' => $all ? end($all) : 0.0, 'per_worker_min' => min($counts), 'per_worker_max' => max($counts),
        'jain' => $jain, 'exact' => (int) $admin->get('bench:deploy:n') === $total]), "\n";
}
