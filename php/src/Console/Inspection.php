<?php
declare(strict_types=1);

namespace RedisLock\Console;

/**
 * How the `redis-lock:inspect` commands (artisan, Symfony console) show
 * what `LockManager::inspect()` returned: one row per field, as text.
 */
final class Inspection
{
    /**
     * @param array{locked: bool, kind: ?string, owner: ?string, holder: ?array{host: string, pid: int}, ttl: ?float, waiters: int, readers: int, fencing: ?int} $seen
     * @return list<array{string, string}>
     */
    public static function rows(string $name, array $seen): array
    {
        $holder = $seen['holder'] === null ? '-' : "pid {$seen['holder']['pid']} on {$seen['holder']['host']}";
        return [
            ['name', $name],
            ['locked', $seen['locked'] ? 'yes' : 'no'],
            ['kind', $seen['kind'] ?? '-'],
            ['owner', $seen['owner'] ?? '-'],
            ['holder', $holder],
            ['ttl', $seen['ttl'] === null ? '-' : sprintf('%.3f s', $seen['ttl'])],
            ['waiters', (string) $seen['waiters']],
            ['readers', (string) $seen['readers']],
            ['fencing', $seen['fencing'] === null ? '-' : (string) $seen['fencing']],
        ];
    }
}
