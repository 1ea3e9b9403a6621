<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\LockManager;
use RedisLock\RedisMutex;

/**
 * Invalid input gets \TypeError or \ValueError naming the argument, and
 * nothing reaches Redis.
 */
final class BadInputTest extends TestCase
{
    /** @return iterable<string, array{callable(RedisMutex, LockManager): mixed, class-string, string|list<string>}> */
    public static function cases(): iterable
    {
        $names = [
            'empty' => ['', \ValueError::class, 'must not be empty'],
            '1025 bytes' => [str_repeat('n', 1025), \ValueError::class, 'must be at most 1024 bytes'],
            'array' => [[], \TypeError::class, 'must be of type string, array given'],
            'null' => [null, \TypeError::class, 'must be of type string, null given'],
            'float' => [1.5, \TypeError::class, 'must be of type string, float given'],
            'object' => [new \stdClass(), \TypeError::class, 'stdClass given'],
        ];
        foreach ($names as $label => [$name, $class, $msg]) {
            yield "RedisMutex::acquire name $label" => [fn ($m) => $m->acquire($name), $class, ['RedisMutex::acquire(): Argument #1 ($key)', $msg]];
            yield "RedisMutex::release name $label" => [fn ($m) => $m->release($name), $class, 'Argument #1 ($key)'];
            yield "RedisMutex::extend name $label" => [fn ($m) => $m->extend($name), $class, 'Argument #1 ($key)'];
            yield "RedisMutex::isLocked name $label" => [fn ($m) => $m->isLocked($name), $class, 'Argument #1 ($key)'];
            yield "RedisMutex::fencingToken name $label" => [fn ($m) => $m->fencingToken($name), $class, 'Argument #1 ($key)'];
            yield "RedisMutex::synchronized name $label" => [fn ($m) => $m->synchronized($name, fn () => 1), $class, 'Argument #1 ($key)'];
            yield "createLock name $label" => [fn ($m, $lm) => $lm->createLock($name), $class, 'Argument #1 ($name)'];
            yield "restoreLock name $label" => [fn ($m, $lm) => $lm->restoreLock($name, 'x'), $class, 'Argument #1 ($name)'];
            yield "executeWithLock name $label" => [fn ($m, $lm) => $lm->executeWithLock($name, fn () => 1), $class, 'Argument #1 ($name)'];
            yield "waitAndExecute name $label" => [fn ($m, $lm) => $lm->waitAndExecute($name, fn () => 1), $class, 'Argument #1 ($name)'];
            yield "isLocked name $label" => [fn ($m, $lm) => $lm->isLocked($name), $class, 'Argument #1 ($name)'];
            yield "forceRelease name $label" => [fn ($m, $lm) => $lm->forceRelease($name), $class, 'Argument #1 ($name)'];
            yield "createSemaphore name $label" => [fn ($m, $lm) => $lm->createSemaphore($name, 2), $class, ['LockManager::createSemaphore(): Argument #1 ($name)', $msg]];
        }

        $ttls = [
            'zero' => [0, \ValueError::class, 'must be greater than 0'],
            'negative' => [-1, \ValueError::class, 'must be greater than 0'],
            'NAN' => [NAN, \ValueError::class, 'NAN'],
            'INF' => [INF, \ValueError::class, 'at most 2592000'],
            '1e12' => [1e12, \ValueError::class, 'at most 2592000'],
            '31 days' => [31 * 86400, \ValueError::class, 'at most 2592000'],
            'sub-millisecond' => [0.0001, \ValueError::class, 'at least 0.001'],
            'string' => ['soon', \TypeError::class, 'must be of type int|float|null, string given'],
            'bool' => [true, \TypeError::class, 'bool given'],
            'array' => [[5], \TypeError::class, 'array given'],
        ];
        foreach ($ttls as $label => [$ttl, $class, $msg]) {
            yield "RedisMutex::acquire ttl $label" => [fn ($m) => $m->acquire('k', $ttl), $class, ['Argument #2 ($ttl)', $msg]];
            yield "RedisMutex::extend ttl $label" => [fn ($m) => $m->extend('k', $ttl), $class, 'Argument #2 ($ttl)'];
            yield "RedisMutex::synchronized ttl $label" => [fn ($m) => $m->synchronized('k', fn () => 1, $ttl), $class, 'Argument #3 ($ttl)'];
            yield "createLock ttl $label" => [fn ($m, $lm) => $lm->createLock('k', $ttl), $class, 'Argument #2 ($ttl)'];
            yield "executeWithLock ttl $label" => [fn ($m, $lm) => $lm->executeWithLock('k', fn () => 1, $ttl), $class, 'Argument #3 ($ttl)'];
            yield "waitAndExecute ttl $label" => [fn ($m, $lm) => $lm->waitAndExecute('k', fn () => 1, 1, $ttl), $class, 'Argument #4 ($ttl)'];
            yield "Lock::refresh ttl $label" => [fn ($m, $lm) => $lm->createLock('k')->refresh($ttl), $class, 'Argument #1 ($ttl)'];
            yield "createSemaphore ttl $label" => [fn ($m, $lm) => $lm->createSemaphore('k', 2, $ttl), $class, ['Argument #3 ($ttl)', $msg]];
            yield "Semaphore::refresh ttl $label" => [fn ($m, $lm) => $lm->createSemaphore('k', 2)->refresh($ttl), $class, ['Semaphore::refresh(): Argument #1 ($ttl)', $msg]];
        }

        $waits = [
            'negative' => [-0.5, \ValueError::class, 'greater than or equal to 0'],
            'NAN' => [NAN, \ValueError::class, 'NAN'],
            'INF' => [INF, \ValueError::class, 'at most 2592000'],
            'null' => [null, \TypeError::class, 'must be of type int|float, null given'],
            'string' => ['later', \TypeError::class, 'string given'],
        ];
        foreach ($waits as $label => [$wait, $class, $msg]) {
            yield "RedisMutex::acquire wait $label" => [fn ($m) => $m->acquire('k', 1, $wait), $class, ['Argument #3 ($wait)', $msg]];
            yield "RedisMutex::synchronized wait $label" => [fn ($m) => $m->synchronized('k', fn () => 1, 1, $wait), $class, 'Argument #4 ($wait)'];
            yield "waitAndExecute maxWait $label" => [fn ($m, $lm) => $lm->waitAndExecute('k', fn () => 1, $wait), $class, 'Argument #3 ($maxWait)'];
            yield "Lock::block seconds $label" => [fn ($m, $lm) => $lm->createLock('k')->block($wait), $class, 'Argument #1 ($seconds)'];
            yield "Semaphore::block seconds $label" => [fn ($m, $lm) => $lm->createSemaphore('k', 2)->block($wait), $class, ['Semaphore::block(): Argument #1 ($seconds)', $msg]];
        }

        $limits = [
            'zero' => [0, \ValueError::class, 'must be greater than 0'],
            'negative' => [-3, \ValueError::class, 'must be greater than 0'],
            'PHP_INT_MIN' => [PHP_INT_MIN, \ValueError::class, 'must be greater than 0'],
            'too large' => [1_000_001, \ValueError::class, 'must be at most 1000000'],
            'string' => ['3', \TypeError::class, 'must be of type int, string given'],
            'float' => [2.0, \TypeError::class, 'must be of type int, float given'],
            'null' => [null, \TypeError::class, 'must be of type int, null given'],
            'bool' => [true, \TypeError::class, 'must be of type int, bool given'],
        ];
        foreach ($limits as $label => [$limit, $class, $msg]) {
            yield "createSemaphore limit $label" => [fn ($m, $lm) => $lm->createSemaphore('k', $limit), $class, ['LockManager::createSemaphore(): Argument #2 ($limit)', $msg]];
        }
        yield 'Semaphore::block not callable' => [fn ($m, $lm) => $lm->createSemaphore('k', 1)->block(1, 'no_such_function'), \TypeError::class, 'callback'];

        yield 'synchronized not callable' => [fn ($m) => $m->synchronized('k', 'no_such_function'), \TypeError::class, 'callback'];
        yield 'executeWithLock not callable' => [fn ($m, $lm) => $lm->executeWithLock('k', 42), \TypeError::class, 'callback'];
        yield 'restoreLock empty owner' => [fn ($m, $lm) => $lm->restoreLock('k', ''), \ValueError::class, 'Argument #2 ($owner)'];
        yield 'restoreLock owner with NUL' => [fn ($m, $lm) => $lm->restoreLock('k', "abc\0r"), \ValueError::class, 'Argument #2 ($owner)'];
        yield 'restoreSemaphore owner with NUL' => [fn ($m, $lm) => $lm->restoreSemaphore('k', 2, "abc\0w"), \ValueError::class, 'Argument #3 ($owner)'];
        yield 'inspect empty name' => [fn ($m, $lm) => $lm->inspect(''), \ValueError::class, 'RedisLock\LockManager::inspect(): Argument #1 ($name) must not be empty'];
        yield 'inspect name too long' => [fn ($m, $lm) => $lm->inspect(str_repeat('n', 1025)), \ValueError::class, 'Argument #1 ($name) must be at most 1024 bytes long'];
        yield 'inspect name array' => [fn ($m, $lm) => $lm->inspect([]), \TypeError::class, 'Argument #1 ($name) must be of type string, array given'];
        yield 'restoreLock owner array' => [fn ($m, $lm) => $lm->restoreLock('k', []), \TypeError::class, 'Argument #2 ($owner)'];

        $dsns = [
            'empty' => '', 'no scheme' => '127.0.0.1:6379', 'http' => 'http://h', 'no host' => 'redis://',
            'bad db' => 'redis://h/x', 'bad port' => 'redis://h:99999', 'unix no path' => 'unix://',
            'sentinel no hosts' => 'redis-sentinel:///mymaster', 'sentinel bad port' => 'redis-sentinel://h:99999/mymaster',
            'sentinel no service' => 'redis-sentinel://h:26379', 'sentinel bad db' => 'redis-sentinel://h:26379/mymaster/x',
            'sentinel one bad port of two' => 'redis-sentinel://h:26379,h:x/mymaster',
            'cluster no hosts' => 'redis-cluster://', 'cluster bad port' => 'redis-cluster://h:1,h:99999',
            'cluster mixed schemes' => 'redis-cluster://h:1,redis://h:2', 'cluster with db' => 'redis-cluster://h:1/2',
        ];
        foreach ($dsns as $label => $dsn) {
            yield "RedisMutex dsn $label" => [fn () => new RedisMutex($dsn), \ValueError::class, 'Argument #1 ($dsn)'];
            yield "LockManager dsn $label" => [fn () => new LockManager($dsn), \ValueError::class, 'Argument #1 ($dsn)'];
        }
        yield 'dsn int' => [fn () => new RedisMutex(42), \TypeError::class, 'Argument #1 ($dsn) must be of type array|string|null, int given'];
        yield 'dsn empty list' => [fn () => new RedisMutex([]), \ValueError::class, 'Argument #1 ($dsn) is invalid'];
        yield 'fencing with Redlock' => [fn () => new LockManager(['redis://127.0.0.1:1', 'redis://127.0.0.1:2'], ['fencing' => true]), \ValueError::class, 'option "fencing" is not supported with Redlock'];
        yield 'replicas with a cluster' => [fn () => new LockManager('redis-cluster://127.0.0.1:1', ['replicas' => 1]), \ValueError::class, 'option "replicas" is not supported with a redis-cluster:// DSN'];

        $options = [
            'unknown key' => [['ttl' => 1, 'tll' => 1], \ValueError::class, 'unknown key "tll"'],
            'ttl zero' => [['ttl' => 0], \ValueError::class, 'key "ttl" must be greater than 0'],
            'ttl string' => [['ttl' => 'x'], \TypeError::class, 'key "ttl" must be of type int|float'],
            'timeout negative' => [['timeout' => -1], \ValueError::class, 'key "timeout"'],
            'connect_timeout NAN' => [['connect_timeout' => NAN], \ValueError::class, 'key "connect_timeout"'],
            'on_unavailable bad' => [['on_unavailable' => 'maybe'], \ValueError::class, '"closed" or "open"'],
            'on_unavailable int' => [['on_unavailable' => 1], \TypeError::class, 'key "on_unavailable"'],
            'fencing string' => [['fencing' => 'yes'], \TypeError::class, 'key "fencing" must be of type bool'],
            'replicas negative' => [['replicas' => -1], \ValueError::class, 'key "replicas" must be an integer from 0 to 16'],
            'replicas too many' => [['replicas' => 17], \ValueError::class, 'key "replicas"'],
            'replicas string' => [['replicas' => '1'], \TypeError::class, 'key "replicas" must be of type int'],
            'replicas float' => [['replicas' => 1.0], \TypeError::class, 'key "replicas" must be of type int'],
            'watchdog string' => [['watchdog' => 'yes'], \ValueError::class, 'key "watchdog" must be true, false or "auto"'],
            'watchdog int' => [['watchdog' => 1], \TypeError::class, 'key "watchdog" must be of type string|bool, int given'],
            'watchdog null' => [['watchdog' => null], \TypeError::class, 'key "watchdog" must be of type string|bool, null given'],
            'logger without warning()' => [['logger' => new \stdClass()], \TypeError::class, 'key "logger" must be of type Psr\Log\LoggerInterface (an object with a warning() method), stdClass given'],
            'logger string' => [['logger' => 'log'], \TypeError::class, 'key "logger" must be of type Psr\Log\LoggerInterface'],
            'watchdog_max zero' => [['watchdog' => true, 'watchdog_max' => 0], \ValueError::class, 'key "watchdog_max" must be greater than 0'],
            'watchdog_max negative' => [['watchdog_max' => -5], \ValueError::class, 'key "watchdog_max" must be greater than 0'],
            'watchdog_max NAN' => [['watchdog_max' => NAN], \ValueError::class, 'key "watchdog_max"'],
            'watchdog_max 31 days' => [['watchdog_max' => 31 * 86400], \ValueError::class, 'key "watchdog_max" must be at most 2592000'],
            'watchdog_max string' => [['watchdog_max' => 'long'], \TypeError::class, 'key "watchdog_max" must be of type int|float'],
            'watchdog_max bool' => [['watchdog_max' => true], \TypeError::class, 'key "watchdog_max" must be of type int|float'],
            'prefix array' => [['prefix' => []], \TypeError::class, 'key "prefix"'],
            'prefix too long' => [['prefix' => str_repeat('p', 1025)], \ValueError::class, 'key "prefix"'],
            'dsn in options bad' => [['dsn' => 'nope'], \ValueError::class, 'dsn'],
            'dsn in options int' => [['dsn' => 5], \TypeError::class, 'key "dsn" must be of type array|string'],
            'dsn in options mixed list' => [['dsn' => ['redis://127.0.0.1:1', 'redis-cluster://127.0.0.1:2']], \ValueError::class, 'not a mix of schemes'],
        ];
        foreach ($options as $label => [$opts, $class, $msg]) {
            yield "RedisMutex options $label" => [fn () => new RedisMutex(null, $opts), $class, $msg];
            yield "LockManager options $label" => [fn () => new LockManager(null, $opts), $class, $msg];
        }
    }

