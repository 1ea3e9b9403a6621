<?php

use App\Record;
use Illuminate\Support\Facades\Route;

// Starts a session (the response sets its cookie).
Route::get('/start', function () {
    session(['started' => true]);
    return session()->getId();
});

// Requests of one session take turns here: the session lock is held for up
// to 10 s, and a second request waits up to 10 s for it.
Route::get('/slow', function () {
    return Record::run('http:slow', function () {
        Record::work(0.5);
        return session()->getId();
    });
})->block(10, 10);
