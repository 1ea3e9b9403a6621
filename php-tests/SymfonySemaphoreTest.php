<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\Symfony\SemaphoreStore;
use Symfony\Component\Semaphore\Exception\InvalidArgumentException;
use Symfony\Component\Semaphore\Exception\RuntimeException;
use Symfony\Component\Semaphore\Exception\SemaphoreAcquiringException;
use Symfony\Component\Semaphore\Exception\SemaphoreExpiredException;
use Symfony\Component\Semaphore\Key;
use Symfony\Component\Semaphore\PersistingStoreInterface;
use Symfony\Component\Semaphore\SemaphoreFactory;
use Symfony\Component\Semaphore\Store\RedisStore;

/**
 * The semaphore store with Debian's php-symfony-semaphore (5.4 or 7.4,
 * whichever the stack has), side by side with Symfony's own RedisStore
 * (over phpredis) in the same scenarios.
 */
final class SymfonySemaphoreTest extends TestCase
{
    public static function setUpBeforeClass(): void
    {
        require_once '/usr/share/php/Symfony/Component/Semaphore/autoload.php';
    }

    private function ours(): SemaphoreStore
    {
        return new SemaphoreStore($this->dsn());
    }

    /** @return array<string, PersistingStoreInterface> */
    private function stores(): array
    {
        return ['redis_lock' => $this->ours(), 'symfony RedisStore' => new RedisStore(self::$server->client())];
    }

    public function testTheStoreMatchesTheInterfaceOfThisSymfonyVersion(): void
    {
        $this->assertInstanceOf(PersistingStoreInterface::class, $this->ours());
        $declared = [];
        foreach ((new \ReflectionClass(PersistingStoreInterface::class))->getMethods() as $method) {
            $declared[$method->getName()] = $method->hasReturnType() ? (string) $method->getReturnType() : null;
            $ours = new \ReflectionMethod(SemaphoreStore::class, $method->getName());
            $this->assertSame(
                array_map(fn ($p) => [$p->getName(), (string) $p->getType()], $method->getParameters()),
                array_map(fn ($p) => [$p->getName(), (string) $p->getType()], $ours->getParameters()),
                $method->getName()
            );
        }
        ksort($declared);
        $all = ['delete' => 'void', 'exists' => 'bool', 'putOffExpiration' => 'void', 'save' => 'void'];
        $ours = [];
        foreach (array_keys($declared) as $name) {
            $ours[$name] = (string) (new \ReflectionMethod(SemaphoreStore::class, $name))->getReturnType();
        }
        $this->assertSame($all, $ours);
        $this->assertContains($declared, [
            'Symfony 5.4: exists() typed' => array_replace(array_map(fn () => null, $all), ['exists' => 'bool']),
            'Symfony 7: all typed' => $all,
        ]);
    }

    public function testBothStoresHonourTheLimit(): void
    {
        foreach ($this->stores() as $label => $store) {
            $factory = new SemaphoreFactory($store);
            $a = $factory->createSemaphore("limit-$label", 2, 1, 30);
            $b = $factory->createSemaphore("limit-$label", 2, 1, 30);
            $c = $factory->createSemaphore("limit-$label", 2, 1, 30);
            $this->assertTrue($a->acquire(), $label);
            $this->assertTrue($b->acquire(), $label);
            $this->assertFalse($c->acquire(), "$label: two permits only");
            $this->assertTrue($a->isAcquired(), $label);
            $this->assertFalse($c->isAcquired(), $label);
            $a->release();
            $this->assertFalse($a->isAcquired(), $label);
            $this->assertTrue($c->acquire(), "$label: the freed permit is taken");
            $c->refresh(60);
            $this->assertTrue($c->isAcquired(), $label);
            $this->assertGreaterThan(50, $c->getRemainingLifetime(), $label);
            $b->release();
            $c->release();
        }
    }

    public function testBothStoresRefuseARefreshOfAnExpiredPermit(): void
    {
        foreach ($this->stores() as $label => $store) {
            $key = new Key("expired-$label", 1);
            $store->save($key, 30);
            $store->delete($key);
            $this->assertFalse($store->exists($key), $label);
            try {
                $store->putOffExpiration($key, 30);
                $this->fail("$label: refreshed a permit it no longer has");
            } catch (SemaphoreExpiredException) {
            }
            $this->assertFalse($store->exists($key), "$label: and it did not take one");
        }
    }