    /** @dataProvider cases */
    #[\PHPUnit\Framework\Attributes\DataProvider('cases')]
    public function testInvalidInputIsRefusedBeforeRedis(callable $call, string $class, string|array $fragments): void
    {
        $m = new RedisMutex($this->dsn());
        $lm = new LockManager($this->dsn());
        $this->redis->rawCommand('CONFIG', 'RESETSTAT');
        try {
            $call($m, $lm);
            $this->fail("expected $class");
        } catch (\Throwable $e) {
            $this->assertInstanceOf($class, $e, $e->getMessage());
            foreach ((array) $fragments as $fragment) {
                $this->assertStringContainsString($fragment, $e->getMessage());
            }
        }
        $this->assertSame(0, $this->redis->dbSize(), 'nothing was written');
        $calls = array_filter(
            $this->redis->info('commandstats'),
            // The test's own CONFIG RESETSTAT, DBSIZE and INFO are not the extension's.
            fn ($k) => !preg_match('/^cmdstat_(config|dbsize|info)\b/', $k),
            ARRAY_FILTER_USE_KEY
        );
        $this->assertSame([], $calls, 'no command reached Redis');
    }

    public function testTheMatrixIsLarge(): void
    {
        $this->assertGreaterThanOrEqual(200, iterator_count(self::cases()));
    }
}
