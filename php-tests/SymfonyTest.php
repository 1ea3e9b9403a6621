<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\Symfony\RedisLockStore;
use Symfony\Component\Lock\BlockingSharedLockStoreInterface;
use Symfony\Component\Lock\BlockingStoreInterface;
use Symfony\Component\Lock\Exception\LockConflictedException;
use Symfony\Component\Lock\Exception\LockExpiredException;
use Symfony\Component\Lock\Key;
use Symfony\Component\Lock\LockFactory;
use Symfony\Component\Lock\PersistingStoreInterface;
use Symfony\Component\Lock\SharedLockStoreInterface;
use Symfony\Component\Lock\Store\RedisStore;

/**
 * The store with Debian's php-symfony-lock (5.4, 6.4 or 7.4, whichever the
 * stack has), checked against Symfony's own RedisStore (over phpredis) in the
 * same scenarios.
 */
final class SymfonyTest extends TestCase
{
    public static function setUpBeforeClass(): void
    {
        require_once '/usr/share/php/Symfony/Component/Lock/autoload.php';
    }

    private function ours(array $options = []): RedisLockStore
    {
        return new RedisLockStore($this->dsn(), $options);
    }

    /** @return array<string, PersistingStoreInterface> */
    private function stores(): array
    {
        return ['redis_lock' => $this->ours(), 'symfony RedisStore' => new RedisStore(self::$server->client())];
    }

    /** The Redis key under which the store named $name keeps $resource. */
    private function stored(string $name, string $resource): string
    {
        return $name === 'redis_lock' ? 'lock:{' . $resource . '}' : $resource;
    }

    public function testInterfaces(): void
    {
        $store = $this->ours();
        $this->assertInstanceOf(PersistingStoreInterface::class, $store);
        $this->assertInstanceOf(BlockingStoreInterface::class, $store);
        $this->assertInstanceOf(SharedLockStoreInterface::class, $store);
        $this->assertInstanceOf(BlockingSharedLockStoreInterface::class, $store);
    }

    /**
     * One class for every Symfony version: it declares the return types of
     * Symfony 7, which the untyped methods of 5.4 and 6.4 accept. A method that a
     * later version adds to the interfaces fails here.
     */
    public function testTheStoreMatchesTheInterfacesOfThisSymfonyVersion(): void
    {
        $declared = [];
        $interfaces = [PersistingStoreInterface::class, BlockingStoreInterface::class,
            SharedLockStoreInterface::class, BlockingSharedLockStoreInterface::class];
        foreach ($interfaces as $interface) {
            foreach ((new \ReflectionClass($interface))->getMethods() as $method) {
                $declared[$method->getName()] = $method->hasReturnType() ? (string) $method->getReturnType() : null;
                $ours = new \ReflectionMethod(RedisLockStore::class, $method->getName());
                $this->assertSame(
                    array_map(fn ($p) => [$p->getName(), (string) $p->getType()], $method->getParameters()),
                    array_map(fn ($p) => [$p->getName(), (string) $p->getType()], $ours->getParameters()),
                    $method->getName()
                );
            }
        }
        ksort($declared);
        $ours = [];
        foreach (array_keys($declared) as $name) {
            $ours[$name] = (string) (new \ReflectionMethod(RedisLockStore::class, $name))->getReturnType();
        }
        $all = ['delete' => 'void', 'exists' => 'bool', 'putOffExpiration' => 'void', 'save' => 'void',
            'saveRead' => 'void', 'waitAndSave' => 'void', 'waitAndSaveRead' => 'void'];
        $this->assertSame($all, $ours);
        $this->assertContains($declared, [
            'Symfony 5.4: untyped' => array_map(fn () => null, $all),
            'Symfony 6.4: exists() typed' => array_replace(array_map(fn () => null, $all), ['exists' => 'bool']),
            'Symfony 7: all typed' => $all,
        ]);
    }

