<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use PHPUnit\Framework\Attributes\DataProvider;
use RedisLock\ConnectionException;
use RedisLock\LockManager;
use RedisLock\RedisMutex;

/**
 * Redlock over five independent servers on loopback, through the PHP API:
 * a `redlock://` DSN and a list of DSNs; forked workers counting exactly;
 * two masters down and three down; bad input refused before anything is sent.
 */
final class RedlockTest extends \PHPUnit\Framework\TestCase
{
    /** @var list<RedisServer> */
    private array $masters = [];

    protected function setUp(): void
    {
        for ($i = 0; $i < 5; $i++) {
            $this->masters[] = RedisServer::start();
        }
    }

    protected function tearDown(): void
    {
        foreach ($this->masters as $m) {
            $m->stop();
        }
        $this->masters = [];
    }

    private function list(): array
    {
        return array_map(fn (RedisServer $m) => $m->dsn(), $this->masters);
    }

    private function redlockDsn(): string
    {
        return 'redlock://' . implode(',', array_map(fn (RedisServer $m) => "127.0.0.1:{$m->port}", $this->masters));
    }

    /** How many masters have lock $name set. */
    private function holders(string $name): int
    {
        $n = 0;
        foreach ($this->masters as $m) {
            if ($m->answers() && $m->client()->exists("lock:{{$name}}")) {
                $n++;
            }
        }
        return $n;
    }

    public function testBothFormsHoldAMajorityAndOnlyTheOwnerReleases(): void
    {
        $a = new LockManager($this->redlockDsn(), ['timeout' => 0.3, 'connect_timeout' => 0.3]);
        $b = new LockManager($this->list(), ['timeout' => 0.3, 'connect_timeout' => 0.3]);
        $la = $a->createLock('job', 5);
        $this->assertTrue($la->acquire());
        $this->assertSame(5, $this->holders('job'));
        $lb = $b->createLock('job', 5);
        $this->assertFalse($lb->acquire(), 'the other form sees the same lock');
        $this->assertTrue($b->isLocked('job'));
        $this->assertTrue($la->isAcquired());
        $this->assertNull($la->fencingToken());
        $left = $la->getRemainingLifetime();
        $this->assertGreaterThan(4.0, $left);
        $this->assertLessThanOrEqual(5.0, $left);
        $this->assertTrue($la->refresh(10));
        $this->assertGreaterThan(9.0, $la->getRemainingLifetime());
        $this->assertFalse($lb->release());
        $this->assertTrue($la->release());
        $this->assertSame(0, $this->holders('job'));
        $m = new RedisMutex($this->list());
        $this->assertSame(42, $m->synchronized('job', fn () => 42, 5));
        $this->assertTrue($lb->acquire());
        $this->assertTrue($a->forceRelease('job'));
        $this->assertSame(0, $this->holders('job'));
    }

    /** Symfony's Lock on the store given a list of DSNs: a lock over the masters. */
    public function testTheSymfonyStoreTakesTheListForm(): void
    {
        require_once '/usr/share/php/Symfony/Component/Lock/autoload.php';
        $store = new \RedisLock\Symfony\RedisLockStore($this->list(), ['prefix' => 'lock:', 'timeout' => 0.3]);
        $factory = new \Symfony\Component\Lock\LockFactory($store);
        $lock = $factory->createLock('symfony-job', 30);
        $this->assertTrue($lock->acquire());
        $this->assertSame(5, $this->holders('symfony-job'));
        $this->assertFalse($factory->createLock('symfony-job', 30)->acquire(), 'another owner is refused');
        $lock->release();
        $this->assertSame(0, $this->holders('symfony-job'));
    }

    public function testEightForkedWorkersCountExactly(): void
    {
        $this->masters[0]->client()->set('counter', '0');
        $counterPort = $this->masters[0]->port;
        $list = $this->list();
        $results = Workers::run(8, function () use ($list, $counterPort) {
            $redis = new \Redis();
            $redis->connect('127.0.0.1', $counterPort);
            $lm = new LockManager($list);
            for ($i = 0; $i < 200; $i++) {
                $lm->waitAndExecute('counter', function () use ($redis) {
                    $value = (int) $redis->get('counter');
                    $redis->set('counter', (string) ($value + 1));
                }, 30, 5);
            }
            return [$lm->stats()['acquired'] ?? null];
        });
        $this->assertSame('1600', $this->masters[0]->client()->get('counter'));
        foreach ($results as [$acquired]) {
            $this->assertSame(200, $acquired);
        }
        $this->assertSame(0, $this->holders('counter'));
    }

    /**
     * inspect() over Redlock: the hold a majority of the masters agree on,
     * also with two of five stopped; free when no majority holds it.
     */
    public function testInspectReportsTheMajoritysHold(): void
    {
        $lm = new LockManager($this->list(), ['timeout' => 0.3, 'connect_timeout' => 0.3]);
        $lock = $lm->createLock('k', 5);
        $this->assertTrue($lock->acquire());
        $this->masters[3]->stop();
        $this->masters[4]->stop();
        $seen = $lm->inspect('k');
        $this->assertSame(
            [true, 'exclusive', $lock->owner(), ['host' => TestCase::tokenHost(getmypid()), 'pid' => getmypid()], 0, null],
            [$seen['locked'], $seen['kind'], $seen['owner'], $seen['holder'], $seen['waiters'], $seen['fencing']]
        );
        $this->assertGreaterThan(0.0, $seen['ttl']);
        $this->assertLessThanOrEqual(5.0, $seen['ttl']);
        $this->assertTrue($lock->release());
        $this->assertFalse($lm->inspect('k')['locked']);
    }

