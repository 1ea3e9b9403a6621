<?php
declare(strict_types=1);

namespace RedisLock\Laravel;

/**
 * The watched `lock($name, 0)` locks this process (this request, under
 * PHP-FPM) holds, and what becomes of them when it ends.
 *
 * Laravel's `lock($name, 0)` means "until released", and some of those
 * locks are released by another process: ShouldBeUnique takes its lock at
 * dispatch and the queue worker frees it after the job ran; code that hands
 * `owner()` to a job frees it with `restoreLock()`. A watched lock lives
 * only while its process renews it, so such a lock would expire once the
 * dispatching process ended. Hence the hand-over: when the process ends in
 * order (the script ends, `exit()`, an exception Laravel's handler caught)
 * with such a lock still held, the lock gets Laravel's "until released" TTL
 * (RedisLockStore::FOREVER, 30 days) and is someone else's to release. A
 * process that dies (SIGKILL, the OOM killer, a segfault, `queue:work
 * --timeout`) or ends in a fatal error (memory limit, max_execution_time)
 * hands over nothing: its locks expire within the short TTL.
 *
 * Each lock is kept here (its \RedisLock\Lock object, so that the
 * extension keeps renewing it after Laravel dropped the Cache lock object,
 * as UniqueLock does) until it is released in this process or handed over.
 */
final class WatchedLocks
{
    /** @var array<string, \RedisLock\Lock> by name and owner */
    private static array $held = [];
    private static bool $registered = false;

    /** The lock `$lock` (name, owner) is held and watched. */
    public static function keep(\RedisLock\Lock $lock): void
    {
        self::$held[self::key($lock->name(), $lock->owner())] = $lock;
        if (!self::$registered) {
            self::$registered = true;
            register_shutdown_function([self::class, 'handOver']);
        }
    }

    /** The lock `$name` of `$owner` was released (or found not held). */
    public static function forget(string $name, string $owner): void
    {
        unset(self::$held[self::key($name, $owner)]);
    }

    /** The lock `$name` was force-released, whoever held it. */
    public static function forgetName(string $name): void
    {
        foreach (self::$held as $key => $lock) {
            if ($lock->name() === $name) {
                unset(self::$held[$key]);
            }
        }
    }

    /** How many watched locks this process holds (for tests and diagnostics). */
    public static function count(): int
    {
        return count(self::$held);
    }

    /**
     * Shutdown: the orderly end of the process or request hands the locks
     * still held over ("until released"); a fatal error does not.
     *
     * @internal registered by keep()
     */
    public static function handOver(): void
    {
        $held = self::$held;
        self::$held = [];
        self::$registered = false;
        $error = error_get_last();
        $fatal = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR | E_RECOVERABLE_ERROR;
        if ($error !== null && ($error['type'] & $fatal) !== 0) {
            return;
        }
        foreach ($held as $lock) {
            try {
                // Owner-checked: a lock lost meanwhile stays lost.
                $lock->refresh(RedisLockStore::FOREVER);
            } catch (\RedisLock\LockException $e) {
                // Redis unreachable at the end: the lock expires by its short TTL.
            }
        }
    }

    private static function key(string $name, string $owner): string
    {
        return strlen($name) . ':' . $name . $owner;
    }
}