    /**
     * Symfony's ErrorHandler turns PHP warnings into exceptions: a lock
     * granted without Redis (on_unavailable = open) must come back as
     * acquired, and be told to the store's PSR-3 logger instead.
     */
    public function testAFailOpenGrantUnderSymfonysErrorHandlerIsAcquiredAndLogged(): void
    {
        $port = RedisServer::freePort();
        $root = dirname(__DIR__);
        [$code, $out, $err] = self::runPhp(<<<PHP
        <?php
        require '/usr/share/php/Symfony/Component/Lock/autoload.php';
        require '/usr/share/php/Symfony/Component/ErrorHandler/autoload.php';
        require '/usr/share/php/Psr/Log/autoload.php';
        require '$root/php/autoload.php';
        Symfony\\Component\\ErrorHandler\\ErrorHandler::register();
        final class Lines extends Psr\\Log\\AbstractLogger {
            public array \$lines = [];
            public function log(\$level, \$message, array \$context = []): void { \$this->lines[] = [\$level, (string) \$message]; }
        }
        \$log = new Lines();
        \$store = new RedisLock\\Symfony\\RedisLockStore('redis://127.0.0.1:$port', ['on_unavailable' => 'open', 'connect_timeout' => 0.3], \$log);
        \$lock = (new Symfony\\Component\\Lock\\LockFactory(\$store))->createLock('invoice', 30);
        \$r = [\$lock->acquire(), \$lock->isAcquired()];
        \$lock->release();
        echo json_encode(['results' => \$r, 'lines' => \$log->lines]);
        PHP);
        $this->assertSame(0, $code, $out . $err);
        $got = json_decode($out, true);
        $this->assertSame([true, true], $got['results'], $err);
        $this->assertCount(1, $got['lines']);
        $this->assertSame('warning', $got['lines'][0][0]);
        $this->assertStringContainsString('on_unavailable=open', $got['lines'][0][1]);
    }

    public function testLockLifecycleThroughTheFactory(): void
    {
        $factory = new LockFactory($this->ours());
        $lock = $factory->createLock('invoice', 30);
        $this->assertTrue($lock->acquire());
        $this->assertTrue($lock->isAcquired());
        $this->assertFalse($lock->isExpired());
        $remaining = $lock->getRemainingLifetime();
        $this->assertGreaterThan(29, $remaining);
        $this->assertGreaterThan(29_000, $this->redis->pTtl('lock:{invoice}'), 'the Lock\'s TTL reached Redis');

        $other = $factory->createLock('invoice', 30);
        $this->assertFalse($other->acquire(), 'a conflict is false for a non-blocking acquire');
        $this->assertFalse($other->isAcquired());

        $lock->refresh(60);
        $this->assertGreaterThan(59_000, $this->redis->pTtl('lock:{invoice}'));
        $lock->release();
        $this->assertFalse($lock->isAcquired());
        $this->assertSame(0, $this->redis->exists('lock:{invoice}'));
        $this->assertTrue($other->acquire());
    }

