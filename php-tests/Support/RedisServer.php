<?php
declare(strict_types=1);

namespace RedisLock\Tests;

/**
 * A real redis-server on a free loopback port, stopped by the process that started it.
 * REDIS_LOCK_TEST_SERVER names the binary (default redis-server; valkey-server
 * takes the same arguments), so the suite runs against each server of the matrix.
 */
final class RedisServer
{
    private int $owner;
    private bool $stopped = false;

    private function __construct(public readonly int $port, private string $dir, private bool $tls = false)
    {
        $this->owner = getmypid();
        // Forked workers inherit this object: only the starting process stops it.
        register_shutdown_function(function (): void {
            if (getmypid() === $this->owner) {
                $this->stop();
            }
        });
    }

    /** The server binary the suite runs against. */
    public static function binary(): string
    {
        $binary = getenv('REDIS_LOCK_TEST_SERVER');
        return $binary === false || $binary === '' ? 'redis-server' : $binary;
    }

    public static function freePort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($socket, false);
        fclose($socket);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /**
     * A free port for a cluster node: it also listens on the port + 10000, so
     * the port must be at most 55535 (the kernel hands out up to 60999).
     */
    public static function freeClusterPort(): int
    {
        do {
            $port = self::freePort();
        } while ($port > 55535);
        return $port;
    }

    /**
     * Starts a server; with $tls = [cert, key, ca] it listens only on a TLS port.
     * Without $port, a free one; if another process takes it first, another.
     */
    public static function start(?int $port = null, array $args = [], ?array $tls = null): self
    {
        for ($attempt = 1; ; $attempt++) {
            $server = self::startOn($port ?? self::freePort(), $args, $tls);
            if ($server !== null) {
                return $server;
            }
            if ($port !== null || $attempt >= 20) {
                throw new \RuntimeException(self::binary() . ' could not have port ' . ($port ?? 'after 20 tries')
                    . ': another process holds it');
            }
        }
    }

    /** The started server, or null when another process holds the port. */
    private static function startOn(int $port, array $args, ?array $tls): ?self
    {
        if ($tls !== null) {
            [$cert, $key, $ca] = $tls;
            $args = array_merge($args, ['--tls-port', (string) $port, '--tls-cert-file', $cert,
                '--tls-key-file', $key, '--tls-ca-cert-file', $ca, '--tls-auth-clients', 'no']);
        }
        // Per process: another process's server on the same port keeps its files.
        $dir = sys_get_temp_dir() . "/redis-lock-test-$port-" . getmypid();
        @mkdir($dir);
        @unlink("$dir/redis.pid");
        @unlink("$dir/redis.log");
        $cmd = sprintf(
            '%s --port %d --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile %s --logfile %s --dir %s %s',
            escapeshellarg(self::binary()),
            $tls === null ? $port : 0,
            escapeshellarg("$dir/redis.pid"),
            escapeshellarg("$dir/redis.log"),
            escapeshellarg($dir),
            implode(' ', array_map('escapeshellarg', $args))
        );
        exec($cmd, $out, $code);
        if ($code !== 0) {
            throw new \RuntimeException(self::binary() . " failed to start: " . implode("\n", $out));
        }
        $server = new self($port, $dir, $tls !== null);
        // Ready when our server answers PING: a server that could not bind
        // exits before it writes its pid file, and whoever answers on the
        // port then is another process's server.
        $deadline = microtime(true) + 10;
        while (true) {
            if (str_contains((string) @file_get_contents("$dir/redis.log"), 'Address already in use')) {
                $server->stopped = true;
                return null;
            }
            $reply = $server->ping();
            if ($reply === '+PONG' || $reply === '-NOAUTH') {
                $pid = $server->pid();
                if ($pid > 0 && ($reply === '-NOAUTH' || $server->processId() === $pid)) {
                    return $server;
                }
                if ($pid > 0) {
                    $server->stopped = true; // a pid file of ours, another's server: not ours to stop
                    return null;
                }
            }
            if (microtime(true) > $deadline) {
                throw new \RuntimeException(self::binary() . " on $port did not start: "
                    . @file_get_contents("$dir/redis.log"));
            }
            usleep(20_000);
        }
    }

