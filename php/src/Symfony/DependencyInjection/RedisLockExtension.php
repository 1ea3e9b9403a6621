<?php
declare(strict_types=1);

namespace RedisLock\Symfony\DependencyInjection;

use RedisLock\Symfony\Command\InspectCommand;
use RedisLock\Symfony\Command\MetricsCommand;
use RedisLock\Symfony\RedisLockStore;
use RedisLock\Symfony\SemaphoreStore;
use Symfony\Component\Console\Command\Command;
use Symfony\Component\DependencyInjection\ContainerBuilder;
use Symfony\Component\DependencyInjection\ContainerInterface;
use Symfony\Component\DependencyInjection\Definition;
use Symfony\Component\DependencyInjection\Extension\Extension;
use Symfony\Component\DependencyInjection\Reference;
use Symfony\Component\Lock\LockFactory;
use Symfony\Component\Semaphore\SemaphoreFactory;

/**
 * Defines the stores and the factories FrameworkBundle would define for its
 * "default" lock and semaphore resources (`lock.default.factory`,
 * `semaphore.default.factory`, with their `lock.factory` /
 * `semaphore.factory` and autowiring aliases) on the redis_lock stores, and
 * the `redis-lock:inspect` console command.
 * Loaded after FrameworkBundle's extension, so its definitions win.
 */
final class RedisLockExtension extends Extension
{
    public function load(array $configs, ContainerBuilder $container): void
    {
        $config = $this->processConfiguration(new Configuration(), $configs);
        // Checked here, not in the tree: Symfony validates a tree with
        // made-up values of other types in place of %env()% parameters.
        $dsn = $config['dsn'];
        if (!($dsn === null || is_string($dsn)
            || (is_array($dsn) && $dsn !== [] && array_is_list($dsn) && $dsn === array_filter($dsn, 'is_string')))) {
            throw new \InvalidArgumentException(sprintf('redis_lock.dsn must be a DSN string, a list of DSN strings or null, %s given.', get_debug_type($dsn)));
        }
        $options = ['prefix' => $config['prefix']] + $config['options'];
        $logger = new Reference('logger', ContainerInterface::IGNORE_ON_INVALID_REFERENCE);

        $container->setDefinition(RedisLockStore::class, new Definition(RedisLockStore::class, [$config['dsn'], $options, $logger]));
        $factory = (new Definition(LockFactory::class, [new Reference(RedisLockStore::class)]))
            ->addMethodCall('setLogger', [$logger])
            ->addTag('monolog.logger', ['channel' => 'lock']);
        $container->setDefinition('lock.default.factory', $factory);
        $container->setAlias('lock.factory', 'lock.default.factory');
        $container->setAlias(LockFactory::class, 'lock.factory');
        if (class_exists(Command::class)) {
            $container->setDefinition(InspectCommand::class, (new Definition(InspectCommand::class, [new Reference(RedisLockStore::class)]))
                ->addTag('console.command', ['command' => 'redis-lock:inspect']));
            $container->setDefinition(MetricsCommand::class, (new Definition(MetricsCommand::class))
                ->addTag('console.command', ['command' => 'redis-lock:metrics']));
        }

        // Semaphores need one node's scripts: none over Redlock's list of masters.
        if (class_exists(SemaphoreFactory::class) && !is_array($config['dsn'])) {
            $container->setDefinition(SemaphoreStore::class, new Definition(SemaphoreStore::class, [$config['dsn'], $options, $logger]));
            $semaphores = (new Definition(SemaphoreFactory::class, [new Reference(SemaphoreStore::class)]))
                ->addMethodCall('setLogger', [$logger])
                ->addTag('monolog.logger', ['channel' => 'semaphore']);
            $container->setDefinition('semaphore.default.factory', $semaphores);
            $container->setAlias('semaphore.factory', 'semaphore.default.factory');
            $container->setAlias(SemaphoreFactory::class, 'semaphore.factory');
        }
    }
}
