<?php
/**
 * Test mu-plugin: the seed scenario. POST /wp-json/redis-lock-test/v1/credit
 * with user_id adds 1 to the user's credit with a read (get_user_meta) and a
 * write (update_user_meta); with nolock=1 it runs without the lock.
 */
add_action('rest_api_init', function () {
    register_rest_route('redis-lock-test/v1', '/credit', [
        'methods' => 'POST',
        'permission_callback' => '__return_true',
        'callback' => function (WP_REST_Request $request) {
            $user = (int) $request->get_param('user_id');
            $credit = function () use ($user) {
                $balance = (int) get_user_meta($user, 'credit', true);
                usleep(2000); // what a real handler does between reading and writing
                update_user_meta($user, 'credit', $balance + 1);
                return $balance + 1;
            };
            if ($request->get_param('nolock')) {
                return ['balance' => $credit()];
            }
            $result = redis_lock_synchronized("credit:$user", $credit);
            return is_wp_error($result) ? $result : ['balance' => $result];
        },
    ]);
});
