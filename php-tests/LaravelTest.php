<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use Illuminate\Cache\CacheServiceProvider;
use Illuminate\Cache\Lock;
use Illuminate\Cache\Repository;
use Illuminate\Config\Repository as Config;
use Illuminate\Console\Scheduling\CacheEventMutex;
use Illuminate\Console\Scheduling\CacheSchedulingMutex;
use Illuminate\Console\Scheduling\Event;
use Illuminate\Contracts\Cache\LockProvider;
use Illuminate\Contracts\Cache\LockTimeoutException;
use Illuminate\Contracts\Cache\Store;
use Illuminate\Foundation\Application;
use Illuminate\Redis\RedisServiceProvider;
use Illuminate\Support\Facades\Cache;
use Illuminate\Support\Facades\Facade;
use RedisLock\Laravel\ExtensionLock;
use RedisLock\Laravel\RedisLockServiceProvider;
use RedisLock\Laravel\RedisLockStore;

/**
 * The `redis-lock` cache driver inside a real Laravel application (Debian's
 * php-laravel-framework: 8, 10 or 13): Illuminate's Application, its cache
 * and redis service providers, and ours. LaravelFeaturesTest runs the
 * framework's features built on locks in a whole app.
 */
final class LaravelTest extends TestCase
{
    public static function setUpBeforeClass(): void
    {
        require_once '/usr/share/php/Illuminate/autoload.php';
    }

    /** A fresh application; forked workers build their own (no shared sockets). */
    private static function app(): Application
    {
        $port = self::$server->port;
        $app = new Application(sys_get_temp_dir());
        $app->instance('config', new Config([
            'app' => ['name' => 'redis-lock-test', 'env' => 'testing'],
            'cache' => [
                'default' => 'locks',
                'prefix' => 'app',
                'stores' => [
                    'locks' => ['driver' => 'redis-lock', 'connection' => 'default', 'store' => 'redis'],
                    'by-dsn' => ['driver' => 'redis-lock', 'dsn' => self::$server->dsn(), 'prefix' => 'dsn-lock:'],
                    'by-connection' => ['driver' => 'redis-lock', 'connection' => 'default'],
                    'glob' => ['driver' => 'redis-lock', 'connection' => 'default', 'prefix' => 'g*:'],
                    'values-in-locks' => ['driver' => 'redis-lock', 'connection' => 'default', 'store' => 'by-dsn'],
                    'watched' => ['driver' => 'redis-lock', 'connection' => 'default', 'watchdog' => true, 'watchdog_ttl' => 0.3],
                    'watchdog-not-bool' => ['driver' => 'redis-lock', 'connection' => 'default', 'watchdog' => 'yes'],
                    'watchdog-ttl-zero' => ['driver' => 'redis-lock', 'connection' => 'default', 'watchdog' => true, 'watchdog_ttl' => 0],
                    'watchdog-ttl-string' => ['driver' => 'redis-lock', 'connection' => 'default', 'watchdog' => true, 'watchdog_ttl' => '10'],
                    'redis' => ['driver' => 'redis', 'connection' => 'default'],
                ],
            ],
            'database' => ['redis' => [
                'client' => 'phpredis',
                'default' => ['host' => '127.0.0.1', 'port' => $port, 'database' => 0],
            ]],
        ]));
        $app->register(CacheServiceProvider::class);
        $app->register(RedisServiceProvider::class);
        $app->register(RedisLockServiceProvider::class);
        $app->boot();
        Facade::clearResolvedInstances();
        Facade::setFacadeApplication($app);
        return $app;
    }

    protected function setUp(): void
    {
        parent::setUp();
        self::app();
    }

    public function testARepositoryOverTheDriverWithValuesInTheConfiguredStore(): void
    {
        $repo = Cache::store('locks');
        $this->assertInstanceOf(Repository::class, $repo);
        $this->assertInstanceOf(RedisLockStore::class, $repo->getStore());
        $repo->put('greeting', 'hello', 60);
        $this->assertSame('hello', Cache::store('redis')->get('greeting'), 'plain values live in the redis store');
        $this->assertSame('hello', $repo->get('greeting'));
        $this->assertSame(3, $repo->increment('n', 3));
        $this->assertInstanceOf(ExtensionLock::class, $repo->lock('x', 10));
        $this->assertInstanceOf(ExtensionLock::class, Cache::store('by-dsn')->lock('x', 10));
    }

