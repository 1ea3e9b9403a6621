<?php
return [
    // CACHE_STORE=array swaps every lock to an in-process store (how the
    // tests show that each proof can fail).
    'default' => env('CACHE_STORE', 'locks'),
    'stores' => [
        // Locks in Redis through the extension; values in Laravel's redis
        // store on the same connection (no `store` key needed).
        // LOCK_WATCHDOG=1: locks without seconds are watched, with a TTL
        // of LOCK_WATCHDOG_TTL seconds (the driver's `watchdog` keys).
        'locks' => ['driver' => 'redis-lock', 'connection' => 'default']
            + (env('LOCK_WATCHDOG') ? ['watchdog' => true, 'watchdog_ttl' => (float) env('LOCK_WATCHDOG_TTL', 10)] : []),
        // Locks on a server that is not there (REDIS_DEAD_PORT), granted
        // without it (`on_unavailable = open`).
        'locks-open' => ['driver' => 'redis-lock', 'dsn' => 'redis://127.0.0.1:' . env('REDIS_DEAD_PORT', 1), 'store' => 'array',
            'options' => ['on_unavailable' => 'open', 'connect_timeout' => 0.3]],
        'redis' => ['driver' => 'redis', 'connection' => 'default'],
        'array' => ['driver' => 'array', 'serialize' => false],
    ],
    'prefix' => 'app_cache',
];
