<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use Illuminate\Cache\CacheServiceProvider;
use Illuminate\Cache\Repository;
use Illuminate\Config\Repository as Config;
use Illuminate\Contracts\Cache\LockTimeoutException;
use Illuminate\Foundation\Application;
use Illuminate\Redis\RedisServiceProvider;
use Illuminate\Support\Facades\Cache;
use Illuminate\Support\Facades\Facade;
use RedisLock\Laravel\ExtensionLock;
use RedisLock\Laravel\RedisLockServiceProvider;
use RedisLock\Laravel\RedisLockStore;

/**
 * The `redis-lock` cache driver inside a real Laravel application (Debian's
 * php-laravel-framework 8): Illuminate's Application, its cache and redis
 * service providers, and ours.
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
        $start = microtime(true);
        try {
            Cache::lock('k', 10)->betweenBlockedAttemptsSleepFor(50)->block(0.3, fn () => $this->fail('must not run'));
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