    public function testGetWithAndWithoutCallback(): void
    {
        $lock = Cache::lock('report', 10);
        $this->assertTrue($lock->get());
        $this->assertSame($lock->owner(), $this->storedToken('report'), 'the Laravel owner is the stored token');
        $this->assertGreaterThan(9_000, $this->redis->pTtl('lock:{report}'));
        $this->assertFalse(Cache::lock('report', 10)->get());
        $this->assertFalse(Cache::lock('report', 10)->get(fn () => $this->fail('must not run')));
        $this->assertTrue($lock->release());
        $this->assertSame('built', Cache::lock('report', 10)->get(fn () => 'built'));
        $this->assertSame(0, $this->redis->exists('lock:{report}'), 'get() with a callback releases');

        $this->assertTrue(Cache::store('by-dsn')->lock('p', 10)->get());
        $this->assertSame(1, $this->redis->exists('dsn-lock:{p}'), 'the store prefix is the lock prefix');
    }

    public function testLockWithoutSecondsLastsTheMaximum(): void
    {
        $this->assertTrue(Cache::lock('forever')->get());
        $this->assertGreaterThan((RedisLockStore::FOREVER - 5) * 1000, $this->redis->pTtl('lock:{forever}'));
    }

    /**
     * With `watchdog`, a lock without seconds has the short `watchdog_ttl`
     * and is renewed, also after Laravel dropped the lock object (as
     * UniqueLock does), until released; a lock with seconds is not watched.
     */
    public function testAWatchedStoreRenewsLocksWithoutSecondsOnly(): void
    {
        $store = Cache::store('watched');
        $this->assertTrue($store->lock('w')->get());
        $this->assertLessThanOrEqual(300, $this->redis->pTtl('lock:{w}'));
        $owner = $this->storedToken('w');
        $this->assertSame(1, \RedisLock\Laravel\WatchedLocks::count());
        usleep(900_000); // 3 TTLs, the object long gone
        $this->assertSame($owner, $this->storedToken('w'), 'renewed while this process holds it');
        $this->assertTrue($store->restoreLock('w', $owner)->release());
        $this->assertSame(0, \RedisLock\Laravel\WatchedLocks::count(), 'released: no longer kept');

        $this->assertTrue($store->lock('s', 10)->get());
        $this->assertGreaterThan(9_000, $this->redis->pTtl('lock:{s}'), 'with seconds: their TTL, not watched');
        $this->assertSame(0, \RedisLock\Laravel\WatchedLocks::count());

        $lock = $store->lock('r');
        $this->assertTrue($lock->get());
        $this->assertTrue($lock->refresh());
        $this->assertLessThanOrEqual(300, $this->redis->pTtl('lock:{r}'), 'refresh() without seconds: watchdog_ttl');
        $lock->forceRelease();
        $this->assertSame(0, \RedisLock\Laravel\WatchedLocks::count());
    }

    /** @return iterable<string, array{string, string}> */
    public static function badWatchdogConfigs(): iterable
    {
        yield 'watchdog not a bool' => ['watchdog-not-bool', '`watchdog` config key of a redis-lock cache store must be true or false, string given'];
        yield 'watchdog_ttl zero' => ['watchdog-ttl-zero', '`watchdog_ttl` config key'];
        yield 'watchdog_ttl a string' => ['watchdog-ttl-string', '`watchdog_ttl` config key'];
    }