    /**
     * Starts $masters servers with cluster mode on and makes them one cluster
     * (redis-cli, or valkey-cli for valkey-server, `--cluster create`, no
     * replicas); returns once every node says cluster_state:ok.
     *
     * @return list<self>
     */
    public static function startCluster(int $masters): array
    {
        $nodes = [];
        for ($i = 0; $i < $masters; $i++) {
            $port = self::freeClusterPort();
            $nodes[] = self::start($port, ['--cluster-enabled', 'yes',
                '--cluster-config-file', "nodes-$port.conf", '--cluster-node-timeout', '1000']);
        }
        $cli = str_ends_with(self::binary(), 'valkey-server') ? 'valkey-cli' : 'redis-cli';
        $cmd = escapeshellarg($cli) . ' --cluster create '
            . implode(' ', array_map(fn (self $n) => "127.0.0.1:{$n->port}", $nodes))
            . ' --cluster-replicas 0 --cluster-yes 2>&1';
        exec($cmd, $out, $code);
        if ($code !== 0) {
            throw new \RuntimeException("$cli --cluster create failed: " . implode("\n", $out));
        }
        self::waitForCluster($nodes);
        return $nodes;
    }

    /**
     * Returns once every node of $nodes says cluster_state:ok, knows all the
     * others (no handshake left) and sees the same slot map covering all
     * 16384 slots: cluster_state:ok on one node says nothing of what the
     * node a client is redirected to believes.
     *
     * @param list<self> $nodes
     */
    public static function waitForCluster(array $nodes, float $limit = 20.0): void
    {
        $deadline = microtime(true) + $limit;
        while (true) {
            $seen = [];
            foreach ($nodes as $node) {
                try {
                    $client = $node->client();
                    $info = (string) $client->rawCommand('CLUSTER', 'INFO');
                    $ranges = [];
                    foreach ((array) $client->rawCommand('CLUSTER', 'SLOTS') as $range) {
                        $ranges[] = "{$range[0]}-{$range[1]}@{$range[2][1]}";
                    }
                    sort($ranges);
                    $ok = str_contains($info, 'cluster_state:ok')
                        && str_contains($info, 'cluster_known_nodes:' . count($nodes) . "\r\n");
                    $seen[$node->port] = ($ok ? 'ok ' : 'not ok ') . implode(' ', $ranges);
                } catch (\RedisException $e) {
                    $seen[$node->port] = 'no answer: ' . $e->getMessage();
                }
            }
            $maps = array_unique($seen);
            if (count($maps) === 1 && str_starts_with(reset($maps), 'ok ') && self::covered(reset($maps)) === 16384) {
                return;
            }
            if (microtime(true) > $deadline) {
                throw new \RuntimeException('the cluster did not agree on one slot map: ' . json_encode($seen));
            }
            usleep(50_000);
        }
    }

    /** How many slots the ranges of a map line ("ok 0-5460@port ...") cover. */
    private static function covered(string $map): int
    {
        $slots = 0;
        foreach (array_slice(explode(' ', $map), 1) as $range) {
            [$from, $to] = explode('-', explode('@', $range)[0]);
            $slots += (int) $to - (int) $from + 1;
        }
        return $slots;
    }

