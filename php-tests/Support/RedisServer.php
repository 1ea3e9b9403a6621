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
     */
    public static function start(?int $port = null, array $args = [], ?array $tls = null): self
    {
        $port ??= self::freePort();
        if ($tls !== null) {
            [$cert, $key, $ca] = $tls;
            $args = array_merge($args, ['--tls-port', (string) $port, '--tls-cert-file', $cert,
                '--tls-key-file', $key, '--tls-ca-cert-file', $ca, '--tls-auth-clients', 'no']);
        }
        $dir = sys_get_temp_dir() . "/redis-lock-test-$port";
        @mkdir($dir);
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
        $deadline = microtime(true) + 10;
        while (!$server->answers()) {
            if (microtime(true) > $deadline) {
                throw new \RuntimeException(self::binary() . " on $port did not start");
            }
            usleep(20_000);
        }
        return $server;
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
        $deadline = microtime(true) + 20;
        foreach ($nodes as $node) {
            while (!str_contains((string) $node->client()->rawCommand('CLUSTER', 'INFO'), 'cluster_state:ok')) {
                if (microtime(true) > $deadline) {
                    throw new \RuntimeException("cluster on {$node->port} did not become ok");
                }
                usleep(50_000);
            }
        }
        return $nodes;
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
        $redis->connect('127.0.0.1', $this->port, 2.0);
        return $redis;
    }

    public function answers(): bool
    {
        $context = stream_context_create(['ssl' => ['verify_peer' => false, 'verify_peer_name' => false]]);
        $scheme = $this->tls ? 'tls' : 'tcp';
        $socket = @stream_socket_client("$scheme://127.0.0.1:{$this->port}", $errno, $errstr, 0.5, STREAM_CLIENT_CONNECT, $context);
        if ($socket === false) {
            return false;
        }
        fwrite($socket, "PING\r\n");
        stream_set_timeout($socket, 1);
        $reply = fgets($socket);
        fclose($socket);
        // Any reply means it is up (a server with ACLs answers -NOAUTH).
        return is_string($reply) && $reply !== '';
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
