<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use Illuminate\Cache\Repository;
use Illuminate\Contracts\Console\Isolatable;
use Illuminate\Foundation\Application;

/**
 * The framework features built on cache locks, in a real Laravel application
 * (php-tests/laravel-app, booted from Debian's packages: Laravel 8, 10 or 13)
 * whose default cache store is `redis-lock`, each with two or more
 * concurrent processes: `php artisan schedule:run`, `queue:work`, commands,
 * and `php -S` serving HTTP.
 *
 * Every proof can fail: REDIS_LOCK_LARAVEL_STORE=array runs the processes
 * with the `array` store (per-process locks) instead, and then the
 * assertions that matter fail.
 */
final class LaravelFeaturesTest extends TestCase
{
    private const APP = __DIR__ . '/laravel-app';

    private static string $storage;

    public static function setUpBeforeClass(): void
    {
        require_once '/usr/share/php/Illuminate/autoload.php';
        self::$storage = sys_get_temp_dir() . '/rl-laravel-app-' . getmypid();
        // The first boot writes the app's manifests: once, before processes race.
        [$code, $out, $err] = self::finish(self::artisan(['app:ping']));
        if ($code !== 0) {
            throw new \RuntimeException("the app does not boot: $out $err");
        }
    }

    public static function tearDownAfterClass(): void
    {
        $files = new \RecursiveIteratorIterator(
            new \RecursiveDirectoryIterator(self::$storage, \FilesystemIterator::SKIP_DOTS),
            \RecursiveIteratorIterator::CHILD_FIRST
        );
        foreach ($files as $file) {
            $file->isDir() ? @rmdir($file->getPathname()) : @unlink($file->getPathname());
        }
        @rmdir(self::$storage);
    }

    private static function major(): int
    {
        return (int) Application::VERSION;
    }

    /**
     * `php artisan redis-lock:inspect` shows who holds a lock of the default
     * (redis-lock) store: this process, on this host; free once released.
     */
    public function testTheInspectCommandShowsTheHolder(): void
    {
        $lock = (new \RedisLock\LockManager($this->dsn()))->createLock('report', 30);
        $this->assertTrue($lock->acquire());
        [$code, $out, $err] = self::finish(self::artisan(['redis-lock:inspect', 'report']));
        $this->assertSame(0, $code, $err);
        $this->assertStringContainsString("locked   yes\n", $out);
        $this->assertStringContainsString('owner    ' . $lock->owner() . "\n", $out);
        $this->assertStringContainsString('holder   pid ' . getmypid() . ' on ' . self::tokenHost(getmypid()) . "\n", $out);
        $lock->release();
        [$code, $out, $err] = self::finish(self::artisan(['redis-lock:inspect', 'report', '--json']));
        $this->assertSame(0, $code, $err);
        $this->assertSame(false, json_decode($out, true)['locked'], $out);
        [$code, $out] = self::finish(self::artisan(['redis-lock:inspect', 'report', '--store=redis']));
        $this->assertSame(1, $code);
    }

    public function testTheMetricsCommandShowsTheHostsTable(): void
    {
        // This process counts in the host's table, which the command reads.
        $lock = (new \RedisLock\LockManager($this->dsn()))->createLock('report', 30);
        $this->assertTrue($lock->acquire());
        $lock->release();
        [$code, $out, $err] = self::finish(self::artisan(['redis-lock:metrics', '--json']));
        $this->assertSame(0, $code, $err);
        $seen = json_decode($out, true);
        $this->assertSame(['host', '/redis_lock.' . posix_geteuid()], [$seen['mode'], $seen['shm']], $out);
        $this->assertGreaterThanOrEqual(1, $seen['acquires']['lock']['acquired']);
        $this->assertGreaterThanOrEqual(1, $seen['processes'], 'this process has a slot');
        [$code, $out, $err] = self::finish(self::artisan(['redis-lock:metrics']));
        $this->assertSame(0, $code, $err);
        $this->assertStringContainsString('metrics: host (/redis_lock.' . posix_geteuid() . ')', $out);
        $this->assertMatchesRegularExpression('/^lock +[1-9]\d* /m', $out);
        [$code, $out, $err] = self::finish(self::artisan(['redis-lock:metrics', '--prometheus']));
        $this->assertSame(0, $code, $err);
        $this->assertStringContainsString("# TYPE redis_lock_acquires_total counter\n", $out);
    }

