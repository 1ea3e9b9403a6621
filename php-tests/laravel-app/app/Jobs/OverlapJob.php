<?php

namespace App\Jobs;

use App\Record;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\Middleware\WithoutOverlapping;

/** A job that must never run at the same time as another for the same key. */
class OverlapJob implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public $tries = 100;

    public function __construct(public string $key, public int $n)
    {
    }

    public function middleware()
    {
        // Held elsewhere: back on the queue for one second.
        return [(new WithoutOverlapping($this->key))->releaseAfter(1)->expireAfter(30)];
    }

    public function handle()
    {
        Record::run("overlap:{$this->key}", fn () => Record::work(0.3), ['n' => $this->n, 'attempts' => $this->attempts()]);
    }
}
