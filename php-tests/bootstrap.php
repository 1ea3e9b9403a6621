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
if (getenv('REDIS_LOCK_SO') === false) {
    fwrite(STDERR, "set REDIS_LOCK_SO to the built .so (child php processes load it)\n");
    exit(1);
}

// One shared server for the suite; tests that stop or stall Redis start their own.
RedisLock\Tests\TestCase::$server = RedisLock\Tests\RedisServer::start();
