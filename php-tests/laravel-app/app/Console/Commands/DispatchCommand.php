<?php

namespace App\Console\Commands;

use App\Jobs\OverlapJob;
use App\Jobs\SlowOverlapJob;
use App\Jobs\UniqueJob;
use App\Jobs\UniqueUntilReleasedJob;
use Illuminate\Console\Command;

class DispatchCommand extends Command
{
    protected $signature = 'app:dispatch {job : overlap, slow-overlap, unique or unique-until-released} {key} {count=1}
        {--then-sleep=0 : seconds to stay alive after dispatching (a process that is then killed)}';

    public function handle()
    {
        for ($n = 0; $n < (int) $this->argument('count'); $n++) {
            match ($this->argument('job')) {
                'overlap' => OverlapJob::dispatch($this->argument('key'), $n),
                'slow-overlap' => SlowOverlapJob::dispatch($this->argument('key')),
                'unique' => UniqueJob::dispatch($this->argument('key')),
                'unique-until-released' => UniqueUntilReleasedJob::dispatch($this->argument('key')),
            };
        }
        sleep((int) $this->option('then-sleep'));
        return 0;
    }
}
