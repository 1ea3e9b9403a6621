<?php

namespace App\Console\Commands;

use App\Record;
use Illuminate\Console\Command;
use Illuminate\Contracts\Console\Isolatable;

/** `php artisan app:isolated --isolated=7`: one at a time; the others exit with 7. */
class IsolatedCommand extends Command implements Isolatable
{
    protected $signature = 'app:isolated';

    public function handle()
    {
        Record::run('isolated', fn () => Record::work(0.5));
        return 0;
    }
}