    public function testSameSemanticsAsSymfonysRedisStore(): void
    {
        $outcomes = [];
        foreach ($this->stores() as $name => $store) {
            $this->redis->flushAll();
            $factory = new LockFactory($store);
            $o = [];
            $a = $factory->createLock('r', 0.2, false);
            $b = $factory->createLock('r', 10, false);
            $stored = $this->stored($name, 'r');
            $o['a acquires'] = $a->acquire();
            $o['a acquires again while holding'] = $a->acquire();
            $o['b acquires while held'] = $b->acquire();
            try {
                $b->release();
                $o['b releases a lock it does not hold'] = 'no exception';
            } catch (\Throwable $e) {
                $o['b releases a lock it does not hold'] = get_class($e);
            }
            $o['a still holds after b released'] = $a->isAcquired();
            $a->refresh(5);
            $o['a refresh(5): seconds in redis'] = (int) round($this->redis->pTtl($stored) / 1000);
            $o['a refresh(5): remaining lifetime'] = (int) round($a->getRemainingLifetime());
            $a->refresh(0.2);
            try {
                $b->refresh();
                $o['b refreshes a lock it does not hold'] = 'no exception';
            } catch (\Throwable $e) {
                $o['b refreshes a lock it does not hold'] = get_class($e);
            }
            usleep(300_000);
            $o['a after its ttl: isAcquired'] = $a->isAcquired();
            $o['a after its ttl: isExpired'] = $a->isExpired();
            $o['b acquires after a expired'] = $b->acquire();
            try {
                $a->refresh();
                $o['a refreshes after expiry and takeover'] = 'no exception';
            } catch (\Throwable $e) {
                $o['a refreshes after expiry and takeover'] = get_class($e);
            }
            $a->release();
            $o['b still holds after a released'] = $b->isAcquired();
            $o['store exists for b'] = $store->exists(new Key('r')) ? 'yes' : 'no (a fresh key has another token)';
            $b->release();
            $o['b released'] = !$b->isAcquired();
            $c = $factory->createLock('lonely', 0.2, false);
            $o['c acquires'] = $c->acquire();
            usleep(300_000);
            try {
                $c->refresh();
                $o['c refreshes after expiry, nobody else took it'] = 'no exception';
            } catch (\Throwable $e) {
                $o['c refreshes after expiry, nobody else took it'] = get_class($e);
            }
            $o['c acquires again'] = $c->acquire();
            $c->release();
            $outcomes[$name] = $o;
        }
        $this->assertSame($outcomes['symfony RedisStore'], $outcomes['redis_lock']);
        $this->assertSame(LockConflictedException::class, $outcomes['redis_lock']['a refreshes after expiry and takeover']);
    }

    public function testARefreshThatOutlastsItsTtlFailsAsWithSymfonysStore(): void
    {
        $seen = [];
        foreach (['redis_lock', 'symfony RedisStore'] as $name) {
            $server = RedisServer::start();
            $store = $name === 'redis_lock'
                ? new RedisLockStore($server->dsn(), ['timeout' => 2])
                : new RedisStore($server->client());
            $lock = (new LockFactory($store))->createLock('r', 30, false);
            $this->assertTrue($lock->acquire(), $name);
            // Stall Redis for 150 ms so that a 50 ms refresh cannot finish in time.
            $server->pause();
            $pid = pcntl_fork();
            if ($pid === 0) {
                usleep(150_000);
                $server->resume();
                posix_kill(getmypid(), SIGKILL);
            }
            try {
                $lock->refresh(0.05);
                $seen[$name] = 'no exception';
            } catch (\Throwable $e) {
                $seen[$name] = [get_class($e), $e->getPrevious() ? get_class($e->getPrevious()) : null];
            } finally {
                pcntl_waitpid($pid, $status);
                $server->resume();
            }
            $this->assertSame([], self::lockKeys($server->client()), "$name: the expired lock was deleted");
            $server->stop();
        }
        $this->assertSame($seen['symfony RedisStore'], $seen['redis_lock']);
        $this->assertSame(LockExpiredException::class, $seen['redis_lock'][1], 'the store reports the expiry');
    }

