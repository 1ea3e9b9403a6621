<?php

namespace App\Jobs;

use App\Record;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldBeUnique;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;

/** At most one on the queue per id: the unique lock is taken at dispatch, freed by the worker. */
class UniqueJob implements ShouldQueue, ShouldBeUnique
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public $uniqueFor = 60;

    public function __construct(public string $id)
    {
    }

    public function uniqueId()
    {
        return $this->id;
    }

    public function handle()
    {
        Record::run("unique:{$this->id}");
    }
}