    /**
     * @dataProvider badWatchdogConfigs
     */
    #[\PHPUnit\Framework\Attributes\DataProvider('badWatchdogConfigs')]
    public function testBadWatchdogConfigIsRefused(string $store, string $message): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage($message);
        Cache::store($store);
    }

    public function testOnlyTheOwnerReleases(): void
    {
        $mine = Cache::lock('k', 10);
        $theirs = Cache::lock('k', 10);
        $this->assertNotSame($mine->owner(), $theirs->owner());
        $this->assertTrue($mine->get());
        $this->assertFalse($theirs->release());
        $this->assertSame($mine->owner(), $this->storedToken('k'));
        $this->assertTrue($mine->release());
        $this->assertFalse($mine->release());
    }

    public function testRestoreLockFromAnotherProcess(): void
    {
        $lock = Cache::lock('job', 30);
        $this->assertTrue($lock->get());
        $owner = $lock->owner();
        [$child] = Workers::run(1, function () use ($owner) {
            self::app();
            $stranger = Cache::restoreLock('job', 'someone-else');
            $restored = Cache::restoreLock('job', $owner);
            return [$stranger->release(), $restored->owner(), $restored->release()];
        });
        $this->assertSame([false, $owner, true], $child);
        $this->assertSame(0, $this->redis->exists('lock:{job}'));
    }

    public function testForceRelease(): void
    {
        $this->assertTrue(Cache::lock('k', 30)->get());
        Cache::lock('k')->forceRelease();
        $this->assertSame(0, $this->redis->exists('lock:{k}'));
    }

    public function testBlockTimesOutWithLaravelsException(): void
    {
        $this->assertTrue(Cache::lock('k', 30)->get());
        $lock = Cache::lock('k', 10);
        $this->assertSame($lock, $lock->betweenBlockedAttemptsSleepFor(50), 'accepted, and not needed');
        $start = microtime(true);
        try {
            $lock->block(0.3, fn () => $this->fail('must not run'));
            $this->fail('expected LockTimeoutException');
        } catch (LockTimeoutException) {
        }
        $took = microtime(true) - $start;
        $this->assertGreaterThanOrEqual(0.29, $took);
        $this->assertLessThan(0.8, $took);
    }

    public function testBlockIsWokenByTheReleaseNotByPolling(): void
    {
        $pid = pcntl_fork();
        if ($pid === 0) {
            self::app();
            $holder = Cache::lock('k', 30);
            $holder->get();
            usleep(300_000);
            $r = self::$server->client();
            $r->set('released-at', (string) microtime(true));
            $holder->release();
            posix_kill(getmypid(), SIGKILL);
        }
        while (!$this->redis->exists('lock:{k}')) {
            usleep(1000);
        }
        $result = Cache::lock('k', 10)->block(5, fn () => microtime(true));
        pcntl_waitpid($pid, $status);
        $latency = $result - (float) $this->redis->get('released-at');
        $this->assertGreaterThan(0, $latency);
        $this->assertLessThan(0.1, $latency, 'Laravel\'s own block() sleeps 250 ms between tries');
        $this->assertSame(0, $this->redis->exists('lock:{k}'), 'block() with a callback releases');
    }

    public function testWithdrawFundsWithEightWorkersNeverOverdrawsAndTotalsExactly(): void
    {
        Cache::store('redis')->forever('balance', 1000);
        $results = Workers::run(8, function () {
            self::app();
            $withdrawn = 0;
            $lowest = PHP_INT_MAX;
            for ($i = 0; $i < 200; $i++) {
                // A WithdrawFunds action: read the balance, check it covers the amount, write it back.
                $ok = Cache::lock('account:1', 5)->block(10, function () use (&$lowest) {
                    $balance = (int) Cache::store('redis')->get('balance');
                    $lowest = min($lowest, $balance);
                    if ($balance < 1) {
                        return false;
                    }
                    usleep(random_int(0, 100));
                    Cache::store('redis')->forever('balance', $balance - 1);
                    return true;
                });
                $withdrawn += (int) $ok;
            }
            return [$withdrawn, $lowest];
        });
        $this->assertSame(1000, array_sum(array_column($results, 0)), '1600 attempts, exactly 1000 granted');
        $this->assertSame(0, (int) Cache::store('redis')->get('balance'));
        $this->assertGreaterThanOrEqual(0, min(array_column($results, 1)), 'never overdrawn');
    }

    public function testOneSetOfClassesMeetsTheContractsOfThisLaravelVersion(): void
    {
        $store = Cache::store('locks')->getStore();
        $this->assertInstanceOf(Store::class, $store);
        $this->assertInstanceOf(LockProvider::class, $store);
        $lock = $store->lock('x', 1);
        $this->assertInstanceOf(Lock::class, $lock);
        $this->assertFalse((new \ReflectionClass($lock))->isAbstract());
        // What each version's contracts have; the classes have all of it on every version.
        $major = (int) Application::VERSION;
        if (interface_exists(\Illuminate\Contracts\Cache\CanFlushLocks::class)) {
            $this->assertInstanceOf(\Illuminate\Contracts\Cache\CanFlushLocks::class, $store);
            $this->assertTrue(Cache::store('locks')->supportsFlushingLocks());
        } else {
            $this->assertLessThan(13, $major, 'CanFlushLocks is in Laravel 13');
        }
        if ($major < 11 || $major >= 13) {
            $this->assertSame($major >= 13, method_exists(Store::class, 'touch'), 'Store::touch() is in Laravel 13, not 8 or 10');
        }
        foreach (['isOwnedBy' => 11, 'isLocked' => 13, 'refresh' => 13] as $method => $since) {
            if ($major >= $since) {
                $this->assertTrue(method_exists(Lock::class, $method), "Lock::$method() in Laravel $major");
            } elseif ($major < 11) {
                $this->assertFalse(method_exists(Lock::class, $method), "Lock::$method() is not in Laravel $major");
            }
        }
        $this->assertSame($major >= 9, (new \ReflectionMethod(Lock::class, 'isOwnedByCurrentProcess'))->isPublic(), 'protected in Laravel 8');
        foreach (['isOwnedBy', 'isLocked', 'refresh', 'isOwnedByCurrentProcess', 'touch', 'flushLocks'] as $method) {
            $class = in_array($method, ['touch', 'flushLocks'], true) ? $store : $lock;
            $this->assertTrue((new \ReflectionMethod($class, $method))->isPublic(), $method);
        }
        if (method_exists(Repository::class, 'getName')) {
            $this->assertSame('locks', Cache::store('locks')->getName(), 'events name the store, not its values store');
        }
    }

    public function testRefreshSetsANewTtlOnlyForTheOwner(): void
    {
        $lock = Cache::lock('r', 10);
        $this->assertFalse($lock->refresh(), 'not held');
        $this->assertTrue($lock->get());
        $this->assertTrue($lock->refresh(60));
        $this->assertGreaterThan(59_000, $this->redis->pTtl('lock:{r}'));
        $this->assertTrue($lock->refresh(), 'the lock\'s own TTL');
        $this->assertLessThanOrEqual(10_000, $this->redis->pTtl('lock:{r}'));
        $this->assertGreaterThan(9_000, $this->redis->pTtl('lock:{r}'));
        $this->assertTrue($lock->refresh(0), '0: never expires, as lock($name, 0)');
        $this->assertGreaterThan((RedisLockStore::FOREVER - 5) * 1000, $this->redis->pTtl('lock:{r}'));
        $this->assertFalse(Cache::lock('r', 10)->refresh(30), 'another owner');
        $this->assertTrue(Cache::restoreLock('r', $lock->owner())->refresh(5), 'the owner, restored');
        $this->assertLessThanOrEqual(5_000, $this->redis->pTtl('lock:{r}'));
        $this->assertTrue($lock->release());
        $this->assertFalse($lock->refresh());
    }

    public function testIsLockedAndWhoOwnsIt(): void
    {
        $holder = Cache::lock('o', 10);
        $other = Cache::lock('o', 10);
        $this->assertFalse($other->isLocked());
        $this->assertTrue($other->isOwnedBy(null), 'null: no one holds it');
        $this->assertTrue($holder->get());
        $this->assertTrue($other->isLocked());
        $this->assertTrue($holder->isOwnedByCurrentProcess());
        $this->assertFalse($other->isOwnedByCurrentProcess());
        $this->assertTrue($other->isOwnedBy($holder->owner()), 'asked of any Lock object');
        $this->assertFalse($other->isOwnedBy($other->owner()));
        $this->assertFalse($other->isOwnedBy(null));
        $this->assertFalse($other->isOwnedBy('someone-else'));
        [$child] = Workers::run(1, function () use ($holder) {
            self::app();
            $restored = Cache::restoreLock('o', $holder->owner());
            return [$restored->isLocked(), $restored->isOwnedByCurrentProcess(), Cache::lock('o')->isOwnedBy($holder->owner())];
        });
        $this->assertSame([true, true, true], $child, 'the owner token is the same in another process');
        $this->assertTrue($holder->release());
        $this->assertFalse($holder->isLocked());
        $this->assertFalse($holder->isOwnedByCurrentProcess());
    }

    public function testTouchSetsANewExpiryOnAValue(): void
    {
        $repo = Cache::store('by-connection');
        $repo->put('t', 'v', 10);
        $key = Cache::store('redis')->getStore()->getPrefix() . 't';
        $this->assertTrue($repo->getStore()->touch('t', 100));
        $this->assertGreaterThan(90, $this->redis->ttl($key));
        $this->assertFalse((bool) $repo->getStore()->touch('missing', 100));
        if (method_exists(Repository::class, 'touch')) {
            $this->assertTrue($repo->touch('t', 200), 'Cache::touch() (Laravel 13)');
            $this->assertGreaterThan(190, $this->redis->ttl($key));
        }
        // A values store without touch() of its own: the value is put again.
        $store = new RedisLockStore($this->dsn(), [], new \Illuminate\Cache\ArrayStore());
        $store->put('a', 'b', 1);
        $this->assertTrue($store->touch('a', 100));
        \Illuminate\Support\Carbon::setTestNow(\Illuminate\Support\Carbon::now()->addSeconds(50));
        try {
            $this->assertSame('b', $store->get('a'), 'still there after its first second');
        } finally {
            \Illuminate\Support\Carbon::setTestNow();
        }
    }

    public function testWithConnectionValuesGoToLaravelsRedisStoreOnIt(): void
    {
        $repo = Cache::store('by-connection');
        $this->assertTrue($repo->put('greeting', 'hello', 60));
        $this->assertSame('hello', Cache::store('redis')->get('greeting'), 'shared with every server');
        $prefix = Cache::store('redis')->getStore()->getPrefix();
        $this->assertSame('hello', unserialize($this->redis->get($prefix . 'greeting')), 'under the app\'s cache.prefix');
        $this->assertTrue($repo->has('greeting'));
        $this->assertTrue($repo->add('once', 'first', 60));
        $this->assertFalse($repo->add('once', 'second', 60), 'add() is the redis store\'s atomic one');
        $this->assertSame('first', $repo->get('once'));
        $this->assertTrue($repo->getStore()->add('once2', 1, 60));
        $this->assertFalse($repo->getStore()->add('once2', 1, 60));
        $this->assertSame($prefix, $repo->getStore()->getPrefix());
    }

    public function testWithOnlyADsnValueOperationsThrowNamingTheStoreKey(): void
    {
        $repo = Cache::store('by-dsn');
        foreach ([
            'get' => fn () => $repo->get('k'),
            'put' => fn () => $repo->put('k', 'v', 10),
            'add' => fn () => $repo->add('k', 'v', 10),
            'has' => fn () => $repo->has('k'),
            'increment' => fn () => $repo->increment('k'),
            'forever' => fn () => $repo->forever('k', 1),
            'forget' => fn () => $repo->forget('k'),
            'touch' => fn () => $repo->getStore()->touch('k', 10),
            'flush' => fn () => $repo->flush(),
        ] as $operation => $call) {
            try {
                $call();
                $this->fail("$operation() must throw");
            } catch (\LogicException $e) {
                $this->assertStringContainsString('`store` config key', $e->getMessage(), $operation);
            }
        }
        $this->assertSame([], $this->redis->keys('*'), 'nothing written anywhere');
        $this->assertTrue($repo->lock('still', 10)->get(), 'locks work');
    }

    public function testAValuesStoreThatIsARedisLockStoreIsRefused(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('[by-dsn] is a redis-lock store');
        Cache::store('values-in-locks');
    }

    /**
     * The scheduler's onOneServer() (CacheSchedulingMutex) and, on Laravel 8,
     * withoutOverlapping() (CacheEventMutex) use add()/has() where the store
     * has no locks (8, and 10 for onOneServer): with `connection` and no
     * `store` they share Redis, so of two servers one gets each mutex.
     */
    public function testTheSchedulerMutexesAreSharedByTwoServers(): void
    {
        $time = new \DateTimeImmutable('2024-01-01 12:34:00');
        $results = Workers::run(2, function () use ($time) {
            $app = self::app();
            $event = new Event(new CacheEventMutex($app['cache']), 'php artisan report');
            $oneServer = (new CacheSchedulingMutex($app['cache']))->useStore('by-connection');
            $overlap = (new CacheEventMutex($app['cache']))->useStore('by-connection');
            return [$oneServer->create($event, $time), $overlap->create($event)];
        });
        $this->assertSame([1, 1], [array_sum(array_column($results, 0)), array_sum(array_column($results, 1))], json_encode($results));
        $app = self::app();
        $event = new Event(new CacheEventMutex($app['cache']), 'php artisan report');
        $this->assertTrue((new CacheSchedulingMutex($app['cache']))->useStore('by-connection')->exists($event, $time));
        $overlap = (new CacheEventMutex($app['cache']))->useStore('by-connection');
        $this->assertTrue($overlap->exists($event));
        $overlap->forget($event);
        $this->assertFalse($overlap->exists($event));
        $this->assertTrue($overlap->create($event));
    }

    public function testFlushLocksRemovesTheLocksOfThisPrefixOnly(): void
    {
        $repo = Cache::store('by-connection');
        foreach (['a', 'b}:fence', 'c*', ''] as $i => $name) {
            if ($name !== '') {
                $this->assertTrue($repo->lock($name, 60)->get());
            }
        }
        $this->assertTrue(Cache::store('by-dsn')->lock('other-prefix', 60)->get());
        $this->assertTrue((new \RedisLock\LockManager($this->dsn(), ['prefix' => 'gX:']))->createLock('z', 60, false)->acquire());
        $repo->put('value', 'kept', 60);
        $this->assertTrue(Cache::store('glob')->flushLocks(), 'the prefix g*: is no pattern');
        $this->assertSame(1, $this->redis->exists('gX:{z}'));

        // A process waiting for a flushed lock gets it at once.
        $pid = pcntl_fork();
        if ($pid === 0) {
            self::app();
            $r = self::$server->client();
            $got = Cache::store('by-connection')->lock('a', 60)->block(10, fn () => microtime(true));
            $r->set('waiter-got', (string) $got);
            posix_kill(getmypid(), SIGKILL);
        }
        $this->assertTrue($this->waitForKey('lock:{a}:waiters'), 'the child waits');
        $flushed = microtime(true);
        $this->assertTrue($repo->flushLocks());
        pcntl_waitpid($pid, $status);
        $this->assertLessThan(0.5, (float) $this->redis->get('waiter-got') - $flushed, 'woken, not left to the TTL');
        $this->assertSame([], $this->redis->keys('lock:{*}'), 'no lock left under lock:');
        $this->assertSame(1, $this->redis->exists('dsn-lock:{other-prefix}'), 'another prefix is left alone');
        $this->assertSame('kept', $repo->get('value'), 'values are not locks');

        $this->expectException(\LogicException::class);
        $this->expectExceptionMessage('`connection`');
        Cache::store('by-dsn')->flushLocks();
    }

    private function waitForKey(string $key): bool
    {
        $deadline = microtime(true) + 5;
        while (!$this->redis->exists($key)) {
            if (microtime(true) > $deadline) {
                return false;
            }
            usleep(1000);
        }
        return true;
    }

    public function testDsnFromLaravelRedisConfig(): void
    {
        $this->assertSame('redis://127.0.0.1:6380/2', RedisLockStore::dsnFromRedisConfig(['host' => '127.0.0.1', 'port' => 6380, 'database' => 2], 'x'));
        $this->assertSame('redis://app:p%40ss@h:6379/0', RedisLockStore::dsnFromRedisConfig(['host' => 'h', 'username' => 'app', 'password' => 'p@ss'], 'x'));
        $this->assertSame('rediss://h:6379/0', RedisLockStore::dsnFromRedisConfig(['host' => 'h', 'scheme' => 'tls'], 'x'));
        $this->assertSame('redis://u@h:1', RedisLockStore::dsnFromRedisConfig(['url' => 'redis://u@h:1'], 'x'));
        $this->assertSame('unix:///run/redis.sock', RedisLockStore::dsnFromRedisConfig(['host' => '/run/redis.sock', 'scheme' => 'unix'], 'x'));
        $this->expectException(\InvalidArgumentException::class);
        RedisLockStore::dsnFromRedisConfig(null, 'missing');
    }
}