    /**
     * Makes this server a replica of $master and returns once it has
     * acknowledged the master's offset after a write made once the link was
     * up. `state=online` on the master and `master_link_status:up` here are
     * not enough, nor is a bare WAIT: while the master's offset is still 0
     * WAIT counts every online replica at once, and on redis-server 7.0 a
     * replica can go on acknowledging offset 0 for about a second after it
     * shows online (a `WAIT 1 300` then answers 0 after 300 ms).
     */
    public function replicaOf(self $master, float $limit = 20.0): void
    {
        $master->client()->config('SET', 'repl-diskless-sync-delay', '0');
        $this->client()->rawCommand('REPLICAOF', '127.0.0.1', (string) $master->port);
        $deadline = microtime(true) + $limit;
        $probe = $master->client();
        while (true) {
            $probe->incr('redis-lock-test:replication-probe');
            $info = (string) $probe->rawCommand('INFO', 'replication');
            $wanted = preg_match('/^master_repl_offset:(\d+)/m', $info, $m) ? (int) $m[1] : 0;
            $probe->rawCommand('WAIT', '1', '100'); // asks the replica for its offset
            $info = (string) $probe->rawCommand('INFO', 'replication');
            if ($wanted > 0 && preg_match('/^slave\d+:.*state=online,offset=(\d+)/m', $info, $m) && (int) $m[1] >= $wanted) {
                return;
            }
            if (microtime(true) > $deadline) {
                throw new \RuntimeException("the replica on {$this->port} did not acknowledge its master {$master->port}: $info");
            }
            usleep(20_000);
        }
    }

    public function dsn(): string
    {
        return "redis://127.0.0.1:{$this->port}";
    }

    public function pid(): int
    {
        return (int) trim((string) @file_get_contents("{$this->dir}/redis.pid"));
    }

    /** A plain phpredis connection, to look at what the extension stored. */
    public function client(): \Redis
    {
        $redis = new \Redis();
        if ($this->tls) {
            $redis->connect('tls://127.0.0.1', $this->port, 2.0, null, 0, 0,
                ['stream' => ['verify_peer' => false, 'verify_peer_name' => false]]);
        } else {
            $redis->connect('127.0.0.1', $this->port, 2.0);
        }
        return $redis;
    }

    /** Whether the server on this port serves commands (PONG, or -NOAUTH with ACLs; not -LOADING). */
    public function answers(): bool
    {
        return in_array($this->ping(), ['+PONG', '-NOAUTH'], true);
    }

    /** The first word of the port's reply to PING, or null without one. */
    private function ping(): ?string
    {
        $context = stream_context_create(['ssl' => ['verify_peer' => false, 'verify_peer_name' => false]]);
        $scheme = $this->tls ? 'tls' : 'tcp';
        $socket = @stream_socket_client("$scheme://127.0.0.1:{$this->port}", $errno, $errstr, 0.5, STREAM_CLIENT_CONNECT, $context);
        if ($socket === false) {
            return null;
        }
        fwrite($socket, "PING\r\n");
        stream_set_timeout($socket, 1);
        $reply = fgets($socket);
        fclose($socket);
        return is_string($reply) && $reply !== '' ? strtok(rtrim($reply), ' ') : null;
    }

    /** The process_id INFO gives for the server on this port, 0 if none. */
    private function processId(): int
    {
        try {
            $info = (string) $this->client()->rawCommand('INFO', 'server');
        } catch (\RedisException) {
            return 0;
        }
        return preg_match('/^process_id:(\d+)/m', $info, $m) ? (int) $m[1] : 0;
    }

    public function pause(): void
    {
        posix_kill($this->pid(), SIGSTOP);
    }

    public function resume(): void
    {
        posix_kill($this->pid(), SIGCONT);
    }

    public function stop(): void
    {
        if ($this->stopped) {
            return;
        }
        $this->stopped = true;
        $pid = $this->pid();
        if ($pid > 0) {
            posix_kill($pid, SIGCONT);
            posix_kill($pid, SIGTERM);
            $deadline = microtime(true) + 10;
            while (self::alive($pid) && microtime(true) < $deadline) {
                usleep(20_000);
            }
            if (self::alive($pid)) {
                return; // still running: keep its pid file and log for a look
            }
        }
        foreach (glob("{$this->dir}/*") ?: [] as $file) {
            @unlink($file);
        }
        @rmdir($this->dir);
    }

    /**
     * Whether process $pid still runs. A daemonized server's parent is PID 1,
     * which here may take seconds to reap it: a zombie has exited.
     */
    private static function alive(int $pid): bool
    {
        if (!posix_kill($pid, 0)) {
            return false;
        }
        $stat = @file_get_contents("/proc/$pid/stat");
        return !is_string($stat) || !preg_match('/^\d+ \(.*\) Z/s', $stat);
    }
}
