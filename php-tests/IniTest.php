<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\RedisMutex;

final class IniTest extends TestCase
{
    public function testPhpRiShowsVersionAndIniValuesWithoutThePassword(): void
    {
        $cmd = [...self::php(),
            '-d', 'redis_lock.dsn=redis://:hunter2@10.9.8.7:6390/2', '-d', 'redis_lock.prefix=app:',
            '--ri', 'redis_lock'];
        $proc = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $out = stream_get_contents($pipes[1]);
        proc_close($proc);
        $manifest = file_get_contents(__DIR__ . '/../Cargo.toml');
        preg_match('/^version = "([^"]+)"/m', $manifest, $version);
        $this->assertStringContainsString("version => {$version[1]}", $out);
        foreach ([
            'redis_lock.dsn => redis://:***@10.9.8.7:6390/2',
            'redis_lock.prefix => app:',
            'redis_lock.ttl => 5',
            'redis_lock.connect_timeout => 1.0',
            'redis_lock.timeout => 1.0',
            'redis_lock.on_unavailable => closed',
            'redis_lock.fencing => 0',
            'redis_lock.watchdog => auto',
            'redis_lock.watchdog_max => 3600',
        ] as $line) {
            $this->assertStringContainsString($line, $out);
        }
        $this->assertStringNotContainsString('hunter2', $out);
    }

    /** The packages' settings file lists every entry, with the default `php --ri` shows. */
    public function testTheShippedIniFileListsEverySettingWithItsDefault(): void
    {
        $proc = proc_open([...self::php(true), '--ri', 'redis_lock'], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $out = stream_get_contents($pipes[1]);
        proc_close($proc);
        preg_match_all('/^(redis_lock\.\w+) => (.*)$/m', $out, $shown, PREG_SET_ORDER);
        preg_match_all('/^;(redis_lock\.\w+) = ?"?([^"\n]*)"?$/m', file_get_contents(__DIR__ . '/../redis_lock.ini'), $listed, PREG_SET_ORDER);
        $byName = fn (array $matches) => array_map(trim(...), array_column($matches, 2, 1));
        $this->assertSame($byName($shown), $byName($listed), $out);
        $this->assertArrayHasKey('redis_lock.metrics', $byName($shown));
        // The metrics' entries are php.ini's only: every process sharing the table must agree.
        $this->assertFalse(ini_set('redis_lock.metrics', 'off'));
    }

    public function testDefaultsComeFromIniAndOptionsOverrideThem(): void
    {
        $old = [];
        foreach (['redis_lock.dsn' => $this->dsn(), 'redis_lock.prefix' => 'ini:', 'redis_lock.ttl' => '42', 'redis_lock.fencing' => 'on'] as $k => $v) {
            $old[$k] = ini_set($k, $v);
        }
        try {
            $m = new RedisMutex();
            $this->assertTrue($m->acquire('k'));
            $this->assertGreaterThan(41_000, $this->redis->pTtl('ini:{k}'));
            $this->assertIsInt($m->fencingToken('k'));

            $o = new RedisMutex(null, ['prefix' => 'opt:', 'ttl' => 7, 'fencing' => false]);
            $this->assertTrue($o->acquire('k'));
            $this->assertLessThanOrEqual(7_000, $this->redis->pTtl('opt:{k}'));
            $this->assertNull($o->fencingToken('k'));
        } finally {
            foreach ($old as $k => $v) {
                ini_set($k, (string) $v);
            }
        }
    }

    public function testInvalidIniValuesAreReportedAtConstruction(): void
    {
        $bad = [['redis_lock.ttl', 'soon'], ['redis_lock.timeout', '-1'], ['redis_lock.on_unavailable', 'sometimes'],
            ['redis_lock.fencing', 'maybe'], ['redis_lock.watchdog', 'maybe'], ['redis_lock.watchdog_max', '0'],
            ['redis_lock.watchdog_max', 'ever']];
        foreach ($bad as [$k, $v]) {
            $old = ini_set($k, $v);
            try {
                new RedisMutex($this->dsn());
                $this->fail("$k=$v must be refused");
            } catch (\ValueError $e) {
                $this->assertStringContainsString("php.ini setting $k", $e->getMessage());
            } finally {
                ini_set($k, (string) $old);
            }
        }
    }

    public function testExceptionsAreOrdinaryRuntimeExceptions(): void
    {
        $e = new \RedisLock\LockTimeoutException('waited too long', 5);
        $this->assertSame('waited too long', $e->getMessage());
        $this->assertSame(5, $e->getCode());
        $this->assertInstanceOf(\RedisLock\LockConflictedException::class, $e);
        $this->assertInstanceOf(\RedisLock\LockException::class, $e);
        $this->assertInstanceOf(\RuntimeException::class, $e);
        $this->assertInstanceOf(\RedisLock\LockException::class, new \RedisLock\ConnectionException());
        $this->assertNotInstanceOf(\RedisLock\LockConflictedException::class, new \RedisLock\ConnectionException());
    }
}
