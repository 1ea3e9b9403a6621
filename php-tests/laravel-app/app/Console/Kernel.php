<?php

namespace App\Console;

use App\Record;
use Illuminate\Console\Scheduling\Schedule;
use Illuminate\Contracts\Console\Isolatable;
use Illuminate\Foundation\Console\Kernel as ConsoleKernel;

class Kernel extends ConsoleKernel
{
    /** SCHEDULE_TASK picks the task that `schedule:run` runs (one per test). */
    protected function schedule(Schedule $schedule)
    {
        switch (env('SCHEDULE_TASK')) {
            case 'without-overlapping':
                $schedule->call(fn () => Record::run('schedule:without-overlapping', fn () => Record::work(0.5)))
                    ->name('without-overlapping')->everyMinute()->withoutOverlapping();
                break;
            case 'background':
                // Its mutex is released by `schedule:finish`, in the process
                // that ran the command, after schedule:run itself ended.
                $schedule->command('app:slow-task')->everyMinute()->withoutOverlapping()->runInBackground();
                break;
            case 'one-server':
                $schedule->call(fn () => Record::run('schedule:one-server', fn () => Record::work(0.5)))
                    ->name('one-server')->everyMinute()->onOneServer();
                break;
        }
    }

    protected function commands()
    {
        $this->commands = [
            Commands\PingCommand::class,
            Commands\DispatchCommand::class,
            Commands\CacheLockCommand::class,
            Commands\SlowTaskCommand::class,
            Commands\LockOutcomesCommand::class,
        ];
        // Isolatable commands are Laravel 9+.
        if (interface_exists(Isolatable::class)) {
            $this->commands[] = Commands\IsolatedCommand::class;
        }
    }
}