    public function testTheAppBootsWithTheRedisLockStoreAsTheDefaultCache(): void
    {
        [$code, $out, $err] = self::finish(self::artisan(['app:ping']));
        $this->assertSame(0, $code, $err);
        $this->assertSame(
            ['laravel' => Application::VERSION, 'store' => \RedisLock\Laravel\RedisLockStore::class],
            json_decode(trim($out), true)
        );
    }

    public static function scheduledTasks(): array
    {
        return [
            'withoutOverlapping()' => ['without-overlapping'],
            'onOneServer()' => ['one-server'],
        ];
    }

    /**
     * Two `schedule:run` at once (as two servers would): the task, which
     * takes half a second, runs once. Laravel 8 takes both mutexes with the
     * store's add(), 10 withoutOverlapping() with a lock and onOneServer()
     * with add(), 13 both with locks.
     *
     * @dataProvider scheduledTasks
     */
    #[\PHPUnit\Framework\Attributes\DataProvider('scheduledTasks')]
    public function testTwoScheduleRunsAtOnceRunTheTaskOnce(string $task): void
    {
        // onOneServer()'s mutex is per minute: both runs must start in the same one.
        $second = fmod(microtime(true), 60);
        if ($second > 57.5) {
            usleep((int) ((60.2 - $second) * 1_000_000));
        }
        foreach (self::together(2, ['schedule:run'], ['SCHEDULE_TASK' => $task]) as $run) {
            [$code, $out, $err] = self::finish($run);
            $this->assertSame(0, $code, $out . $err);
        }
        $this->assertCount(1, $this->runs("schedule:$task"), 'the task ran once');

        $mutexIsALock = $task === 'without-overlapping' ? self::major() >= 10 : self::major() >= 13;
        $keys = self::lockKeys($this->redis, $mutexIsALock ? 'lock:{framework*schedule-*' : 'app_cache:framework*schedule-*');
        $this->assertCount($task === 'one-server' ? 1 : 0, $keys, 'onOneServer() keeps its mutex for the minute; withoutOverlapping() frees it after the run');
    }

    /**
     * Two queue workers and three jobs with the same WithoutOverlapping key
     * (each takes 0.3 s; one that finds the key held goes back on the queue
     * for a second): no two ever run at the same time, and at least one was
     * sent back, so the workers did contend.
     */
    public function testWithoutOverlappingJobMiddlewareAcrossTwoWorkers(): void
    {
        $this->assertSame(0, self::finish(self::artisan(['app:dispatch', 'overlap', 'k', '3']))[0]);
        $workers = self::together(2, ['queue:work', '--sleep=0.1']);
        $done = $this->waitFor(fn () => count($this->runs('overlap:k')) >= 3, 20);
        foreach ($workers as $worker) {
            proc_terminate($worker['proc'], SIGTERM); // a worker stops after its current job
        }
        foreach ($workers as $worker) {
            self::finish($worker);
        }
        $runs = $this->runs('overlap:k');
        $this->assertTrue($done, 'all three jobs ran: ' . $this->log());
        $this->assertNoOverlap($runs);
        $this->assertGreaterThan(1, max(array_column($runs, 'attempts')), 'a job found the key held and was released back');
    }

