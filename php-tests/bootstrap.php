<?php
declare(strict_types=1);

require __DIR__ . '/Support/RedisServer.php';
require __DIR__ . '/Support/TestCase.php';
require __DIR__ . '/Support/Workers.php';
require __DIR__ . '/../php/autoload.php';

if (!extension_loaded('redis_lock')) {
    fwrite(STDERR, "run with: php -d extension=/path/to/libredis_lock.so /usr/bin/phpunit -c php-tests/phpunit.xml\n");
    exit(1);
}
// Child php processes load the extension as this one did (TestCase::php()):
// the .so REDIS_LOCK_SO names, else the installed one that php.ini enables.
if (getenv('REDIS_LOCK_SO') === false) {
    exec(escapeshellarg(PHP_BINARY) . ' -r ' . escapeshellarg('exit(extension_loaded("redis_lock") ? 0 : 1);'), $out, $code);
    if ($code !== 0) {
        fwrite(STDERR, "set REDIS_LOCK_SO to the built .so (child php processes load it), or enable the installed extension in php.ini\n");
        exit(1);
    }
}

// One shared server for the suite; tests that stop or stall Redis start their own.
RedisLock\Tests\TestCase::$server = RedisLock\Tests\RedisServer::start();
