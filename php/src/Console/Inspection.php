<?php
declare(strict_types=1);

namespace RedisLock\Console;

/**
 * How the `redis-lock:inspect` commands (artisan, Symfony console) show
 * what `LockManager::inspect()` returned: one field a line, or JSON.
 */
final class Inspection
{
    /**
     * The command's output lines.
     *
     * @param array{locked: bool, kind: ?string, owner: ?string, holder: ?array{host: string, pid: int}, ttl: ?float, waiters: int, readers: int, fencing: ?int} $seen
     * @return list<string>
     */
    public static function lines(string $name, array $seen, bool $json): array
    {
        if ($json) {
            return [json_encode($seen, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES)];
        }
        return array_map(fn (array $row) => sprintf('%-8s %s', ...$row), self::rows($name, $seen));
    }

    /**
     * @param array{locked: bool, kind: ?string, owner: ?string, holder: ?array{host: string, pid: int}, ttl: ?float, waiters: int, readers: int, fencing: ?int} $seen
     * @return list<array{string, string}>
     */
    private static function rows(string $name, array $seen): array
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
