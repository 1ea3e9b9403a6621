<?php

namespace App\Console\Commands;

use App\Jobs\OverlapJob;
use App\Jobs\UniqueJob;
use Illuminate\Console\Command;

class DispatchCommand extends Command
{
    protected $signature = 'app:dispatch {job : overlap or unique} {key} {count=1}';

    public function handle()
    {
        for ($n = 0; $n < (int) $this->argument('count'); $n++) {
            if ($this->argument('job') === 'overlap') {
                OverlapJob::dispatch($this->argument('key'), $n);
            } else {
                UniqueJob::dispatch($this->argument('key'));
            }
        }
        return 0;
    }
}