    public function testSaveThrowsTheAcquiringException(): void
    {
        foreach ($this->stores() as $label => $store) {
            $store->save(new Key("full-$label", 1), 30);
            try {
                $store->save(new Key("full-$label", 1), 30);
                $this->fail("$label: saved past the limit");
            } catch (SemaphoreAcquiringException $e) {
                $this->assertStringContainsString('could not be acquired', $e->getMessage(), $label);
            }
        }
    }

    public function testOurPermitEndsAtItsTtlOnTheServersClock(): void
    {
        $store = $this->ours();
        $key = new Key('short', 1);
        $store->save($key, 0.2);
        $this->assertTrue($store->exists($key));
        usleep(300_000);
        $this->assertFalse($store->exists($key), 'expired after 0.2 s (Symfony\'s RedisStore counts whole seconds)');
        $store->save(new Key('short', 1), 30);
    }

    public function testWeightsAreRefusedClearlyWhereSymfonyCountsThem(): void
    {
        $symfony = new RedisStore(self::$server->client());
        $symfony->save(new Key('weighted-symfony', 3, 2), 30);
        try {
            $symfony->save(new Key('weighted-symfony', 3, 2), 30);
            $this->fail('Symfony counts weights');
        } catch (SemaphoreAcquiringException) {
        }
        $semaphore = (new SemaphoreFactory($this->ours()))->createSemaphore('weighted', 3, 2);
        try {
            $semaphore->acquire();
            $this->fail('a weight of 2 must be refused');
        } catch (RuntimeException $e) {
            $this->assertInstanceOf(InvalidArgumentException::class, $e->getPrevious());
            $this->assertStringContainsString('does not support weights', $e->getPrevious()->getMessage());
        }
        $this->assertSame([], self::lockKeys($this->redis, 'lock:*'), 'nothing was stored');
    }

    public function testAKeyCarriesItsPermitToAnotherProcess(): void
    {
        $store = $this->ours();
        $key = new Key('travels', 1);
        $store->save($key, 30);
        [$code, $out, $err] = self::runPhp(sprintf(
            '<?php require %s; require %s;
            $store = new RedisLock\Symfony\SemaphoreStore(%s);
            $key = unserialize(%s);
            var_export($store->exists($key));
            $store->delete($key);
            var_export($store->exists($key));',
            var_export('/usr/share/php/Symfony/Component/Semaphore/autoload.php', true),
            var_export(dirname(__DIR__) . '/php/autoload.php', true),
            var_export($this->dsn(), true),
            var_export(serialize($key), true)
        ));
        $this->assertSame(0, $code, $err);
        $this->assertSame('truefalse', $out);
        $this->assertFalse($store->exists($key));
    }

    /** @return iterable<string, array{string}> */
    public static function storeNames(): iterable
    {
        yield 'redis_lock' => ['redis_lock'];
        yield 'symfony RedisStore' => ['symfony'];
    }

    /**
     * Eight forked workers through Symfony's Semaphore, retrying acquire()
     * as Symfony code must (it has no blocking acquire): never more than the
     * limit inside, with either store.
     *
     * @dataProvider storeNames
     */
    #[\PHPUnit\Framework\Attributes\DataProvider('storeNames')]
    public function testEightWorkersStayWithinTheLimit(string $which): void
    {
        $this->redis->set('inside', '0');
        $results = Workers::run(8, function () use ($which) {
            $r = self::$server->client();
            $store = $which === 'redis_lock' ? new SemaphoreStore(self::$server->dsn()) : new RedisStore(self::$server->client());
            $factory = new SemaphoreFactory($store);
            $most = 0;
            for ($i = 0; $i < 15; $i++) {
                $s = $factory->createSemaphore("workers-$which", 3, 1, 30);
                while (!$s->acquire()) {
                    usleep(random_int(500, 2000));
                }
                $most = max($most, $r->incr('inside'));
                usleep(2000);
                $r->decr('inside');
                $s->release();
            }
            return [$most];
        });
        $most = max(array_column($results, 0));
        $this->assertLessThanOrEqual(3, $most);
        $this->assertGreaterThanOrEqual(2, $most, 'the workers did overlap');
    }
}
