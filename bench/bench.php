<?php
/**
 * One benchmark measurement, printed as a JSON line.
 *
 *   php bench.php uncontended all  PORT CYCLES       (every IMPL and the floor, two PINGs)
 *   php bench.php contended   IMPL PORT WORKERS SECONDS
 *   php bench.php manykeys    IMPL PORT WORKERS SECONDS
 *   php bench.php rss         ext  PORT CYCLES
 *   php bench.php servercost  all  PORT CYCLES SERVER-LABEL
 *   php bench.php loop        IMPL PORT CYCLES   (one many-keys worker, no output:
 *                                                 run under valgrind by bench/run.sh)
 *
 * IMPL: ext (this extension), phpredis (SET NX PX + EVALSHA release, 1 ms
 * retry sleep), laravel (Illuminate\Cache\RedisStore lock over phpredis),
 * symfony (Symfony Lock RedisStore over phpredis), predis (predis userland).
 */
declare(strict_types=1);

interface Impl
{
    /** Try once. */
    public function tryAcquire(string $key): bool;

    /** Wait up to $seconds, the implementation's own way. */
    public function acquire(string $key, float $seconds): bool;

    public function release(): bool;
}

const TTL = 5;

/** The userland wait: try again after a 1 ms sleep. */
trait RetriesEveryMillisecond
{
    public function acquire(string $key, float $seconds): bool
    {
        $end = microtime(true) + $seconds;
        while (!$this->tryAcquire($key)) {
            if (microtime(true) >= $end) {
                return false;
            }
            usleep(1000);
        }
        return true;
    }
}

final class Ext implements Impl
{
    private RedisLock\RedisMutex $m;
    private string $key = '';

    public function __construct(int $port)
    {
        $this->m = new RedisLock\RedisMutex("redis://127.0.0.1:$port");
    }

    public function tryAcquire(string $key): bool
    {
        $this->key = $key;
        return $this->m->acquire($key, TTL);
    }

    public function acquire(string $key, float $seconds): bool
    {
        $this->key = $key;
        return $this->m->acquire($key, TTL, $seconds);
    }

    public function release(): bool
    {
        return $this->m->release($this->key);
    }
}

/** What a careful WordPress plugin writes. */
final class Phpredis implements Impl
{
    private const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    private Redis $r;
    private string $sha;
    private string $key = '';
    private string $token = '';

    public function __construct(int $port)
    {
        $this->r = new Redis();
        $this->r->connect('127.0.0.1', $port);
        $this->sha = $this->r->script('load', self::RELEASE);
    }

    public function tryAcquire(string $key): bool
    {
        $this->key = $key;
        $this->token = bin2hex(random_bytes(16));
        return (bool) $this->r->set($key, $this->token, ['nx', 'px' => TTL * 1000]);
    }

    use RetriesEveryMillisecond;

    public function release(): bool
    {
        return (bool) $this->r->evalSha($this->sha, [$this->key, $this->token], 1);
    }
}

/**
 * phpredis userland sending what the extension sends on a free lock: SET NX
 * PX with GET, a `lock:{name}` key, a 36-byte token (server time only: the
 * anchor that tells what the extension's command shapes cost Redis).
 */
final class PhpredisShaped implements Impl
{
    private const RELEASE = "local v = redis.call('get', KEYS[1]) if v == ARGV[1] then return redis.call('del', KEYS[1]) end if v == ARGV[1] .. '\\0w' then return -1 end return 0";
    private Redis $r;
    private string $sha;
    private string $key = '';
    private string $token = '';

    public function __construct(int $port)
    {
        $this->r = new Redis();
        $this->r->connect('127.0.0.1', $port);
        $this->sha = $this->r->script('load', self::RELEASE);
    }

    public function tryAcquire(string $key): bool
    {
        $this->key = 'lock:{' . $key . '}';
        $this->token = bin2hex(random_bytes(18));
        return $this->r->rawCommand('SET', $this->key, $this->token, 'NX', 'PX', TTL * 1000, 'GET') === false;
    }