    public function testBlockingAcquireIsWokenByTheRelease(): void
    {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $holder = (new LockFactory($this->ours()))->createLock('r', 30);
            $holder->acquire();
            usleep(300_000);
            self::$server->client()->set('released-at', (string) microtime(true));
            $holder->release();
            posix_kill(getmypid(), SIGKILL);
        }
        while (!$this->redis->exists('lock:{r}')) {
            usleep(1000);
        }
        $this->assertTrue((new LockFactory($this->ours()))->createLock('r', 30)->acquire(true));
        $latency = microtime(true) - (float) $this->redis->get('released-at');
        pcntl_waitpid($pid, $status);
        $this->assertLessThan(0.1, $latency, 'Symfony polls every ~100 ms for stores that cannot block');
    }

    public function testAutoReleaseOnDestruct(): void
    {
        $factory = new LockFactory($this->ours());
        $lock = $factory->createLock('r', 30);
        $this->assertTrue($lock->acquire());
        unset($lock);
        $this->assertSame(0, $this->redis->exists('lock:{r}'));

        $kept = $factory->createLock('k', 30, false);
        $this->assertTrue($kept->acquire());
        unset($kept);
        $this->assertSame(1, $this->redis->exists('lock:{k}'));
    }

    /**
     * Runs $body in a new php process (not a fork) with both stores at hand:
     * `$store` is the one named $name, `$in` the given string. Returns what
     * the body returns, through JSON.
     */
    private function inAnotherProcess(string $name, string $body, string $in = ''): mixed
    {
        $code = '<?php
            declare(strict_types=1);
            require "/usr/share/php/Symfony/Component/Lock/autoload.php";
            require ' . var_export(dirname(__DIR__) . '/php/autoload.php', true) . ';
            use Symfony\Component\Lock\{Key, LockFactory};
            $redis = new \Redis();
            $redis->connect("127.0.0.1", ' . self::$server->port . ');
            $store = ' . var_export($name, true) . ' === "redis_lock"
                ? new \RedisLock\Symfony\RedisLockStore(' . var_export($this->dsn(), true) . ')
                : new \Symfony\Component\Lock\Store\RedisStore($redis);
            $in = base64_decode(' . var_export(base64_encode($in), true) . ');
            echo json_encode((function () use ($store, $in) {' . $body . '})());';
        [$exit, $out, $err] = self::runPhp($code);
        $this->assertSame(0, $exit, "$name: $out $err");
        $this->assertSame('', $err, $name);
        return json_decode($out, true, 512, JSON_THROW_ON_ERROR);
    }

    /**
     * A Key serialized in one process owns its lock in another, a new php
     * process: there it is refreshed and released (the token travels in the
     * Key's state); and the Key of a lock that a new process took comes back
     * here, still owning it, to be released. Side by side with Symfony's
     * RedisStore.
     */
    public function testASerializedKeyOwnsItsLockInAnotherProcess(): void
    {
        $seen = [];
        foreach ($this->stores() as $name => $store) {
            $this->redis->flushAll();
            $key = new Key('batch-42');
            $this->assertTrue((new LockFactory($store))->createLockFromKey($key, 30, false)->acquire(), $name);

            $seen[$name]['there'] = $this->inAnotherProcess($name, '
                $key = unserialize($in);
                $factory = new LockFactory($store);
                $lock = $factory->createLockFromKey($key, 30, false);
                $o = ["held there" => $lock->isAcquired(), "a fresh key there" => $factory->createLock("batch-42")->acquire()];
                $lock->refresh(60);
                $o["remaining after refresh"] = (int) round($lock->getRemainingLifetime());
                $lock->release();
                $o["held after release"] = $lock->isAcquired();
                return $o;', serialize($key));
            $seen[$name]['still in redis'] = $this->redis->exists($this->stored($name, 'batch-42'));

            $back = $this->inAnotherProcess($name, '
                $key = new Key("nightly");
                (new LockFactory($store))->createLockFromKey($key, 30, false)->acquire();
                return serialize($key);');
            $key = unserialize($back);
            $lock = (new LockFactory($store))->createLockFromKey($key, 30, false);
            $seen[$name]['here'] = [$lock->isAcquired(), (new LockFactory($store))->createLock('nightly')->acquire()];
            $lock->release();
            $seen[$name]['here'][] = $this->redis->exists($this->stored($name, 'nightly'));
        }
        $this->assertSame([
            'there' => ['held there' => true, 'a fresh key there' => false, 'remaining after refresh' => 60, 'held after release' => false],
            'still in redis' => 0,
            'here' => [true, false, 0],
        ], $seen['redis_lock']);
        $this->assertSame($seen['symfony RedisStore'], $seen['redis_lock']);
    }

    public function testInitialTtlComesFromTheTtlOption(): void
    {
        $store = $this->ours(['ttl' => 7]);
        $key = new Key('t');
        $store->save($key);
        $pttl = $this->redis->pTtl('lock:{t}');
        $this->assertGreaterThan(6_000, $pttl);
        $this->assertLessThanOrEqual(7_000, $pttl);
        $this->assertGreaterThan(6.0, $key->getRemainingLifetime());
    }
}
