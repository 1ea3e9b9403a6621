<?php

namespace App\Console\Commands;

use Illuminate\Console\Command;
use Illuminate\Support\Facades\Cache;

/** Boots the app and says which Laravel and which default cache store it has. */
class PingCommand extends Command
{
    protected $signature = 'app:ping';

    public function handle()
    {
        $this->line(json_encode([
            'laravel' => $this->laravel->version(),
            'store' => get_class(Cache::store()->getStore()),
        ]));
        return 0;
    }
}