    /**
     * ShouldBeUnique: two processes dispatch the same job at once and one job
     * is queued (the unique lock is taken at dispatch); a worker runs it and
     * frees the lock, after which it can be dispatched again.
     */
    public function testShouldBeUniqueJobIsQueuedOnceAndUnlockedByTheWorker(): void
    {
        foreach (self::together(2, ['app:dispatch', 'unique', 'u1']) as $dispatch) {
            $this->assertSame(0, self::finish($dispatch)[0]);
        }
        $this->assertSame(1, $this->redis->lLen('queues:default'), 'the second dispatch was refused');
        $this->assertCount(1, $this->redis->keys('lock:{laravel_unique_job*'), 'the unique lock is in Redis');

        [$code, $out, $err] = self::finish(self::artisan(['queue:work', '--once']));
        $this->assertSame(0, $code, $out . $err);
        $this->assertCount(1, $this->runs('unique:u1'));
        $this->assertSame([], self::lockKeys($this->redis, 'lock:{laravel_unique_job*'), 'the worker freed the unique lock');

        $this->assertSame(0, self::finish(self::artisan(['app:dispatch', 'unique', 'u1']))[0]);
        $this->assertSame(1, $this->redis->lLen('queues:default'), 'dispatchable again');
    }

    /**
     * The driver's `watchdog` option (TTL 1 s here), on WithoutOverlapping
     * without expireAfter(), which Laravel takes with `lock($key, 0)`: the
     * lock is short-lived and renewed while the worker runs the job (kept
     * past 2 TTLs), and freed within about one TTL (bound 3 s) when the
     * worker is killed mid-job. The control, without the option: the lock
     * stays for 30 days after the crash.
     */
    public function testAWatchedWithoutOverlappingLockDiesWithItsKilledWorker(): void
    {
        foreach ([true, false] as $watchdog) {
            $this->redis->flushAll();
            $env = ['SLOW_JOB_SECONDS' => '60'] + ($watchdog ? ['LOCK_WATCHDOG' => '1', 'LOCK_WATCHDOG_TTL' => '1'] : []);
            $this->assertSame(0, self::finish(self::artisan(['app:dispatch', 'slow-overlap', 'k'], $env))[0]);
            $worker = self::artisan(['queue:work', '--once'], $env);
            $this->assertTrue($this->waitFor(fn () => $this->redis->lLen('started:slow:k') > 0, 20), 'the job started: ' . $this->log());
            $keys = self::lockKeys($this->redis, 'lock:{laravel-queue-overlap*');
            $this->assertCount(1, $keys);
            $owner = $this->redis->get($keys[0]);
            if ($watchdog) {
                $this->assertLessThanOrEqual(1000, $this->redis->pTtl($keys[0]), 'a watched lock has the short TTL');
                usleep(2_500_000);
                $this->assertSame($owner, $this->redis->get($keys[0]), 'renewed while the worker runs the job');
            } else {
                $this->assertGreaterThan(29 * 86400 * 1000, $this->redis->pTtl($keys[0]), "Laravel's until-released: 30 days");
            }

            posix_kill(proc_get_status($worker['proc'])['pid'], SIGKILL);
            self::finish($worker);
            if ($watchdog) {
                $this->assertTrue($this->waitFor(fn () => $this->redis->exists($keys[0]) === 0, 3.0), 'freed within about one TTL of the crash');
            } else {
                usleep(3_000_000);
                $this->assertSame($owner, $this->redis->get($keys[0]), 'control: the crashed worker\'s lock stays');
            }
        }
    }