    use RetriesEveryMillisecond;

    public function release(): bool
    {
        return $this->r->evalSha($this->sha, [$this->key, $this->token], 1) === 1;
    }
}

final class Predis implements Impl
{
    private const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    private Predis\Client $r;
    private string $sha;
    private string $key = '';
    private string $token = '';

    public function __construct(int $port)
    {
        require_once '/usr/share/php/Predis/autoload.php';
        $this->r = new Predis\Client(['host' => '127.0.0.1', 'port' => $port]);
        $this->sha = $this->r->script('load', self::RELEASE);
    }

    public function tryAcquire(string $key): bool
    {
        $this->key = $key;
        $this->token = bin2hex(random_bytes(16));
        return $this->r->set($key, $this->token, 'PX', TTL * 1000, 'NX') !== null;
    }

    use RetriesEveryMillisecond;

    public function release(): bool
    {
        return (bool) $this->r->evalsha($this->sha, 1, $this->key, $this->token);
    }
}

final class Laravel implements Impl
{
    private Illuminate\Cache\RedisStore $store;
    private ?Illuminate\Contracts\Cache\Lock $lock = null;

    public function __construct(int $port)
    {
        require_once '/usr/share/php/Illuminate/autoload.php';
        $app = new Illuminate\Container\Container();
        $redis = new Illuminate\Redis\RedisManager($app, 'phpredis', [
            'default' => ['host' => '127.0.0.1', 'port' => $port, 'database' => 0],
        ]);
        $this->store = new Illuminate\Cache\RedisStore($redis, '', 'default');
    }

    public function tryAcquire(string $key): bool
    {
        $this->lock = $this->store->lock($key, TTL);
        return $this->lock->get();
    }

    public function acquire(string $key, float $seconds): bool
    {
        $this->lock = $this->store->lock($key, TTL);
        try {
            return $this->lock->block($seconds);
        } catch (Illuminate\Contracts\Cache\LockTimeoutException) {
            return false;
        }
    }

    public function release(): bool
    {
        return $this->lock->release();
    }
}

final class Symfony implements Impl
{
    private Symfony\Component\Lock\LockFactory $factory;
    private ?Symfony\Component\Lock\LockInterface $lock = null;

    public function __construct(int $port)
    {
        require_once '/usr/share/php/Symfony/Component/Lock/autoload.php';
        $redis = new Redis();
        $redis->connect('127.0.0.1', $port);
        $this->factory = new Symfony\Component\Lock\LockFactory(new Symfony\Component\Lock\Store\RedisStore($redis, TTL));
    }

    public function tryAcquire(string $key): bool
    {
        $this->lock = $this->factory->createLock($key, TTL, false);
        return $this->lock->acquire();
    }

    public function acquire(string $key, float $seconds): bool
    {
        // Symfony's blocking acquire has no time limit.
        $this->lock = $this->factory->createLock($key, TTL, false);
        return $this->lock->acquire(true);
    }

    public function release(): bool
    {
        $this->lock->release();
        return true;
    }
}

function impl(string $name, int $port): Impl
{
    return match ($name) {
        'ext' => new Ext($port),
        'phpredis' => new Phpredis($port),
        'predis' => new Predis($port),
        'laravel' => new Laravel($port),
        'symfony' => new Symfony($port),
    };
}

function cpu(): float
{
    $u = getrusage();
    return $u['ru_utime.tv_sec'] + $u['ru_utime.tv_usec'] / 1e6 + $u['ru_stime.tv_sec'] + $u['ru_stime.tv_usec'] / 1e6;
}

function percentile(array $sorted, float $p): float
{
    if (!$sorted) {
        return 0.0;
    }
    return $sorted[min(count($sorted) - 1, (int) floor($p * count($sorted)))];
}

