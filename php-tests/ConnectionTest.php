<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\ConnectionException;
use RedisLock\LockException;
use RedisLock\LockManager;
use RedisLock\RedisMutex;

final class ConnectionTest extends TestCase
{
    public function testUnreachableRedisGivesConnectionExceptionWithoutThePassword(): void
    {
        $port = RedisServer::freePort();
        $m = new RedisMutex("redis://:s3cr3t@127.0.0.1:$port", ['connect_timeout' => 0.5]);
        foreach ([fn () => $m->acquire('k'), fn () => $m->isLocked('k'), fn () => $m->synchronized('k', fn () => 1)] as $call) {
            $start = microtime(true);
            try {
                $call();
                $this->fail('expected ConnectionException');
            } catch (ConnectionException $e) {
                $this->assertStringContainsString("redis://:***@127.0.0.1:$port", $e->getMessage());
                $this->assertStringNotContainsString('s3cr3t', $e->getMessage());
                $this->assertInstanceOf(\RedisLock\LockException::class, $e);
                $this->assertInstanceOf(\RuntimeException::class, $e);
            }
            $this->assertLessThan(0.6, microtime(true) - $start);
        }
    }

    public function testAStoppedServerFailsFastAndARestartedOneIsUsedAgain(): void
    {
        $server = RedisServer::start();
        $m = new RedisMutex($server->dsn(), ['timeout' => 0.5, 'connect_timeout' => 0.5]);
        $this->assertTrue($m->acquire('k', 10));
        $this->assertTrue($m->release('k'));
        $port = $server->port;
        $server->stop();

        $start = microtime(true);
        try {
            $m->acquire('k');
            $this->fail('expected ConnectionException');
        } catch (ConnectionException) {
        }
        $this->assertLessThan(0.6, microtime(true) - $start, 'no hang');

        $server = RedisServer::start($port);
        // A fresh server has no scripts loaded: EVALSHA gets NOSCRIPT and the script is re-sent.
        $this->assertTrue($m->acquire('k', 10), 'the same object reconnects');
        $this->assertTrue($m->extend('k', 20));
        $this->assertTrue($m->release('k'));
        $server->stop();
    }

    public function testAStalledServerTimesOutWithinTheTimeoutAndRecovers(): void
    {
        $server = RedisServer::start();
        $lm = new LockManager($server->dsn(), ['timeout' => 0.4, 'connect_timeout' => 0.4]);
        $this->assertFalse($lm->isLocked('k'));
        $server->pause();
        try {
            foreach ([fn () => $lm->createLock('k')->acquire(), fn () => $lm->isLocked('k'), fn () => $lm->forceRelease('k')] as $call) {
                $start = microtime(true);
                try {
                    $call();
                    $this->fail('expected ConnectionException');
                } catch (ConnectionException $e) {
                    $this->assertStringContainsString('did not answer within 400 ms', $e->getMessage());
                }
                // The timeout, plus a margin for a machine busy with other work.
                $this->assertLessThan(0.5, microtime(true) - $start, 'timeout + 25%');
            }
        } finally {
            $server->resume();
        }
        $lock = $lm->createLock('k', 5);
        $this->assertTrue($lock->acquire(), 'service resumes on the same object');
        $this->assertTrue($lock->release());
        usleep(50_000);
        $this->assertSame([], self::lockKeys($server->client()), 'the timed-out acquire left no orphan');
        $server->stop();
    }

    public function testAclUserPasswordAndDbComeFromTheDsn(): void
    {
        $server = RedisServer::start(null, ['--user', 'default', 'off', '--user', 'app', 'on', '>pa55', '~*', '&*', '+@all']);
        $m = new RedisMutex("redis://app:pa55@127.0.0.1:{$server->port}/3");
        $this->assertTrue($m->acquire('k', 10));
        $admin = new \Redis();
        $admin->connect('127.0.0.1', $server->port);
        $admin->auth(['app', 'pa55']);
        $admin->select(3);
        $this->assertNotFalse($admin->get('lock:{k}'), 'stored in db 3');
        $admin->select(0);
        $this->assertFalse($admin->get('lock:{k}'));

        $wrong = new RedisMutex("redis://app:wrong@127.0.0.1:{$server->port}");
        try {
            $wrong->acquire('k');
            $this->fail('expected ConnectionException');
        } catch (ConnectionException $e) {
            $this->assertStringNotContainsString('wrong', $e->getMessage());
        }
        $server->stop();
    }

