<?php

namespace App\Jobs;

use App\Record;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldBeUnique;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;

/**
 * ShouldBeUnique without `uniqueFor`: Laravel takes the unique lock at
 * dispatch with `lock($key, 0)`, and the worker that runs the job frees it,
 * in another process.
 */
class UniqueUntilReleasedJob implements ShouldQueue, ShouldBeUnique
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public function __construct(public string $id)
    {
    }

    public function uniqueId()
    {
        return $this->id;
    }

    public function handle()
    {
        Record::run("unique-until-released:{$this->id}");
    }
}
