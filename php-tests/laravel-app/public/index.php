<?php
// The front controller (served by `php -S 127.0.0.1:PORT public/index.php`).
define('LARAVEL_START', microtime(true));

require __DIR__ . '/../autoload.php';
$app = require __DIR__ . '/../bootstrap/app.php';

$kernel = $app->make(Illuminate\Contracts\Http\Kernel::class);
$response = $kernel->handle($request = Illuminate\Http\Request::capture());
$response->send();
$kernel->terminate($request, $response);
