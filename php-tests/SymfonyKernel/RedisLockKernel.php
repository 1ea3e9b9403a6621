<?php
declare(strict_types=1);

namespace RedisLock\Tests\SymfonyKernel;

use RedisLock\Symfony\RedisLockBundle;
use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\HttpKernel\Kernel;
use Symfony\Component\Lock\LockFactory;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;

/**
 * The smallest application kernel: FrameworkBundle plus config/packages/redis_lock.php
 * (the README's wiring), or RedisLockBundle with its `redis_lock` config, with its
 * cache and logs in a temp dir. Works with
 * the MicroKernelTrait of FrameworkBundle 5.4, 6.4 and 7.4.
 */
final class RedisLockKernel extends Kernel
{
    use MicroKernelTrait;

    /** @param bool $viaBundle wired by RedisLockBundle's `redis_lock` config instead of the service file */
    public function __construct(private string $varDir, private bool $viaBundle = false)
    {
        parent::__construct('test', false);
    }

    public function registerBundles(): iterable
    {
        return $this->viaBundle ? [new FrameworkBundle(), new RedisLockBundle()] : [new FrameworkBundle()];
    }

    public function getProjectDir(): string
    {
        return __DIR__;
    }

    public function getCacheDir(): string
    {
        return $this->varDir . '/cache';
    }

    public function getLogDir(): string
    {
        return $this->varDir . '/log';
    }

    private function configureContainer(ContainerConfigurator $container): void
    {
        $framework = ['secret' => 'test', 'http_method_override' => false,
            'router' => ['utf8' => true], 'php_errors' => ['log' => true]];
        if (self::VERSION_ID >= 60200) {
            $framework['handle_all_throwables'] = true;
        }
        $container->extension('framework', $framework);

        if ($this->viaBundle) {
            // As an application's config/packages/redis_lock.yaml would say it.
            $container->extension('framework', ['lock' => true]);
            $container->extension('redis_lock', [
                'dsn' => '%env(default::REDIS_LOCK_DSN)%',
                'prefix' => 'bundle:lock:',
                'options' => ['timeout' => 0.5],
            ]);
        } else {
            $container->import(__DIR__ . '/config/packages/redis_lock.php');
        }

        // Test only: reach the services the application would have injected.
        $services = $container->services();
        $services->alias('test.lock.factory', 'lock.factory')->public();
        if ($this->viaBundle) {
            $services->alias('test.semaphore.factory', 'semaphore.factory')->public();
        }
        $services->set(LockUser::class)->autowire()->public();
    }

    private function configureRoutes(RoutingConfigurator $routes): void
    {
    }
}

/** An application service that asks for a LockFactory by autowiring. */
final class LockUser
{
    public function __construct(public readonly LockFactory $locks)
    {
    }
}
