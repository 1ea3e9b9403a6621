<?php

namespace App\Providers;

use App\Record;
use Illuminate\Console\Events\CommandStarting;
use Illuminate\Support\Facades\Event;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\ServiceProvider;

class AppServiceProvider extends ServiceProvider
{
    public function boot()
    {
        Route::middleware('web')->group(base_path('routes/web.php'));

        // BARRIER=<name>:<count>: the command starts once <count> processes got there.
        if (is_string($barrier = env('BARRIER')) && str_contains($barrier, ':')) {
            Event::listen(CommandStarting::class, function () use ($barrier) {
                [$name, $count] = explode(':', $barrier, 2);
                Record::barrier($name, (int) $count);
            });
        }
    }
}
