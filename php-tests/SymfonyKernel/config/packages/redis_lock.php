<?php
// config/packages/redis_lock.php: FrameworkBundle's LockFactory on the redis_lock store.
// This file is the one README.md ("Symfony Lock", "FrameworkBundle") shows;
// SymfonyKernelTest boots a kernel with it on Symfony 5.4, 6.4 and 7.4.

use RedisLock\Symfony\RedisLockStore;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\Lock\LockFactory;

use function Symfony\Component\DependencyInjection\Loader\Configurator\service;

return static function (ContainerConfigurator $container): void {
    // framework.lock stays on: it defines lock.factory and the LockFactory
    // autowiring alias, both pointing at lock.default.factory.
    $container->extension('framework', ['lock' => true]);

    $services = $container->services();

    // REDIS_LOCK_DSN unset: the redis_lock.dsn ini value. The logger hears
    // of outcomes that are not exceptions (a fail-open grant).
    $services->set(RedisLockStore::class)
        ->args(['%env(default::REDIS_LOCK_DSN)%', ['prefix' => 'app:lock:'], service('logger')->ignoreOnInvalid()]);

    // framework.lock would make its store through StoreFactory, which takes
    // DSNs and connections, not store objects: redefine the factory it makes
    // for the "default" resource instead (as FrameworkBundle defines it).
    $services->set('lock.default.factory', LockFactory::class)
        ->args([service(RedisLockStore::class)])
        ->call('setLogger', [service('logger')->ignoreOnInvalid()])
        ->tag('monolog.logger', ['channel' => 'lock']);
};
