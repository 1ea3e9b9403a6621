<?php
/**
 * The app's class loading without Composer: Debian's Laravel packages, the
 * RedisLock\ adapter classes of this checkout, and App\ from app/ (PSR-4).
 */
require_once '/usr/share/php/Illuminate/autoload.php';
require_once __DIR__ . '/../../php/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'App\\', 4) === 0) {
        $file = __DIR__ . '/app/' . str_replace('\\', '/', substr($class, 4)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
