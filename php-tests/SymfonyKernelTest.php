<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\Symfony\RedisLockStore;
use RedisLock\Tests\SymfonyKernel\LockUser;
use RedisLock\Tests\SymfonyKernel\RedisLockKernel;
use Symfony\Component\Lock\Exception\InvalidArgumentException;
use Symfony\Component\Lock\Key;
use Symfony\Component\Lock\LockFactory;
use Symfony\Component\Lock\Store\RedisStore;
use Symfony\Component\Lock\Store\StoreFactory;

/**
 * FrameworkBundle's LockFactory on this store: a real kernel (Debian's
 * FrameworkBundle 5.4, 6.4 or 7.4) booted with the README's wiring,
 * php-tests/SymfonyKernel/config/packages/redis_lock.php.
 */
final class SymfonyKernelTest extends TestCase
{
    private const PREFIX = 'app:lock:';

    private static RedisLockKernel $kernel;
    private static RedisLockKernel $bundleKernel;
    private static string $varDir;
    private static mixed $savedDsn;

    public static function setUpBeforeClass(): void
    {
        require_once '/usr/share/php/Symfony/Component/Lock/autoload.php';
        require_once '/usr/share/php/Symfony/Bundle/FrameworkBundle/autoload.php';
        require_once '/usr/share/php/Symfony/Component/Semaphore/autoload.php';
        if (!class_exists(\Composer\InstalledVersions::class)) {
            require_once __DIR__ . '/SymfonyKernel/InstalledVersions.php';
        }
        require_once __DIR__ . '/SymfonyKernel/RedisLockKernel.php';

        self::$savedDsn = $_ENV['REDIS_LOCK_DSN'] ?? null;
        $_ENV['REDIS_LOCK_DSN'] = self::$server->dsn();
        self::$varDir = sys_get_temp_dir() . '/rl-kernel-' . getmypid() . '-' . bin2hex(random_bytes(4));
        self::$kernel = new RedisLockKernel(self::$varDir);
        self::keepingHandlers(static fn () => self::$kernel->boot());
        self::$bundleKernel = new RedisLockKernel(self::$varDir . '-bundle', true);
        self::keepingHandlers(static fn () => self::$bundleKernel->boot());
    }

    public static function tearDownAfterClass(): void
    {
        self::$kernel->shutdown();
        self::$bundleKernel->shutdown();
        exec('rm -rf ' . escapeshellarg(self::$varDir . '-bundle'));
        if (self::$savedDsn === null) {
            unset($_ENV['REDIS_LOCK_DSN']);
        } else {
            $_ENV['REDIS_LOCK_DSN'] = self::$savedDsn;
        }
        exec('rm -rf ' . escapeshellarg(self::$varDir));
    }

    /**
     * FrameworkBundle::boot() installs Symfony's ErrorHandler as PHP's
     * exception (and maybe error) handler; give PHPUnit back its own.
     */
    private static function keepingHandlers(callable $fn): void
    {
        $error = set_error_handler(null);
        restore_error_handler();
        $exception = set_exception_handler(null);
        restore_exception_handler();
        try {
            $fn();
        } finally {
            for ($i = 0; $i < 8; $i++) {
                $now = set_error_handler(null);
                restore_error_handler();
                if ($now === $error || $now === null) {
                    break;
                }
                restore_error_handler();
            }
            for ($i = 0; $i < 8; $i++) {
                $now = set_exception_handler(null);
                restore_exception_handler();
                if ($now === $exception || $now === null) {
                    break;
                }
                restore_exception_handler();
            }
        }
    }

    private function kernelFactory(): LockFactory
    {
        return self::$kernel->getContainer()->get('test.lock.factory');
    }