function out(array $row): void
{
    // BENCH_METRICS (bench/run.sh, part metricscost): the row is one side of
    // the metrics-off / metrics-on comparison of the part it measured.
    $metrics = getenv('BENCH_METRICS');
    if ($metrics !== false && $metrics !== '') {
        $row = ['mode' => 'metricscost', 'part' => $row['mode'], 'metrics' => $metrics] + $row;
    }
    echo json_encode($row), "\n";
}

/** Forks $workers processes running $work($index, $end) from a common start; returns their arrays. */
function fork_workers(int $workers, float $seconds, callable $work): array
{
    $dir = sys_get_temp_dir() . '/rl-bench-' . getmypid();
    @mkdir($dir);
    $start = microtime(true) + 0.5 + $workers * 0.01; // time for every worker to get ready
    $pids = [];
    for ($w = 0; $w < $workers; $w++) {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $ready = $work($w, null, null); // set up (connect) before the start
            time_sleep_until($start);
            file_put_contents("$dir/$w", json_encode($ready($start + $seconds)));
            exit(0);
        }
        $pids[] = $pid;
    }
    $results = [];
    foreach ($pids as $w => $pid) {
        pcntl_waitpid($pid, $status);
        $results[] = json_decode((string) file_get_contents("$dir/$w"), true);
        @unlink("$dir/$w");
    }
    @rmdir($dir);
    return $results;
}

/**
 * Redis server time per command since the last CONFIG RESETSTAT, from INFO
 * commandstats: [command => usec], without the CONFIG and INFO of the
 * measurement itself.
 */
function command_usec(Redis $r): array
{
    $usec = [];
    foreach ($r->info('commandstats') as $name => $line) {
        $command = substr((string) $name, strlen('cmdstat_'));
        if (in_array($command, ['config', 'info', 'config|resetstat'], true)) {
            continue;
        }
        if (preg_match('/usec=(\d+)/', (string) $line, $m)) {
            $usec[$command] = (int) $m[1];
        }
    }
    return $usec;
}

/**
 * The commands the implementations send themselves (the rest of
 * commandstats runs inside their scripts, whose time includes it). Every
 * SET here is an acquire's: no script of the uncontended path writes one.
 */
const CLIENT_COMMANDS = ['set', 'evalsha', 'eval', 'blpop', 'delifeq', 'delex'];

/** Whether the server has a native compare-and-delete (Valkey 9 DELIFEQ, Redis 8.4 DELEX). */
function native_delete(Redis $r): string
{
    foreach (['delifeq', 'delex'] as $command) {
        $info = $r->rawCommand('COMMAND', 'INFO', $command);
        if (is_array($info) && ($info[0] ?? null)) {
            return $command;
        }
    }
    return '';
}

/** One key name per servercost kind, all of one length (key length costs Redis time too). */
function servercost_key(string $kind): string
{
    return 'bench:servercost:' . substr(md5($kind), 0, 8);
}

/** The server's main-thread CPU time so far, in seconds (INFO cpu). */
function server_cpu(Redis $r): float
{
    $c = $r->info('cpu');
    return (float) ($c['used_cpu_user_main_thread'] ?? $c['used_cpu_user']) + (float) ($c['used_cpu_sys_main_thread'] ?? $c['used_cpu_sys']);
}

function total_commands(Redis $r): int
{
    return (int) $r->info('stats')['total_commands_processed'];
}

[$mode, $name, $port] = [$argv[1], $argv[2], (int) $argv[3]];
$admin = new Redis();
$admin->connect('127.0.0.1', $port);

