<?php

namespace App\Console\Commands;

use Illuminate\Console\Command;
use Illuminate\Support\Facades\Cache;

/**
 * Lock outcomes that are not exceptions, under the app's own error handler
 * (which turns a PHP warning into an ErrorException): a fail-open acquire
 * while Redis is unreachable, and a callback whose lock cannot be released
 * because Redis stopped (REDIS_PID is SIGSTOPped) while it ran. Prints what
 * the app got back.
 */
class LockOutcomesCommand extends Command
{
    protected $signature = 'app:lock-outcomes';

    public function handle()
    {
        $open = Cache::store('locks-open')->lock('open', 10)->get();
        $pid = (int) env('REDIS_PID');
        $value = Cache::store('locks')->lock('stopped', 10)->get(function () use ($pid) {
            posix_kill($pid, SIGSTOP);
            return 'the work was done';
        });
        posix_kill($pid, SIGCONT);
        $this->line(json_encode(['open' => $open, 'value' => $value]));
        return 0;
    }
}
