<?php
return [
    // CACHE_STORE=array swaps every lock to an in-process store (how the
    // tests show that each proof can fail).
    'default' => env('CACHE_STORE', 'locks'),
    'stores' => [
        // Locks in Redis through the extension; values in Laravel's redis
        // store on the same connection (no `store` key needed).
        'locks' => ['driver' => 'redis-lock', 'connection' => 'default'],
        'redis' => ['driver' => 'redis', 'connection' => 'default'],
        'array' => ['driver' => 'array', 'serialize' => false],
    ],
    'prefix' => 'app_cache',
];
