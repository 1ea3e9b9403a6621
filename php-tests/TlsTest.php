<?php
declare(strict_types=1);

namespace RedisLock\Tests;

/**
 * rediss:// against a redis-server that listens only on TLS, with a CA and a
 * certificate for "localhost" made here. The extension verifies the server
 * with OpenSSL's default trust, which SSL_CERT_FILE points at our CA.
 */
final class TlsTest extends TestCase
{
    private static string $dir;
    private static RedisServer $tls;

    public static function setUpBeforeClass(): void
    {
        self::$dir = sys_get_temp_dir() . '/redis-lock-tls-' . getmypid();
        @mkdir(self::$dir);
        $d = escapeshellarg(self::$dir);
        $steps = [
            "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout $d/ca.key -out $d/ca.pem",
            "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout $d/server.key -out $d/server.csr",
            "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > $d/san.ext",
            "openssl x509 -req -in $d/server.csr -CA $d/ca.pem -CAkey $d/ca.key -CAcreateserial -days 2 -extfile $d/san.ext -out $d/server.pem",
        ];
        foreach ($steps as $step) {
            exec("$step 2>&1", $out, $code);
            if ($code !== 0) {
                throw new \RuntimeException("$step failed: " . implode("\n", $out));
            }
        }
        self::$tls = RedisServer::start(null, [], [self::$dir . '/server.pem', self::$dir . '/server.key', self::$dir . '/ca.pem']);
    }

    public static function tearDownAfterClass(): void
    {
        self::$tls->stop();
        foreach (glob(self::$dir . '/*') ?: [] as $file) {
            @unlink($file);
        }
        @rmdir(self::$dir);
    }

    /** @return array{int, string, string} */
    private function runWithEnv(string $code, array $env): array
    {
        $file = tempnam(sys_get_temp_dir(), 'rl') . '.php';
        file_put_contents($file, $code);
        $proc = proc_open(
            [...self::php(noIni: true), $file],
            [1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
            $pipes,
            null,
            $env + ['PATH' => getenv('PATH')]
        );
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        $status = proc_close($proc);
        unlink($file);
        return [$status, $out, $err];
    }

    private function script(string $dsn): string
    {
        return <<<PHP
        <?php
        try {
            \$m = new RedisLock\\RedisMutex('$dsn', ['connect_timeout' => 2]);
            echo json_encode([\$m->acquire('tls', 30), \$m->isLocked('tls'), \$m->release('tls'), \$m->isLocked('tls')]);
        } catch (RedisLock\\ConnectionException \$e) {
            echo 'ConnectionException: ', \$e->getMessage();
        }
        PHP;
    }

    public function testLocksOverVerifiedTls(): void
    {
        $port = self::$tls->port;
        [$code, $out, $err] = $this->runWithEnv($this->script("rediss://localhost:$port"), ['SSL_CERT_FILE' => self::$dir . '/ca.pem']);
        $this->assertSame(0, $code, $err);
        $this->assertSame('[true,true,true,false]', $out);
    }

    public function testAnUntrustedCertificateIsRefused(): void
    {
        $port = self::$tls->port;
        [$code, $out, $err] = $this->runWithEnv($this->script("rediss://localhost:$port"), ['SSL_CERT_FILE' => '/dev/null']);
        $this->assertSame(0, $code, $err);
        $this->assertStringStartsWith('ConnectionException: ', $out);
        $this->assertStringContainsString("rediss://localhost:$port", $out);
    }

    public function testPlainRedisToATlsPortFailsClearly(): void
    {
        $port = self::$tls->port;
        [$code, $out, $err] = $this->runWithEnv($this->script("redis://127.0.0.1:$port"), []);
        $this->assertSame(0, $code, $err);
        $this->assertStringStartsWith('ConnectionException: ', $out);
    }

    /**
     * rediss-cluster://: three masters that listen and talk to each other
     * only over TLS; the client verifies every node it is sent to.
     */
    public function testLocksOnAClusterOverVerifiedTls(): void
    {
        $files = [self::$dir . '/server.pem', self::$dir . '/server.key', self::$dir . '/ca.pem'];
        $nodes = [];
        try {
            for ($i = 0; $i < 3; $i++) {
                $port = RedisServer::freeClusterPort();
                $nodes[] = RedisServer::start($port, ['--cluster-enabled', 'yes', '--cluster-config-file', "nodes-$port.conf",
                    '--cluster-node-timeout', '1000', '--tls-cluster', 'yes'], $files);
            }
            $cli = str_ends_with(RedisServer::binary(), 'valkey-server') ? 'valkey-cli' : 'redis-cli';
            $cmd = escapeshellarg($cli) . ' --tls --cacert ' . escapeshellarg($files[2]) . ' --cluster create '
                . implode(' ', array_map(fn (RedisServer $n) => "127.0.0.1:{$n->port}", $nodes))
                . ' --cluster-replicas 0 --cluster-yes 2>&1';
            exec($cmd, $out, $code);
            $this->assertSame(0, $code, implode("\n", $out));
            RedisServer::waitForCluster($nodes);
            $seeds = implode(',', array_map(fn (RedisServer $n) => "127.0.0.1:{$n->port}", $nodes));
            // Names on every master: each node is reached and verified.
            $code = <<<PHP
            <?php
            try {
                \$m = new RedisLock\\RedisMutex('rediss-cluster://$seeds', ['connect_timeout' => 2]);
                \$r = [];
                foreach (range(1, 12) as \$i) {
                    \$r[] = \$m->acquire("tls\$i", 30) && \$m->isLocked("tls\$i") && \$m->release("tls\$i") && !\$m->isLocked("tls\$i");
                }
                echo json_encode(array_unique(\$r));
            } catch (RedisLock\\ConnectionException \$e) {
                echo 'ConnectionException: ', \$e->getMessage();
            }
            PHP;
            [$status, $out, $err] = $this->runWithEnv($code, ['SSL_CERT_FILE' => $files[2]]);
            $this->assertSame(0, $status, $err);
            $this->assertSame('[true]', $out);
            [$status, $out, $err] = $this->runWithEnv($code, ['SSL_CERT_FILE' => '/dev/null']);
            $this->assertSame(0, $status, $err);
            $this->assertStringStartsWith('ConnectionException: ', $out, 'an untrusted cluster is refused');
        } finally {
            foreach ($nodes as $node) {
                $node->stop();
            }
        }
    }
}
