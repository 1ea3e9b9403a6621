<?php
/*
 * A classic (Kernel-based) Laravel application, which Laravel 8 to 13 boot.
 * Everything it writes (compiled manifests, sessions, logs) goes under
 * APP_STORAGE (default: a directory in the system temp dir), never here.
 */
$storage = getenv('APP_STORAGE') ?: sys_get_temp_dir() . '/redis-lock-laravel-app';
foreach (['framework/sessions', 'framework/views', 'framework/cache', 'logs', 'bootstrap'] as $dir) {
    is_dir("$storage/$dir") || @mkdir("$storage/$dir", 0777, true);
}
foreach ([
    'APP_SERVICES_CACHE' => 'services.php',
    'APP_PACKAGES_CACHE' => 'packages.php',
    'APP_CONFIG_CACHE' => 'config.php',
    'APP_ROUTES_CACHE' => 'routes-v7.php',
    'APP_EVENTS_CACHE' => 'events.php',
] as $key => $file) {
    if (getenv($key) === false) {
        putenv("$key=$storage/bootstrap/$file");
        $_ENV[$key] = $_SERVER[$key] = "$storage/bootstrap/$file";
    }
}

$app = new Illuminate\Foundation\Application(dirname(__DIR__));
$app->useStoragePath($storage);
if (method_exists($app, 'dontMergeFrameworkConfiguration')) {
    // Laravel 11+ would merge its own config/*.php in, from a path that
    // Debian's package does not have; this app's config is complete.
    $app->dontMergeFrameworkConfiguration();
}

$app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
$app->singleton(Illuminate\Contracts\Console\Kernel::class, App\Console\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