    public function testTwoMastersDownStillWorksThreeDownIsAConnectionExceptionWithinTheTimeout(): void
    {
        $lm = new LockManager($this->list(), ['timeout' => 0.3, 'connect_timeout' => 0.3]);
        $this->masters[3]->stop();
        $this->masters[4]->stop();
        $lock = $lm->createLock('k', 5);
        $this->assertTrue($lock->acquire());
        $this->assertTrue($lock->release());
        $this->masters[2]->pause();
        $start = microtime(true);
        try {
            $lm->createLock('k', 5)->acquire();
            $this->fail('three of five masters down must not give a lock');
        } catch (ConnectionException $e) {
            $this->assertStringContainsString('only 2 of 5 masters answered, 3 needed', $e->getMessage());
        } finally {
            $took = microtime(true) - $start;
            $this->masters[2]->resume();
        }
        $this->assertLessThan(0.3 + 0.3 + 0.2, $took);
        foreach ([0, 1] as $alive) {
            $this->assertSame(0, $this->masters[$alive]->client()->exists('lock:{k}'), 'nothing left held on the two that answered');
        }
    }

    public static function badDsns(): array
    {
        return [
            'redlock without hosts' => ['redlock://', '$dsn'],
            'redlock bad port' => ['redlock://127.0.0.1:0,127.0.0.1:2', '$dsn'],
            'redlock port out of range' => ['redlock://127.0.0.1:70000', '$dsn'],
            'redlock same server twice' => ['redlock://127.0.0.1:1,127.0.0.1:1', '$dsn'],
            'empty list' => [[], '$dsn'],
            'list mixing schemes' => [['redis://127.0.0.1:1', 'redis-cluster://127.0.0.1:2'], '$dsn'],
            'list with a sentinel' => [['redis://127.0.0.1:1', 'redis-sentinel://127.0.0.1:2/m'], '$dsn'],
            'list with a redlock' => [['redis://127.0.0.1:1', 'redlock://127.0.0.1:2'], '$dsn'],
            'list with a malformed entry' => [['redis://127.0.0.1:1', 'nonsense'], '$dsn'],
            'not a list' => [['a' => 'redis://127.0.0.1:1'], '$dsn'],
            'cluster without hosts' => ['redis-cluster://', '$dsn'],
            'cluster bad port' => ['redis-cluster://127.0.0.1:0', '$dsn'],
            'sentinel without hosts' => ['redis-sentinel:///m', '$dsn'],
            'sentinel bad port' => ['redis-sentinel://127.0.0.1:x/m', '$dsn'],
        ];
    }

    /**
     * @dataProvider badDsns
     */
    #[DataProvider('badDsns')]
    public function testBadDsnsAreValueErrorsAndNothingIsSent(string|array $dsn, string $names): void
    {
        $before = $this->calls();
        foreach ([LockManager::class, RedisMutex::class] as $class) {
            try {
                new $class($dsn);
                $this->fail("$class accepted " . json_encode($dsn));
            } catch (\ValueError $e) {
                $this->assertStringContainsString($names, $e->getMessage());
            }
        }
        $this->assertSame($before, $this->calls(), 'nothing reached any master');
    }

    public function testFencingAndReplicasWithRedlockAreValueErrorsNamingTheOption(): void
    {
        foreach ([['fencing' => true], ['replicas' => 1]] as $options) {
            foreach ([$this->list(), $this->redlockDsn()] as $dsn) {
                try {
                    new LockManager($dsn, $options);
                    $this->fail('accepted ' . json_encode($options));
                } catch (\ValueError $e) {
                    $this->assertStringContainsString('option "' . array_key_first($options) . '"', $e->getMessage());
                    $this->assertStringContainsString('Redlock', $e->getMessage());
                }
            }
        }
    }

    public function testWrongTypesAreTypeErrors(): void
    {
        foreach ([42, 1.5, true, new \stdClass()] as $dsn) {
            try {
                new LockManager($dsn);
                $this->fail('accepted ' . get_debug_type($dsn));
            } catch (\TypeError $e) {
                $this->assertStringContainsString('Argument #1 ($dsn) must be of type array|string|null', $e->getMessage());
            }
        }
        try {
            new LockManager(['redis://127.0.0.1:1', 7]);
            $this->fail('accepted a list entry that is no string');
        } catch (\TypeError $e) {
            $this->assertStringContainsString('must be a list of DSN strings, int given at index 1', $e->getMessage());
        }
    }

    public function testPasswordsNeverShowInMessages(): void
    {
        try {
            new LockManager(['redis://:s3cret@127.0.0.1:1', 'redis-cluster://127.0.0.1:2']);
            $this->fail('accepted a mixed list');
        } catch (\ValueError $e) {
            $this->assertStringNotContainsString('s3cret', $e->getMessage());
        }
        $port = RedisServer::freePort();
        $lm = new LockManager(["redis://:s3cret@127.0.0.1:$port"], ['timeout' => 0.2, 'connect_timeout' => 0.2]);
        try {
            $lm->createLock('k')->acquire();
            $this->fail('an unreachable master gave a lock');
        } catch (ConnectionException $e) {
            $this->assertStringNotContainsString('s3cret', $e->getMessage());
        }
    }

    /** Commands run so far on all masters. */
    private function calls(): int
    {
        $n = 0;
        foreach ($this->masters as $m) {
            foreach ($m->client()->info('commandstats') as $command => $line) {
                if ($command !== 'cmdstat_info' && is_string($line) && preg_match('/calls=(\d+)/', $line, $x)) {
                    $n += (int) $x[1];
                }
            }
        }
        return $n;
    }
}