    /**
     * ShouldBeUnique without `uniqueFor` under the `watchdog` option (TTL
     * 1 s): its lock is taken at dispatch with `lock($key, 0)` and freed by
     * the worker, another process. A dispatcher that ends in order hands the
     * lock over (30 days): 3 TTLs after it ended the job is still unique, and
     * the worker frees the lock. A dispatcher killed before it ends hands
     * nothing over: its lock dies within about one TTL (the job stays queued).
     */
    public function testAWatchedUniqueLockOutlivesItsDispatcherUnlessTheDispatcherIsKilled(): void
    {
        $env = ['LOCK_WATCHDOG' => '1', 'LOCK_WATCHDOG_TTL' => '1'];
        foreach (self::together(2, ['app:dispatch', 'unique-until-released', 'u1'], $env) as $dispatch) {
            $this->assertSame(0, self::finish($dispatch)[0]);
        }
        $this->assertSame(1, $this->redis->lLen('queues:default'), 'the second dispatch was refused');
        usleep(3_000_000);
        $keys = self::lockKeys($this->redis, 'lock:{laravel_unique_job*');
        $this->assertCount(1, $keys, 'the unique lock outlived its dispatcher by 3 TTLs');
        $this->assertGreaterThan(29 * 86400 * 1000, $this->redis->pTtl($keys[0]), 'handed over as until-released');
        $this->assertSame(0, self::finish(self::artisan(['app:dispatch', 'unique-until-released', 'u1'], $env))[0]);
        $this->assertSame(1, $this->redis->lLen('queues:default'), 'still unique');

        [$code, $out, $err] = self::finish(self::artisan(['queue:work', '--once'], $env));
        $this->assertSame(0, $code, $out . $err);
        $this->assertCount(1, $this->runs('unique-until-released:u1'));
        $this->assertSame([], self::lockKeys($this->redis, 'lock:{laravel_unique_job*'), 'the worker freed the unique lock');

        $dispatcher = self::artisan(['app:dispatch', 'unique-until-released', 'u2', '--then-sleep=60'], $env);
        $this->assertTrue($this->waitFor(fn () => $this->redis->lLen('queues:default') === 1, 20), 'dispatched: ' . $this->log());
        $keys = self::lockKeys($this->redis, 'lock:{laravel_unique_job*');
        $this->assertCount(1, $keys);
        $owner = $this->redis->get($keys[0]);
        usleep(2_000_000);
        $this->assertSame($owner, $this->redis->get($keys[0]), 'renewed while its dispatcher lives');
        posix_kill(proc_get_status($dispatcher['proc'])['pid'], SIGKILL);
        self::finish($dispatcher);
        $this->assertTrue($this->waitFor(fn () => $this->redis->exists($keys[0]) === 0, 3.0), 'a killed dispatcher hands nothing over');
        $this->assertSame(1, $this->redis->lLen('queues:default'), 'the job itself stays queued');
    }

    /**
     * A scheduled command with withoutOverlapping()->runInBackground(),
     * under the driver's `watchdog` option (TTL 1 s): `schedule:run` takes
     * the mutex and ends at once; the command runs in another process, and
     * `schedule:finish`, a third one, releases the mutex. The mutex is taken
     * with seconds (Laravel 10, 13: a lock of expiresAt minutes; 8: add()),
     * so it is not watched and outlives the schedule:run that took it: a
     * second schedule:run 2.5 s (2.5 TTLs) later, while the command still
     * runs, does not start it again, and schedule:finish frees the mutex.
     * The background processes load the extension through PHP_INI_SCAN_DIR
     * (Laravel starts them with the bare PHP binary).
     */
    public function testABackgroundTaskKeepsItsMutexPastScheduleRunUntilScheduleFinish(): void
    {
        $ini = sys_get_temp_dir() . '/rl-ini-' . getmypid();
        @mkdir($ini);
        // An installed extension is already in php.ini's scan directory.
        $so = getenv('REDIS_LOCK_SO');
        file_put_contents("$ini/redis_lock.ini", $so === false ? '' : "extension=$so\n");
        $env = ['LOCK_WATCHDOG' => '1', 'LOCK_WATCHDOG_TTL' => '1', 'SCHEDULE_TASK' => 'background',
            'SLOW_TASK_SECONDS' => '8', 'PHP_INI_SCAN_DIR' => ':' . $ini];
        $scheduleRun = fn () => self::finish(self::start([PHP_BINARY, '-d', 'display_errors=stderr', 'artisan', 'schedule:run'], $env));
        try {
            [$code, $out, $err] = $scheduleRun();
            $this->assertSame(0, $code, $out . $err);
            $this->assertTrue($this->waitFor(fn () => $this->redis->lLen('started:background') > 0, 20), 'the command started: ' . $this->log());
            $mutexIsALock = self::major() >= 10;
            $pattern = $mutexIsALock ? 'lock:{framework*schedule-*' : 'app_cache:framework*schedule-*';
            $keys = self::lockKeys($this->redis, $pattern);
            $this->assertCount(1, $keys, 'the mutex is held');
            if ($mutexIsALock) {
                $this->assertGreaterThan(60_000, $this->redis->pTtl($keys[0]), 'taken with its seconds, not watched');
            }
            usleep(2_500_000);
            [$code, $out, $err] = $scheduleRun();
            $this->assertSame(0, $code, $out . $err);
            $this->assertTrue($this->waitFor(fn () => count($this->runs('schedule:background')) > 0, 20), 'the command finished: ' . $this->log());
            $this->assertTrue($this->waitFor(fn () => self::lockKeys($this->redis, $pattern) === [], 10), 'schedule:finish freed the mutex');
            $this->assertSame(1, $this->redis->lLen('started:background'), 'the second schedule:run found the mutex held and skipped the command');
        } finally {
            @unlink("$ini/redis_lock.ini");
            @rmdir($ini);
        }
    }

