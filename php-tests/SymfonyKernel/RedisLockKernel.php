<?php
declare(strict_types=1);

namespace RedisLock\Tests\SymfonyKernel;

use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\HttpKernel\Kernel;
use Symfony\Component\Lock\LockFactory;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;

/**
 * The smallest application kernel: FrameworkBundle plus config/packages/redis_lock.php
 * (the README's wiring), with its cache and logs in a temp dir. Works with
 * the MicroKernelTrait of FrameworkBundle 5.4, 6.4 and 7.4.
 */
final class RedisLockKernel extends Kernel
{
    use MicroKernelTrait;

    public function __construct(private string $varDir)
    {
        parent::__construct('test', false);
    }

    public function registerBundles(): iterable
    {
        return [new FrameworkBundle()];
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

        $container->import(__DIR__ . '/config/packages/redis_lock.php');

        // Test only: reach the services the application would have injected.
        $services = $container->services();
        $services->alias('test.lock.factory', 'lock.factory')->public();
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
