<?php
/**
 * `RedisMutex` for plugin code written against a global RedisMutex class:
 * the extension's RedisLock\RedisMutex under its short name.
 */

defined('ABSPATH') || exit;

class RedisMutex extends RedisLock\RedisMutex
{
}
