<?php
return [
    'default' => 'sqlite',
    'connections' => [
        'sqlite' => ['driver' => 'sqlite', 'database' => ':memory:', 'prefix' => ''],
    ],
    'migrations' => 'migrations',
    'redis' => [
        'client' => 'phpredis',
        'options' => ['cluster' => 'redis'],
        'default' => [
            'host' => '127.0.0.1',
            'port' => (int) env('REDIS_PORT', 6379),
            'database' => 0,
        ],
    ],
];
