<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use RedisLock\Symfony\RedisLockStore;
use Symfony\Component\Lock\PersistingStoreInterface;
use Symfony\Component\Lock\Tests\Store\AbstractStoreTestCase;
use Symfony\Component\Lock\Tests\Store\SharedLockStoreTestTrait;

// Symfony Lock's own store tests, from Debian 12's source package of
// Symfony 5.4 (scripts/symfony-store-tests.sh, run by `make deps`): its
// binary packages leave them out. Run on every Symfony of the matrix.
$symfonyTests = dirname(__DIR__) . '/.build/symfony-lock-tests';
if (!is_file("$symfonyTests/SharedLockStoreTestTrait.php")) {
    throw new \RuntimeException("Symfony's store tests are not in $symfonyTests: run scripts/symfony-store-tests.sh (make deps)");
}
require_once '/usr/share/php/Symfony/Component/Lock/autoload.php';
require_once "$symfonyTests/AbstractStoreTestCase.php";
require_once "$symfonyTests/SharedLockStoreTestTrait.php";

/**
 * Symfony's own tests of a store (AbstractStoreTestCase) and of a shared
 * lock store (SharedLockStoreTestTrait: read first, write first, promotion
 * refused and allowed, demotion), against our store, as Symfony runs them
 * against its RedisStore.
 */
final class SymfonyOwnStoreTest extends AbstractStoreTestCase
{
    use SharedLockStoreTestTrait;

    protected function setUp(): void
    {
        $redis = TestCase::$server->client();
        $redis->flushAll();
        $redis->close();
    }

    protected function getStore(): PersistingStoreInterface
    {
        return new RedisLockStore(TestCase::$server->dsn());
    }
}
