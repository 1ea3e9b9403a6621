<?php
/** Installs WordPress into the copy at argv[1], activates the plugin, makes a user; prints the user id. */
[$root, $host] = [$argv[1], $argv[2]];
$_SERVER['HTTP_HOST'] = $host;
$_SERVER['REQUEST_URI'] = '/';
define('WP_INSTALLING', true);
require "$root/wp-load.php";
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
$result = wp_install('redis-lock proof', 'admin', 'admin@example.invalid', false, '', wp_generate_password(24));
if (is_wp_error($result)) {
    fwrite(STDERR, $result->get_error_message() . "\n");
    exit(1);
}
$activated = activate_plugin('redis-lock/redis-lock.php');
if (is_wp_error($activated)) {
    fwrite(STDERR, 'activation: ' . $activated->get_error_message() . "\n");
    exit(1);
}
$user = wp_create_user('alice', wp_generate_password(24), 'alice@example.invalid');
update_user_meta($user, 'credit', 0);
echo $user, "\n";
