<?php
/** Site Health check and admin notice: is the extension loaded, does Redis answer? */

defined('ABSPATH') || exit;

/** @return array{ok: bool, message: string} */
function redis_lock_status(): array
{
    if (!extension_loaded('redis_lock')) {
        return ['ok' => false, 'message' => __('The redis_lock PHP extension is not loaded: add extension=redis_lock to php.ini. Actions that need a lock answer 503 until then.', 'redis-lock')];
    }
    try {
        redis_lock_mutex()->isLocked('site-health-probe');
        return ['ok' => true, 'message' => __('The redis_lock extension is loaded and Redis answers.', 'redis-lock')];
    } catch (RedisLock\LockException $e) {
        return ['ok' => false, 'message' => sprintf(__('Redis is unreachable: %s', 'redis-lock'), $e->getMessage())];
    }
}

function redis_lock_site_status_tests(array $tests): array
{
    $tests['direct']['redis_lock'] = [
        'label' => __('Redis locks', 'redis-lock'),
        'test' => function () {
            $status = redis_lock_status();
            return [
                'label' => $status['ok'] ? __('Redis locks work', 'redis-lock') : __('Redis locks are not available', 'redis-lock'),
                'status' => $status['ok'] ? 'good' : 'critical',
                'badge' => ['label' => __('Performance', 'redis-lock'), 'color' => $status['ok'] ? 'blue' : 'red'],
                'description' => '<p>' . esc_html($status['message']) . '</p>',
                'test' => 'redis_lock',
            ];
        },
    ];
    return $tests;
}

function redis_lock_admin_notice(): void
{
    if (!current_user_can('manage_options') || extension_loaded('redis_lock')) {
        return;
    }
    $status = redis_lock_status();
    echo '<div class="notice notice-error"><p>' . esc_html($status['message']) . '</p></div>';
}