    public function testLockFactoryServiceAndAutowiringAliasUseTheStore(): void
    {
        $container = self::$kernel->getContainer();
        $factory = $this->kernelFactory();
        $this->assertInstanceOf(LockFactory::class, $factory);
        $this->assertSame($factory, $container->get(LockUser::class)->locks, 'the autowired LockFactory is lock.factory');

        $key = new Key('invoice-7');
        $lock = $factory->createLockFromKey($key, 30);
        $this->assertTrue($lock->acquire());

        // In Redis under the store's configured prefix, holding the owner
        // token that the store keeps in the Key; the extension knows it as
        // that lock's owner.
        $token = $key->getState(RedisLockStore::class);
        $this->assertSame($token, $this->redis->get(self::PREFIX . '{invoice-7}'));
        $this->assertSame([self::PREFIX . '{invoice-7}'], $this->redis->keys('*'));
        $this->assertGreaterThan(29_000, $this->redis->pTtl(self::PREFIX . '{invoice-7}'), 'the Lock\'s TTL reached Redis');
        $owner = (new \RedisLock\LockManager($this->dsn(), ['prefix' => self::PREFIX]))->restoreLock('invoice-7', $token);
        $this->assertTrue($owner->isAcquired());

        $lock->release();
        $this->assertSame(0, $this->redis->exists(self::PREFIX . '{invoice-7}'));
    }

    /**
     * RedisLockBundle, configured with `redis_lock: { dsn, prefix, options }`
     * beside `framework.lock`: the LockFactory service and autowiring alias,
     * and the SemaphoreFactory, use the extension's stores on that Redis.
     */
    public function testTheBundleWiresTheLockAndSemaphoreFactories(): void
    {
        $container = self::$bundleKernel->getContainer();
        $factory = $container->get('test.lock.factory');
        $this->assertInstanceOf(LockFactory::class, $factory);
        $this->assertSame($factory, $container->get(LockUser::class)->locks, 'autowired');
        $key = new Key('invoice-8');
        $lock = $factory->createLockFromKey($key, 30);
        $this->assertTrue($lock->acquire());
        $this->assertSame($key->getState(RedisLockStore::class), $this->redis->get('bundle:lock:{invoice-8}'));
        $lock->release();
        $this->assertSame(0, $this->redis->exists('bundle:lock:{invoice-8}'));

        $semaphores = $container->get('test.semaphore.factory');
        $this->assertInstanceOf(\Symfony\Component\Semaphore\SemaphoreFactory::class, $semaphores);
        $a = $semaphores->createSemaphore('api', 2);
        $b = $semaphores->createSemaphore('api', 2);
        $c = $semaphores->createSemaphore('api', 2);
        $this->assertTrue($a->acquire());
        $this->assertTrue($b->acquire());
        $this->assertFalse($c->acquire(), 'two permits, the third refused');
        $this->assertNotSame([], $this->redis->keys('bundle:lock:{api}*'), 'the permits are in Redis under the prefix');
        $a->release();
        $b->release();
    }

    /**
     * The bundle's `redis-lock:inspect` console command shows who holds a
     * lock of its store: this process, on this host, with the store's own
     * owner token.
     */
    public function testTheInspectCommandShowsTheHolder(): void
    {
        $factory = self::$bundleKernel->getContainer()->get('test.lock.factory');
        $key = new Key('invoice-9');
        $lock = $factory->createLockFromKey($key, 30);
        $this->assertTrue($lock->acquire());
        $app = new \Symfony\Bundle\FrameworkBundle\Console\Application(self::$bundleKernel);
        $tester = new \Symfony\Component\Console\Tester\CommandTester($app->find('redis-lock:inspect'));
        $this->assertSame(0, $tester->execute(['resource' => 'invoice-9']));
        $out = $tester->getDisplay();
        $this->assertStringContainsString("locked   yes\n", $out);
        $this->assertStringContainsString('owner    ' . $key->getState(RedisLockStore::class) . "\n", $out);
        $this->assertStringContainsString('holder   pid ' . getmypid() . ' on ' . self::tokenHost(getmypid()) . "\n", $out);
        $this->assertSame(0, $tester->execute(['resource' => 'invoice-9', '--json' => true]));
        $this->assertSame('exclusive', json_decode($tester->getDisplay(), true)['kind']);
        $lock->release();
        $this->assertSame(0, $tester->execute(['resource' => 'invoice-9']));
        $this->assertStringContainsString("locked   no\n", $tester->getDisplay());
    }