    /**
     * `Route::get(...)->block(10, 10)` under `php -S` with four workers: two
     * requests of one session at once are served by two processes, one
     * after the other.
     */
    public function testRouteBlockSerializesTheRequestsOfOneSession(): void
    {
        $port = RedisServer::freePort();
        // Its own process group, so that the server's workers stop with it.
        $server = self::start(['setsid', PHP_BINARY, ...self::phpArgs(), '-S', "127.0.0.1:$port", '-t', 'public', 'public/index.php'], ['PHP_CLI_SERVER_WORKERS' => '4']);
        try {
            $this->assertTrue($this->waitFor(fn () => @fsockopen('127.0.0.1', $port) !== false, 10), 'php -S started');
            [$status, $head, $id] = self::http($port, '/start')[0];
            $this->assertSame(200, $status, $head . $id . $this->log());
            $this->assertMatchesRegularExpression('/^Set-Cookie: app_session=' . preg_quote($id, '/') . ';/mi', $head);

            // The second 0.2 s after the first, which its process is then
            // busy with (a CLI server worker accepts while it is idle only).
            $responses = self::http($port, '/slow', "app_session=$id", 2, 0.2);
            $this->assertSame([200, 200], array_column($responses, 0), $this->log());
            $this->assertSame([$id, $id], array_column($responses, 2));
            $runs = $this->runs('http:slow');
            $this->assertCount(2, $runs);
            $this->assertNotSame($runs[0]['pid'], $runs[1]['pid'], 'two server processes served them');
            $this->assertNoOverlap($runs);
        } finally {
            posix_kill(-proc_get_status($server['proc'])['pid'], SIGTERM);
            self::finish($server);
        }
    }

    /** Two `app:isolated --isolated=7` at once (Laravel 9+): one runs, the other exits with 7. */
    public function testIsolatableCommandRunsOnceAtATime(): void
    {
        if (self::major() < 9) {
            $this->assertFalse(interface_exists(Isolatable::class), 'Isolatable commands are Laravel 9+');
            return;
        }
        $codes = [];
        foreach (self::together(2, ['app:isolated', '--isolated=7']) as $command) {
            [$codes[], $out, $err] = self::finish($command);
        }
        sort($codes);
        $this->assertSame([0, 7], $codes, $out . $err);
        $this->assertCount(1, $this->runs('isolated'));
        $this->assertSame([], self::lockKeys($this->redis, 'lock:*'), 'the command mutex is freed');
    }