    public function testWithReplicasAnAcquireWaitsForThemAndGivesTheLockBackWhenTheyDoNotConfirm(): void
    {
        $master = RedisServer::start();
        $replica = RedisServer::start();
        try {
            $replica->replicaOf($master);
            $lm = new LockManager($master->dsn(), ['replicas' => 1, 'timeout' => 0.5]);
            $lock = $lm->createLock('k', 10);
            $this->assertTrue($lock->acquire());
            $this->assertSame($lock->owner(), $replica->client()->get('lock:{k}'), 'on the replica when acquire returns');
            $this->assertTrue($lock->release());

            $replica->pause();
            $start = microtime(true);
            try {
                $lm->createLock('other', 10)->acquire();
                $this->fail('expected a LockException');
            } catch (LockException $e) {
                $this->assertNotInstanceOf(ConnectionException::class, $e);
                $this->assertStringContainsString('only 0 of 1 replicas confirmed the lock within 300 ms', $e->getMessage());
            } finally {
                $replica->resume();
            }
            $this->assertLessThan(0.5, microtime(true) - $start, 'within the timeout');
            $this->assertSame(0, $master->client()->exists('lock:{other}'), 'and left no lock behind');
        } finally {
            $replica->stop();
            $master->stop();
        }
    }

    public function testUnixSocket(): void
    {
        $sock = sys_get_temp_dir() . '/redis-lock-' . getmypid() . '.sock';
        $server = RedisServer::start(null, ['--unixsocket', $sock, '--unixsocketperm', '700']);
        $m = new RedisMutex("unix://$sock");
        $this->assertTrue($m->acquire('k', 10));
        $this->assertTrue($server->client()->exists('lock:{k}') === 1);
        $this->assertTrue($m->release('k'));
        $server->stop();
    }

    public function testOneConnectionPerDsnPerProcessAndNoneSharedWithAChild(): void
    {
        $dsn = $this->dsn();
        $port = self::$server->port;
        [$counts] = Workers::run(1, function () use ($dsn, $port) {
            // This process's own sockets, not the server's client list: that
            // one also counts whoever else connects meanwhile.
            $before = self::connectionsTo($port);
            $objects = [new RedisMutex($dsn), new RedisMutex($dsn), new LockManager($dsn)];
            for ($i = 0; $i < 20; $i++) {
                $objects[0]->acquire("a$i");
                $objects[1]->isLocked("a$i");
                $objects[2]->createLock("b$i")->acquire();
            }
            return [$before, self::connectionsTo($port)];
        });
        $this->assertSame($counts[0] + 1, $counts[1], 'three objects, sixty calls, one connection');

        // The parent's pooled connection is opened first; a forked child must open its own.
        $m = new RedisMutex($dsn);
        $this->assertTrue($m->acquire('parent', 30));
        $tokenBefore = $this->storedToken('parent');
        $ids = fn () => array_column($this->redis->client('list'), 'id');
        $before = $ids();
        $seen = Workers::run(4, function () use ($m, $before) {
            for ($i = 0; $i < 50; $i++) {
                $m->isLocked('child-marker');
            }
            $probe = self::$server->client();
            $fresh = array_filter($probe->client('list'), fn ($c) => !in_array($c['id'], $before) && $c['cmd'] === 'exists');
            return [count($fresh)];
        });
        foreach ($seen as [$fresh]) {
            $this->assertGreaterThanOrEqual(1, $fresh, 'a child opened a connection of its own');
        }
        // Redis notices the exited children's disconnects asynchronously.
        $deadline = microtime(true) + 3;
        while (array_diff($ids(), $before) && microtime(true) < $deadline) {
            usleep(20_000);
        }
        $this->assertSame([], array_values(array_diff($ids(), $before)), 'the children used their own connections, closed with them');
        $this->assertTrue($m->isLocked('parent'), 'the parent\'s connection still answers in step');
        $this->assertTrue($m->extend('parent', 30));
        $this->assertSame($tokenBefore, $this->storedToken('parent'));
        $this->assertTrue($m->release('parent'));
    }

    /** How many established TCP connections this process has open to `127.0.0.1:$port`. */
    private static function connectionsTo(int $port): int
    {
        $inodes = [];
        foreach (file('/proc/net/tcp', FILE_IGNORE_NEW_LINES) ?: [] as $line) {
            $f = preg_split('/\s+/', trim($line));
            // remote address 127.0.0.1:<port>, state 01 (established), inode
            if (($f[2] ?? '') === sprintf('0100007F:%04X', $port) && ($f[3] ?? '') === '01') {
                $inodes['socket:[' . $f[9] . ']'] = true;
            }
        }
        $n = 0;
        foreach (scandir('/proc/self/fd') ?: [] as $fd) {
            $target = @readlink("/proc/self/fd/$fd");
            if ($target !== false && isset($inodes[$target])) {
                $n++;
            }
        }
        return $n;
    }

