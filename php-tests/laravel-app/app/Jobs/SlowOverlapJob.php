<?php

namespace App\Jobs;

use App\Record;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\Middleware\WithoutOverlapping;
use Illuminate\Support\Facades\Redis;

/**
 * A long job under WithoutOverlapping without expireAfter(): Laravel takes
 * its lock with `lock($key, 0)`, "until released".
 */
class SlowOverlapJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public function __construct(public string $key)
    {
    }

    public function middleware()
    {
        return [new WithoutOverlapping($this->key)];
    }

    public function handle()
    {
        Redis::connection()->rpush("started:slow:{$this->key}", (string) getmypid());
        Record::run("slow:{$this->key}", fn () => Record::work((float) env('SLOW_JOB_SECONDS', 4)));
    }
}
