<?php

namespace App\Console\Commands;

use App\Record;
use Illuminate\Console\Command;
use Illuminate\Support\Facades\Cache;

/** Cache::withoutOverlapping() and Cache::funnel() (Laravel 12+). */
class CacheLockCommand extends Command
{
    protected $signature = 'app:cache-lock {mode : without-overlapping or funnel}';

    public function handle()
    {
        if ($this->argument('mode') === 'without-overlapping') {
            Cache::withoutOverlapping('report', fn () => Record::run('cache:without-overlapping', fn () => Record::work(0.4)), 10, 10);
        } else {
            // At most two at once; a third waits for a free slot.
            Cache::funnel('exports')->limit(2)->releaseAfter(30)->block(10)
                ->then(fn () => Record::run('cache:funnel', fn () => Record::work(0.6)));
        }
        return 0;
    }
}
