<?php
declare(strict_types=1);

namespace RedisLock\Symfony\DependencyInjection;

use Symfony\Component\Config\Definition\Builder\TreeBuilder;
use Symfony\Component\Config\Definition\ConfigurationInterface;

/** The `redis_lock` configuration: `dsn`, `prefix`, `options`. */
final class Configuration implements ConfigurationInterface
{
    public function getConfigTreeBuilder(): TreeBuilder
    {
        $tree = new TreeBuilder('redis_lock');
        $tree->getRootNode()
            ->children()
                ->variableNode('dsn')
                    ->info('A DSN, or a list of DSNs (Redlock); null: the redis_lock.dsn ini value')
                    ->defaultNull()
                ->end()
                ->scalarNode('prefix')->defaultValue('lock:')->end()
                ->arrayNode('options')
                    ->info('The extension\'s options (ttl, timeout, on_unavailable, fencing, …)')
                    ->normalizeKeys(false)
                    ->variablePrototype()->end()
                ->end()
            ->end();
        return $tree;
    }
}
