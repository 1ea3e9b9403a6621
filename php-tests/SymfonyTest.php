<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\Symfony\RedisLockStore;
use Symfony\Component\Lock\BlockingStoreInterface;
use Symfony\Component\Lock\Exception\LockConflictedException;
use Symfony\Component\Lock\Exception\LockExpiredException;
use Symfony\Component\Lock\Key;
use Symfony\Component\Lock\LockFactory;
use Symfony\Component\Lock\PersistingStoreInterface;
use Symfony\Component\Lock\Store\RedisStore;

/**
 * The store with Debian's php-symfony-lock 5.4, checked against Symfony's own
 * RedisStore (over phpredis) in the same scenarios.
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

    public function testInterfaces(): void
    {
        $store = $this->ours();
        $this->assertInstanceOf(PersistingStoreInterface::class, $store);
        $this->assertInstanceOf(BlockingStoreInterface::class, $store);
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
            $o['a acquires'] = $a->acquire();
            $o['b acquires while held'] = $b->acquire();
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
            $this->assertSame(0, $server->client()->dbSize(), "$name: the expired lock was deleted");
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

    public function testASerializedKeyOwnsItsLockInAnotherProcess(): void
    {
        $store = $this->ours();
        $key = new Key('batch-42');
        $store->save($key);
        $serialized = serialize($key);
        [$child] = Workers::run(1, function () use ($serialized) {
            $store = new RedisLockStore(self::$server->dsn());
            $key = unserialize($serialized);
            $fresh = new Key('batch-42');
            $result = [$store->exists($key), $store->exists($fresh)];
            $store->putOffExpiration($key, 60);
            $store->delete($key);
            $result[] = $store->exists($key);
            return $result;
        });
        $this->assertSame([true, false, false], $child);
        $this->assertSame(0, $this->redis->exists('lock:{batch-42}'));
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