    /** Cache::withoutOverlapping() (Laravel 13 of the matrix): two processes at once run one after the other. */
    public function testCacheWithoutOverlapping(): void
    {
        if (!method_exists(Repository::class, 'withoutOverlapping')) {
            $this->assertLessThan(13, self::major(), 'Cache::withoutOverlapping() is in Laravel 13, not in ' . Application::VERSION);
            return;
        }
        foreach (self::together(2, ['app:cache-lock', 'without-overlapping']) as $process) {
            [$code, $out, $err] = self::finish($process);
            $this->assertSame(0, $code, $out . $err);
        }
        $runs = $this->runs('cache:without-overlapping');
        $this->assertCount(2, $runs);
        $this->assertNoOverlap($runs);
    }

    /** Cache::funnel()->limit(2) (Laravel 13 of the matrix): of three processes at once, two run, then the third. */
    public function testCacheFunnel(): void
    {
        if (!method_exists(Repository::class, 'funnel')) {
            $this->assertLessThan(13, self::major(), 'Cache::funnel() is in Laravel 13, not in ' . Application::VERSION);
            return;
        }
        foreach (self::together(3, ['app:cache-lock', 'funnel']) as $process) {
            [$code, $out, $err] = self::finish($process);
            $this->assertSame(0, $code, $out . $err);
        }
        $runs = $this->runs('cache:funnel');
        $this->assertCount(3, $runs);
        $this->assertSame(2, self::mostAtOnce($runs), 'two at once, never three: ' . json_encode($runs));
    }

    /** `php artisan cache:clear --locks` (Laravel 13): the store's flushLocks(). */
    public function testCacheClearLocksCommand(): void
    {
        if (!method_exists(Repository::class, 'flushLocks')) {
            $this->assertLessThan(13, self::major(), 'Cache::flushLocks() is in Laravel 13, not in ' . Application::VERSION);
            return;
        }
        $held = (new \RedisLock\LockManager($this->dsn()))->createLock('report', 60, false);
        $this->assertTrue($held->acquire());
        $this->redis->set('app_cache:value', 'kept');
        [$code, $out, $err] = self::finish(self::artisan(['cache:clear', 'locks', '--locks']));
        $this->assertSame(0, $code, $out . $err);
        $this->assertSame(0, $this->redis->exists('lock:{report}'));
        $this->assertSame('kept', $this->redis->get('app_cache:value'), 'values are not locks');
    }

    /**
     * Under the app's error handler, which turns PHP warnings into
     * exceptions: a fail-open acquire with Redis unreachable returns true,
     * and a callback whose lock cannot be released afterwards (Redis stopped
     * while it ran) gives its value back; both are in the app's log.
     */
    public function testLockOutcomesThatAreNotExceptionsGoToTheLogNotTheErrorHandler(): void
    {
        try {
            [$code, $out, $err] = self::finish(self::artisan(['app:lock-outcomes'], [
                'REDIS_PID' => (string) self::$server->pid(),
                'REDIS_DEAD_PORT' => (string) RedisServer::freePort(),
            ]));
        } finally {
            self::$server->resume();
        }
        $this->assertSame(0, $code, $out . $err . $this->log());
        $this->assertSame(['open' => true, 'value' => 'the work was done'], json_decode(trim($out), true), $err . $this->log());
        $log = $this->log();
        $this->assertStringContainsString('on_unavailable=open', $log);
        $this->assertStringContainsString('could not be released after the callback', $log);
        $this->assertStringContainsString('.WARNING: redis_lock:', $log, 'at the warning level');
    }

    // --- helpers ---

    /** @return list<array> the recorded runs of $what (see App\Record) */
    private function runs(string $what): array
    {
        return array_map(fn ($r) => json_decode($r, true), $this->redis->lRange("runs:$what", 0, -1));
    }

    private function assertNoOverlap(array $runs): void
    {
        usort($runs, fn ($a, $b) => $a['start'] <=> $b['start']);
        for ($i = 1; $i < count($runs); $i++) {
            $this->assertGreaterThanOrEqual($runs[$i - 1]['end'], $runs[$i]['start'], 'runs overlapped: ' . json_encode($runs));
        }
    }

