<?php
declare(strict_types=1);

namespace RedisLock\Tests;

use Illuminate\Filesystem\Filesystem;
use Illuminate\Foundation\PackageManifest;

/**
 * The adapters installed by Composer (Debian's `composer`) from this
 * checkout, as the README's recipe says: a `path` repository pointing at
 * `php/`, offline (packagist off). Composer checks the platform (`php`
 * >= 8.2, the loaded extension), the autoloader finds the classes, and
 * Laravel's own package discovery finds the service provider.
 */
final class ComposerTest extends TestCase
{
    private string $dir;

    protected function setUp(): void
    {
        parent::setUp();
        $this->dir = sys_get_temp_dir() . '/rl-composer-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($this->dir . '/home', 0700, true);
    }

    protected function tearDown(): void
    {
        exec('rm -rf ' . escapeshellarg($this->dir));
        parent::tearDown();
    }

    public function testTheAdaptersInstallFromThisCheckoutAndLaravelDiscoversTheProvider(): void
    {
        $composer = trim((string) shell_exec('command -v composer'));
        $this->assertNotSame('', $composer, 'Debian\'s composer package is installed by make deps and in every root');
        file_put_contents($this->dir . '/composer.json', json_encode([
            'name' => 'app/app',
            'require' => ['redis-lock/redis-lock-adapters' => '^0.1'],
            'repositories' => [
                // A version of its own: a root without git cannot guess one from the checkout.
                ['type' => 'path', 'url' => dirname(__DIR__) . '/php',
                    'options' => ['symlink' => false, 'versions' => ['redis-lock/redis-lock-adapters' => '0.1.0']]],
                ['packagist.org' => false],
            ],
        ], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
        $cmd = [...self::php(), $composer, 'install',
            '--no-interaction', '--no-progress', '--working-dir=' . $this->dir];
        $proc = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, $this->dir,
            ['HOME' => $this->dir . '/home', 'COMPOSER_HOME' => $this->dir . '/home', 'PATH' => getenv('PATH')]);
        $out = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
        $this->assertSame(0, proc_close($proc), $out);

        [$code, $found, $err] = self::runPhp(sprintf(<<<'PHP'
            <?php
            $loader = require %s;
            // Found by the autoloader (not loaded: Laravel and Symfony are not installed here).
            echo json_encode(array_map(fn ($c) => is_file((string) $loader->findFile($c)), [
                'RedisLock\Laravel\RedisLockServiceProvider' => 'RedisLock\Laravel\RedisLockServiceProvider',
                'RedisLock\Symfony\RedisLockStore' => 'RedisLock\Symfony\RedisLockStore',
            ]));
            PHP, var_export($this->dir . '/vendor/autoload.php', true)));
        $this->assertSame(0, $code, $err);
        $this->assertSame(
            ['RedisLock\Laravel\RedisLockServiceProvider' => true, 'RedisLock\Symfony\RedisLockStore' => true],
            json_decode($found, true)
        );

        require_once '/usr/share/php/Illuminate/autoload.php';
        mkdir($this->dir . '/bootstrap/cache', 0700, true);
        $manifest = new PackageManifest(new Filesystem(), $this->dir, $this->dir . '/bootstrap/cache/packages.php');
        $this->assertContains('RedisLock\Laravel\RedisLockServiceProvider', $manifest->providers());
    }
}
