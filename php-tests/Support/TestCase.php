<?php
declare(strict_types=1);

namespace RedisLock\Tests;

abstract class TestCase extends \PHPUnit\Framework\TestCase
{
    public static RedisServer $server;

    protected \Redis $redis;

    protected function setUp(): void
    {
        $this->redis = self::$server->client();
        $this->redis->flushAll();
    }

    protected function tearDown(): void
    {
        // PHPUnit keeps every test object until the run ends: close explicitly.
        $this->redis->close();
    }

    protected function dsn(): string
    {
        return self::$server->dsn();
    }

    /** The stored owner token of lock $name under the default prefix. */
    protected function storedToken(string $name, string $prefix = 'lock:'): string|false
    {
        return $this->redis->get($prefix . '{' . $name . '}');
    }

    /**
     * The keys on $redis (matching $pattern) apart from the markers a release leaves for a few
     * seconds (`<lock>:call:<id>`, so that a re-sent release acts once).
     *
     * @return list<string>
     */
    public static function lockKeys(\Redis $redis, string $pattern = '*'): array
    {
        $keys = array_values(array_filter($redis->keys($pattern), fn ($k) => !str_contains($k, ':call:')));
        sort($keys);
        return $keys;
    }

    /**
     * The host as owner tokens made by process $pid carry it: the short name
     * (up to the first dot), cut so that the token (22 random characters,
     * `:<pid>@<host>`) stays within 44 bytes, what Redis keeps inline.
     */
    public static function tokenHost(int $pid): string
    {
        return substr(explode('.', (string) gethostname())[0], 0, 44 - 22 - 2 - strlen((string) $pid));
    }

    /**
     * The start of a child php process's command line that loads the
     * extension as this process did: the built .so REDIS_LOCK_SO names, or,
     * when it names none, the installed extension that php.ini enables (the
     * install test of `make dist`'s artifacts). With $noIni, php runs
     * without php.ini (-n) and loads an installed extension by its name.
     *
     * @return list<string>
     */
    public static function php(bool $noIni = false): array
    {
        $so = getenv('REDIS_LOCK_SO');
        $cmd = $noIni ? [PHP_BINARY, '-n'] : [PHP_BINARY];
        if ($so !== false) {
            array_push($cmd, '-d', "extension=$so");
        } elseif ($noIni) {
            array_push($cmd, '-d', 'extension=redis_lock');
        }
        return $cmd;
    }

    /**
     * Runs PHP code in a separate php process that loads the extension.
     *
     * @return array{int, string, string} exit code, stdout, stderr
     */
    protected static function runPhp(string $code, array $ini = []): array
    {
        $file = tempnam(sys_get_temp_dir(), 'rl') . '.php';
        file_put_contents($file, $code);
        $cmd = [...self::php(), '-d', 'display_errors=stderr'];
        foreach ($ini as $k => $v) {
            array_push($cmd, '-d', "$k=$v");
        }
        $cmd[] = $file;
        $proc = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        $code = proc_close($proc);
        unlink($file);
        return [$code, $out, $err];
    }
}
