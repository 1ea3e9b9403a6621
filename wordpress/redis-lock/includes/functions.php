<?php
/** The helper plugin code calls. */

defined('ABSPATH') || exit;

/**
 * Runs $fn while holding the lock $key and returns what it returns.
 *
 * When the lock stays busy for the configured wait, returns a WP_Error
 * 'redis_lock_busy' with status 429 (REST responses also get a Retry-After
 * header). When Redis is unreachable and REDIS_LOCK_FAIL is 'closed' (the
 * default), or the extension is not loaded, returns a WP_Error
 * 'redis_lock_unavailable' with status 503; with 'open', $fn runs unlocked.
 * An exception from $fn propagates after the lock is released.
 *
 * @param array{ttl?: int|float, wait?: int|float} $args overrides of the configured TTL and wait
 * @return mixed|WP_Error
 */
function redis_lock_synchronized(string $key, callable $fn, array $args = [])
{
    $mutex = redis_lock_mutex();
    if ($mutex === null) {
        return new WP_Error('redis_lock_unavailable', __('The redis_lock PHP extension is not loaded, so this action cannot be done safely right now.', 'redis-lock'), ['status' => 503]);
    }
    $c = redis_lock_config();
    $ttl = $args['ttl'] ?? $c['ttl'];
    $wait = $args['wait'] ?? $c['wait'];
    try {
        return $mutex->synchronized($key, $fn, $ttl, $wait);
    } catch (RedisLock\LockConflictedException $e) {
        return new WP_Error('redis_lock_busy', __('This is being changed by another request; please try again in a moment.', 'redis-lock'), [
            'status' => 429,
            'retry_after' => max(1, (int) ceil($wait)),
        ]);
    } catch (RedisLock\ConnectionException $e) {
        return new WP_Error('redis_lock_unavailable', __('The lock service (Redis) is unreachable, so this action cannot be done safely right now.', 'redis-lock'), ['status' => 503]);
    }
}

/** REST responses for a busy lock say when to come back. */
function redis_lock_rest_retry_after($response)
{
    if ($response instanceof WP_REST_Response && $response->get_status() === 429) {
        $data = $response->get_data();
        if (is_array($data) && ($data['code'] ?? '') === 'redis_lock_busy') {
            $response->header('Retry-After', (string) ($data['data']['retry_after'] ?? 1));
        }
    }
    return $response;
}