    /**
     * Work done under a lock whose release then fails (Redis went away during
     * the callback) returns the callback's value; the failure is told to the
     * logger once a request, never through PHP's error handler, which here
     * throws on every warning as Laravel's and Symfony's do.
     */
    public function testWorkDoneUnderTheLockIsNotReportedAsFailedWhenTheReleaseCannotReachRedis(): void
    {
        $server = RedisServer::start();
        $dsn = $server->dsn();
        $pid = $server->pid();
        try {
            [$code, $out, $err] = self::runPhp(<<<PHP
            <?php
            set_error_handler(function (\$no, \$msg, \$file, \$line) { throw new ErrorException(\$msg, 0, \$no, \$file, \$line); });
            final class Log { public array \$lines = []; public function warning(\$m, array \$c = []) { \$this->lines[] = [\$m, \$c]; } }
            \$log = new Log();
            \$options = ['timeout' => 0.3, 'connect_timeout' => 0.3, 'logger' => \$log];
            \$m = new RedisLock\\RedisMutex('$dsn', \$options);
            \$lm = new RedisLock\\LockManager('$dsn', \$options);
            \$r = [\$m->synchronized('k', function () {
                posix_kill($pid, SIGSTOP);      // Redis goes away while the work is done
                return 'credited';
            }, 5)];
            posix_kill($pid, SIGCONT);
            \$r[] = \$lm->executeWithLock('j', function () {
                posix_kill($pid, SIGSTOP);
                return 'done';
            }, 5);
            posix_kill($pid, SIGCONT);
            echo json_encode(['results' => \$r, 'log' => \$log->lines, 'count' => \$lm->stats()['unreleased_after_callback']]);
            PHP);
        } finally {
            $server->resume();
        }
        $this->assertSame(0, $code, $err);
        $this->assertSame('', $err, 'nothing through PHP\'s error output');
        $got = json_decode($out, true);
        $this->assertSame(['credited', 'done'], $got['results'], 'the callbacks\' values, not an exception');
        $this->assertCount(1, $got['log'], 'told once a request');
        $this->assertStringContainsString('could not be released', $got['log'][0][0]);
        $this->assertStringContainsString('expires when its TTL runs out', $got['log'][0][0]);
        $this->assertSame(['event' => 'unreleased_after_callback'], $got['log'][0][1]);
        $this->assertSame(2, $got['count'], 'both counted in stats()');
        $server->stop();
    }

    public function testFailOpenGrantsLocksToldOncePerRequestWithoutAWarning(): void
    {
        $port = RedisServer::freePort();
        [$code, $out, $err] = self::runPhp(<<<PHP
        <?php
        set_error_handler(function (\$no, \$msg, \$file, \$line) { throw new ErrorException(\$msg, 0, \$no, \$file, \$line); });
        \$m = new RedisLock\\RedisMutex('redis://:pw@127.0.0.1:$port', ['on_unavailable' => 'open', 'connect_timeout' => 0.3]);
        \$lm = new RedisLock\\LockManager('redis://127.0.0.1:$port', ['on_unavailable' => 'open', 'connect_timeout' => 0.3]);
        \$r = [\$m->acquire('a'), \$m->acquire('b', 5, 1), \$m->release('a'), \$m->release('b'), \$m->release('never')];
        \$r[] = \$m->synchronized('c', fn () => 'ran');
        \$lock = \$lm->createLock('d');
        \$r[] = \$lock->acquire();
        \$r[] = \$lock->isAcquired();
        \$r[] = \$lock->release();
        \$r[] = \$lm->executeWithLock('e', fn () => 'ran too');
        \$r[] = \$lm->stats()['open_grants'];
        echo json_encode(\$r);
        PHP);
        $this->assertSame(0, $code, $err);
        $this->assertSame([true, true, true, true, false, 'ran', true, true, true, 'ran too', 5], json_decode($out, true));
        // No logger given: error_log(), which the CLI writes to stderr.
        $told = array_values(array_filter(explode("\n", $err)));
        $this->assertCount(1, $told, 'told once a request: ' . $err);
        $this->assertStringContainsString('on_unavailable=open', $told[0]);
        $this->assertStringNotContainsString('Warning', $told[0], 'not a PHP warning');
        $this->assertStringNotContainsString(':pw@', $told[0]);
    }

    public function testFailClosedIsTheDefault(): void
    {
        $port = RedisServer::freePort();
        $m = new RedisMutex("redis://127.0.0.1:$port", ['connect_timeout' => 0.3]);
        $this->expectException(ConnectionException::class);
        $m->acquire('k');
    }
}
