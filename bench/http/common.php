<?php
/**
 * What every endpoint of the HTTP benchmark shares: the data connection, the
 * names, and the critical section (a GET, a 2 ms sleep, a SET of the counter).
 * Only the lock around it differs between the endpoints.
 */
declare(strict_types=1);

const LOCK_KEY = 'bench:http:hot';
const COUNTER_KEY = 'bench:http:counter';
const SECTION_KEY = 'bench:http:section_us';   // sum of the critical sections' durations
const TTL = 5;      // seconds; far above the 2 ms the lock is held
const WAIT = 30;    // seconds a request may wait for the lock before it fails (a 500)

function redis_port(): int
{
    return (int) $_SERVER['REDIS_PORT'];
}

/** The counter's connection: persistent, as an application's would be. */
function data(): Redis
{
    $r = new Redis();
    $r->pconnect('127.0.0.1', redis_port());
    return $r;
}

/** The work under the lock; a lost update shows as a counter below the 2xx count. */
function critical_section(Redis $data): void
{
    $t0 = hrtime(true);
    $value = (int) $data->get(COUNTER_KEY);
    usleep(2000);
    $data->set(COUNTER_KEY, (string) ($value + 1));
    $GLOBALS['section_us'] = intdiv(hrtime(true) - $t0, 1000);
}

/**
 * After the lock is released: adds the critical section's duration to a sum,
 * from which bench/http.sh derives the most requests/s one key could serve.
 */
function done(Redis $data): void
{
    $data->incrBy(SECTION_KEY, $GLOBALS['section_us'] ?? 0);
    echo "ok\n";
}
