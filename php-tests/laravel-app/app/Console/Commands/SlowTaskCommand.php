<?php

namespace App\Console\Commands;

use App\Record;
use Illuminate\Console\Command;
use Illuminate\Support\Facades\Redis;

/** A scheduled task that takes SLOW_TASK_SECONDS (run in the background by the scheduler). */
class SlowTaskCommand extends Command
{
    protected $signature = 'app:slow-task';

    public function handle()
    {
        Redis::connection()->rpush('started:background', (string) getmypid());
        Record::run('schedule:background', fn () => Record::work((float) env('SLOW_TASK_SECONDS', 4)));
        return 0;
    }
}