    private static function mostAtOnce(array $runs): int
    {
        $events = [];
        foreach ($runs as $r) {
            $events[] = [$r['start'], 1];
            $events[] = [$r['end'], -1];
        }
        usort($events, fn ($a, $b) => [$a[0], $a[1]] <=> [$b[0], $b[1]]);
        $now = $most = 0;
        foreach ($events as [, $delta]) {
            $most = max($most, $now += $delta);
        }
        return $most;
    }

    private function waitFor(callable $condition, float $seconds): bool
    {
        $deadline = microtime(true) + $seconds;
        while (!$condition()) {
            if (microtime(true) > $deadline) {
                return false;
            }
            usleep(20_000);
        }
        return true;
    }

    /** The app's log, for failure messages. */
    private function log(): string
    {
        return (string) @file_get_contents(self::$storage . '/logs/laravel.log');
    }

    private static function phpArgs(): array
    {
        return [...array_slice(self::php(), 1), '-d', 'display_errors=stderr'];
    }

    private static function artisan(array $args, array $env = []): array
    {
        return self::start([PHP_BINARY, ...self::phpArgs(), 'artisan', ...$args], $env);
    }

    /**
     * $count `php artisan` processes that start their command together, once
     * all have booted (a barrier in the app, see App\Record::barrier()).
     */
    private static function together(int $count, array $args, array $env = []): array
    {
        static $barriers = 0;
        $env['BARRIER'] = 'b' . ++$barriers . ":$count";
        $processes = [];
        for ($i = 0; $i < $count; $i++) {
            $processes[] = self::artisan($args, $env);
        }
        return $processes;
    }

    /**
     * Starts a process in the app's directory with the app's environment:
     * the suite's Redis server, its own storage directory, and the store
     * that REDIS_LOCK_LARAVEL_STORE may swap in.
     *
     * @return array{proc: resource, out: string, err: string}
     */
    private static function start(array $command, array $env = []): array
    {
        $env += ['REDIS_PORT' => (string) self::$server->port, 'APP_STORAGE' => self::$storage];
        $store = getenv('REDIS_LOCK_LARAVEL_STORE');
        if ($store !== false && $store !== '') {
            $env += ['CACHE_STORE' => $store, 'SESSION_BLOCK_STORE' => $store];
        }
        $out = tempnam(sys_get_temp_dir(), 'rl-out');
        $err = tempnam(sys_get_temp_dir(), 'rl-err');
        $proc = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $out, 'w'], 2 => ['file', $err, 'w']], $pipes, self::APP, $env + getenv());
        if (!is_resource($proc)) {
            throw new \RuntimeException('cannot start ' . implode(' ', $command));
        }
        return ['proc' => $proc, 'out' => $out, 'err' => $err];
    }

    /** @return array{int, string, string} exit code, stdout, stderr */
    private static function finish(array $process): array
    {
        $code = proc_close($process['proc']);
        $result = [$code, (string) file_get_contents($process['out']), (string) file_get_contents($process['err'])];
        unlink($process['out']);
        unlink($process['err']);
        return $result;
    }

    /**
     * $count GET requests sent $apart seconds apart, then read.
     *
     * @return list<array{int, string, string}> status, head, body of each
     */
    private static function http(int $port, string $path, ?string $cookie = null, int $count = 1, float $apart = 0): array
    {
        $sockets = [];
        for ($i = 0; $i < $count; $i++) {
            if ($i > 0) {
                usleep((int) ($apart * 1_000_000));
            }
            $socket = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
            fwrite($socket, "GET $path HTTP/1.0\r\nHost: 127.0.0.1\r\n" . ($cookie === null ? '' : "Cookie: $cookie\r\n") . "Connection: close\r\n\r\n");
            $sockets[] = $socket;
        }
        $responses = [];
        foreach ($sockets as $socket) {
            stream_set_timeout($socket, 20);
            [$head, $body] = explode("\r\n\r\n", (string) stream_get_contents($socket), 2) + [1 => ''];
            fclose($socket);
            $responses[] = [(int) (explode(' ', $head)[1] ?? 0), $head, $body];
        }
        return $responses;
    }
}