switch ($mode) {
    case 'uncontended':
        // All implementations (and the floor) in one process, alternating in
        // short blocks: drift of this machine's speed during a round then
        // falls on all of them alike, which is what the ratios need.
        $cycles = (int) $argv[4];
        $names = $name === 'all' ? ['floor', 'ext', 'phpredis', 'laravel', 'symfony', 'predis'] : ['floor', $name];
        $cycle = [];
        foreach ($names as $impl) {
            if ($impl === 'floor') {
                $cycle[$impl] = function () use ($admin): void {
                    $admin->ping();
                    $admin->ping();
                };
                continue;
            }
            $lock = impl($impl, $port);
            $lock->tryAcquire('warm') && $lock->release();
            $cycle[$impl] = function () use ($lock, $impl): void {
                if (!$lock->tryAcquire('bench:uncontended')) {
                    fwrite(STDERR, "$impl: uncontended acquire failed\n");
                    exit(1);
                }
                $lock->release();
            };
        }
        $block = 100;
        $spent = array_fill_keys($names, ['ns' => 0, 'cpu' => 0.0]);
        mt_srand(1);
        for ($b = 0; $b < intdiv($cycles, $block); $b++) {
            // A new order each block: no one always runs first or after the same neighbour.
            $order = $names;
            shuffle($order);
            foreach ($order as $impl) {
                $run = $cycle[$impl];
                $c0 = cpu();
                $t0 = hrtime(true);
                for ($i = 0; $i < $block; $i++) {
                    $run();
                }
                $spent[$impl]['ns'] += hrtime(true) - $t0;
                $spent[$impl]['cpu'] += cpu() - $c0;
            }
        }
        $done = intdiv($cycles, $block) * $block;
        foreach ($names as $impl) {
            out(['mode' => 'uncontended', 'impl' => $impl, 'us_per_cycle' => $spent[$impl]['ns'] / 1e3 / $done, 'cpu_us_per_cycle' => $spent[$impl]['cpu'] * 1e6 / $done]);
        }
        break;

    case 'contended':
    case 'manykeys':
        [$workers, $seconds] = [(int) $argv[4], (float) $argv[5]];
        $admin->set('bench:counter', '0');
        for ($w = 0; $w < $workers; $w++) {
            $admin->set("bench:counter:$w", '0');
        }
        $commands0 = total_commands($admin);
        $server_cpu0 = server_cpu($admin);
        $results = fork_workers($workers, $seconds, function (int $w) use ($name, $port, $mode) {
            $impl = impl($name, $port);
            $data = new Redis();
            $data->connect('127.0.0.1', $port);
            $key = $mode === 'manykeys' ? "bench:key:$w" : 'bench:contended';
            $counter = $mode === 'manykeys' ? "bench:counter:$w" : 'bench:counter';
            return function (float $end) use ($impl, $data, $key, $counter, $port) {
                $n = 0;
                $waits = [];
                $failed = 0;
                $cpu0 = getrusage();
                while (microtime(true) < $end) {
                    $t0 = hrtime(true);
                    if (!$impl->acquire($key, 30)) {
                        $failed++;
                        continue;
                    }
                    $waits[] = (hrtime(true) - $t0) / 1e9;
                    $value = (int) $data->get($counter);
                    $data->set($counter, (string) ($value + 1));
                    $impl->release();
                    $n++;
                }
                $cpu1 = getrusage();
                $us = fn (string $k) => ($cpu1["ru_$k.tv_sec"] - $cpu0["ru_$k.tv_sec"]) * 1e6 + $cpu1["ru_$k.tv_usec"] - $cpu0["ru_$k.tv_usec"];
                return ['n' => $n, 'failed' => $failed, 'waits' => $waits, 'user_us' => $us('utime'), 'sys_us' => $us('stime'), 'rss_kb' => (int) (preg_match('/VmRSS:\s+(\d+)/', file_get_contents('/proc/self/status'), $m) ? $m[1] : 0)];
            };
        });
        $commands = total_commands($admin) - $commands0 - 1;
        $server_cpu = server_cpu($admin) - $server_cpu0;
        $counts = array_column($results, 'n');
        $total = array_sum($counts);
        $waits = array_merge(...array_column($results, 'waits'));
        sort($waits);
        $squares = array_sum(array_map(fn ($x) => $x * $x, $counts));
        $counter = $mode === 'manykeys'
            ? array_sum(array_map(fn ($w) => (int) $admin->get("bench:counter:$w"), range(0, $workers - 1)))
            : (int) $admin->get('bench:counter');
        out([
            'mode' => $mode, 'impl' => $name, 'workers' => $workers, 'seconds' => $seconds,
            'cycles' => $total, 'cycles_per_s' => $total / $seconds,
            'wait_p50_ms' => percentile($waits, 0.50) * 1e3, 'wait_p99_ms' => percentile($waits, 0.99) * 1e3,
            'wait_max_ms' => ($waits ? end($waits) : 0) * 1e3,
            // The GET and SET of the increment are not the lock's.
            'commands_per_acquisition' => $total ? ($commands - 2 * $total) / $total : null,
            'per_worker_min' => min($counts), 'per_worker_max' => max($counts),
            'jain' => $squares ? ($total * $total) / ($workers * $squares) : null,
            'exact' => $counter === $total,
            'failed' => array_sum(array_column($results, 'failed')),
            // CPU per cycle of the workers (user, system) and of Redis: on
            // this loop, all share the machine's cores.
            'client_user_us_per_cycle' => $total ? array_sum(array_column($results, 'user_us')) / $total : null,
            'client_sys_us_per_cycle' => $total ? array_sum(array_column($results, 'sys_us')) / $total : null,
            'server_cpu_us_per_cycle' => $total ? $server_cpu * 1e6 / $total : null,
        ]);
        break;

    case 'servercost':
        // Redis server time per uncontended acquire + release, from INFO
        // commandstats (the time the server spent running each command):
        // what bounds how many cycles one single-threaded server can serve.
        // The implementations take turns in blocks of 1000 cycles in a
        // shuffled order, each block between a CONFIG RESETSTAT and an INFO,
        // so that drift in the machine's speed falls on all of them alike.
        // Commands run inside a script appear in commandstats under their own
        // names and inside the script's time too: the total counts only the
        // commands the clients send.
        [$cycles, $label] = [(int) $argv[4], $argv[5]];
        $server = $admin->info('server');
        $version = $server['valkey_version'] ?? $server['redis_version'];
        $kinds = [
            'ext' => fn (Impl $l, string $k) => $l->tryAcquire($k),
            'ext-wait' => fn (Impl $l, string $k) => $l->acquire($k, 2.0),
            'phpredis' => fn (Impl $l, string $k) => $l->tryAcquire($k),
            'phpredis-shaped' => fn (Impl $l, string $k) => $l->tryAcquire($k),
        ];
        $locks = [];
        foreach ($kinds as $kind => $acquire) {
            $locks[$kind] = match ($kind) {
                'ext-wait' => impl('ext', $port),
                'phpredis-shaped' => new PhpredisShaped($port),
                default => impl($kind, $port),
            };
            for ($i = 0; $i < 100; $i++) { // connect, load the scripts, detect the server
                $acquire($locks[$kind], servercost_key($kind)) && $locks[$kind]->release();
            }
        }
        $block = 1000;
        $usec = array_fill_keys(array_keys($kinds), []);
        $cpu = array_fill_keys(array_keys($kinds), 0.0);
        mt_srand(2);
        for ($b = 0; $b < intdiv($cycles, $block); $b++) {
            $order = array_keys($kinds);
            shuffle($order);
            foreach ($order as $kind) {
                [$lock, $acquire, $key] = [$locks[$kind], $kinds[$kind], servercost_key($kind)];
                $admin->rawCommand('CONFIG', 'RESETSTAT');
                $cpu0 = server_cpu($admin);
                for ($i = 0; $i < $block; $i++) {
                    if (!$acquire($lock, $key) || !$lock->release()) {
                        fwrite(STDERR, "$kind: uncontended cycle failed\n");
                        exit(1);
                    }
                }
                $cpu[$kind] += server_cpu($admin) - $cpu0;
                foreach (command_usec($admin) as $command => $u) {
                    $usec[$kind][$command] = ($usec[$kind][$command] ?? 0) + $u;
                }
            }
        }
        $done = intdiv($cycles, $block) * $block;
        $native = native_delete($admin);
        foreach ($kinds as $kind => $_) {
            $sent = array_intersect_key($usec[$kind], array_flip(CLIENT_COMMANDS));
            out([
                'mode' => 'servercost', 'impl' => $kind, 'server' => $label, 'version' => $version,
                'native_delete' => $native, 'cycles' => $done,
                'us_per_cycle' => array_sum($sent) / $done,
                'server_cpu_us_per_cycle' => $cpu[$kind] * 1e6 / $done,
                'by_command' => array_map(fn ($u) => $u / $done, $usec[$kind]),
            ]);
        }
        break;

    case 'metricsload':
        // What the host's metrics show under load (README's plot): 12 workers
        // on 3 keys for $seconds, each holding its lock 2-6 ms, while this
        // process reads Metrics::snapshot() every 100 ms. One row of samples.
        $seconds = (float) $argv[4];
        $pid = pcntl_fork();
        if ($pid === 0) {
            fork_workers(12, $seconds, function (int $w) use ($port) {
                $lm = new RedisLock\LockManager("redis://127.0.0.1:$port");
                return function (float $end) use ($lm, $w) {
                    $n = 0;
                    while (microtime(true) < $end) {
                        $lock = $lm->createLock('load:' . ($w % 3), 5);
                        if ($lock->block(5)) {
                            usleep(2000 + ($w % 3) * 2000);
                            $lock->release();
                            $n++;
                        }
                    }
                    return ['n' => $n];
                };
            });
            exit(0);
        }
        $samples = [];
        $t0 = microtime(true);
        do {
            $s = RedisLock\Metrics::snapshot();
            $samples[] = [
                't' => round(microtime(true) - $t0, 3),
                'acquired' => $s['acquires']['lock']['acquired'],
                'held' => $s['held']['lock'], 'waiting' => $s['waiting']['lock'],
                'wait_count' => $s['wait_seconds']['lock']['count'], 'wait_sum' => $s['wait_seconds']['lock']['sum'],
            ];
            usleep(100_000);
        } while (pcntl_waitpid($pid, $status, WNOHANG) === 0);
        out(['mode' => 'metricsload', 'impl' => 'ext', 'workers' => 12, 'keys' => 3, 'seconds' => $seconds, 'samples' => $samples]);
        break;

    case 'loop':
        // The many-keys loop in this one process, for counting the client's
        // instructions per cycle (bench/run.sh, part instructions).
        $impl = impl($name, $port);
        $data = new Redis();
        $data->connect('127.0.0.1', $port);
        for ($i = 0; $i < (int) $argv[4]; $i++) {
            if (!$impl->acquire('bench:key:loop', 30)) {
                fwrite(STDERR, "$name: acquire failed\n");
                exit(1);
            }
            $value = (int) $data->get('bench:counter:loop');
            $data->set('bench:counter:loop', (string) ($value + 1));
            $impl->release();
        }
        break;

    case 'rss':
        $cycles = (int) $argv[4];
        $impl = impl($name, $port);
        $rss = fn () => (int) (preg_match('/VmRSS:\s+(\d+)/', file_get_contents('/proc/self/status'), $m) ? $m[1] : 0);
        $at10k = 0;
        for ($i = 1; $i <= $cycles; $i++) {
            $impl->tryAcquire('bench:rss') && $impl->release();
            if ($i === 10_000) {
                $at10k = $rss();
            }
        }
        $conns = count($admin->client('list')) - 1;
        out(['mode' => 'rss', 'impl' => $name, 'cycles' => $cycles, 'rss_kb_10k' => $at10k, 'rss_kb_end' => $rss(), 'connections' => $conns]);
        break;
}
