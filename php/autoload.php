<?php
/**
 * PSR-4 autoloading of the RedisLock\ adapter classes (php/src/) without
 * Composer. The classes the extension itself defines are never looked up here.
 */
spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'RedisLock\\', 10) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 10)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