    public function testTheMetricsCommandShowsTheHostsTable(): void
    {
        $lock = self::$bundleKernel->getContainer()->get('test.lock.factory')->createLock('metrics-1', 30);
        $this->assertTrue($lock->acquire());
        $app = new \Symfony\Bundle\FrameworkBundle\Console\Application(self::$bundleKernel);
        $tester = new \Symfony\Component\Console\Tester\CommandTester($app->find('redis-lock:metrics'));
        $this->assertSame(0, $tester->execute(['--json' => true]));
        $seen = json_decode($tester->getDisplay(), true);
        $this->assertGreaterThanOrEqual(1, $seen['held']['lock'], 'this process holds a lock now');
        $lock->release();
        $this->assertSame(0, $tester->execute([]));
        $this->assertMatchesRegularExpression('/^lock +[1-9]\d* /m', $tester->getDisplay());
        $this->assertSame(0, $tester->execute(['--prometheus' => true]));
        $this->assertStringContainsString('redis_lock_acquires_total{kind="lock",result="acquired"} ', $tester->getDisplay());
    }

    /** The bundle's configuration: a DSN, a list of DSNs (Redlock) or null; nothing else. */
    public function testTheBundleConfigurationTakesADsnOrAListOfDsns(): void
    {
        $processor = new \Symfony\Component\Config\Definition\Processor();
        $configuration = new \RedisLock\Symfony\DependencyInjection\Configuration();
        $list = ['redis://127.0.0.1:1', 'redis://127.0.0.1:2', 'redis://127.0.0.1:3'];
        $this->assertSame($list, $processor->processConfiguration($configuration, [['dsn' => $list]])['dsn']);
        $this->assertNull($processor->processConfiguration($configuration, [[]])['dsn']);
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('redis_lock.dsn must be a DSN string, a list of DSN strings or null, int given');
        (new \RedisLock\Symfony\DependencyInjection\RedisLockExtension())
            ->load([['dsn' => 5]], new \Symfony\Component\DependencyInjection\ContainerBuilder());
    }

    public function testFrameworkBundlesOwnStoreIsLeftOutOfTheContainer(): void
    {
        $files = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator(self::$kernel->getCacheDir(), \FilesystemIterator::SKIP_DOTS));
        $mentions = [];
        $seen = 0;
        foreach ($files as $file) {
            if (str_ends_with((string) $file, '.php')) {
                $seen++;
                $code = (string) file_get_contents((string) $file);
                if (str_contains($code, 'StoreFactory')) {
                    $mentions[] = (string) $file;
                }
            }
        }
        $this->assertGreaterThan(0, $seen, 'the dumped container');
        $this->assertSame([], $mentions, 'the store framework.lock would make for "default" is never built');
    }

    public function testASecondFactorySeesTheConflict(): void
    {
        $kernelLock = $this->kernelFactory()->createLock('report', 30);
        $this->assertTrue($kernelLock->acquire());

        // Another application (or worker) with its own store on the same Redis.
        $other = new LockFactory(new RedisLockStore($this->dsn(), ['prefix' => self::PREFIX]));
        $otherLock = $other->createLock('report', 30);
        $this->assertFalse($otherLock->acquire());
        $this->assertFalse($this->kernelFactory()->createLock('report', 30)->acquire(), 'nor a second lock of the same factory');

        $kernelLock->release();
        $this->assertTrue($otherLock->acquire());
        $this->assertFalse($kernelLock->acquire(), 'and the other way round');
        $otherLock->release();
    }

    /**
     * Why the wiring redefines the factory: framework.lock makes each store
     * with StoreFactory, which takes DSNs and connections, never a store
     * object, and turns a redis:// DSN into Symfony's own RedisStore.
     */
    public function testStoreFactoryRefusesTheStore(): void
    {
        try {
            StoreFactory::createStore(new RedisLockStore($this->dsn()));
            $this->fail('StoreFactory accepted a store object');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString(RedisLockStore::class, $e->getMessage());
        }
        $this->assertInstanceOf(RedisStore::class, StoreFactory::createStore($this->dsn()));
    }
}
