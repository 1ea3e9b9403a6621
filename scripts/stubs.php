<?php
/**
 * Finishes the IDE stubs that `cargo php stubs` generates from the built
 * extension, from the same loaded extension:
 * - keeps the first `@param`/`@return` tag of each name in a docblock (cargo-php
 *   appends generic ones, such as `@param mixed $ttl`, after the precise ones
 *   the Rust doc comments give, because arginfo cannot say `int|float`);
 * - adds the exception classes, which are plain Zend classes that cargo-php
 *   does not describe, from Reflection;
 * - shows the constructors of the objects only a LockManager makes as
 *   private, and the waits that may be left out with their real defaults.
 *
 * Usage: php -d extension=… scripts/stubs.php RAW_STUBS > stubs/redis_lock.stubs.php
 */
declare(strict_types=1);

if (!extension_loaded('redis_lock')) {
    fwrite(STDERR, "load the extension: php -d extension=/path/to/libredis_lock.so\n");
    exit(2);
}
$raw = file_get_contents($argv[1] ?? 'php://stdin');

$stub = preg_replace_callback('~/\*\*.*?\*/~s', function (array $m): string {
    $seen = [];
    $lines = [];
    foreach (explode("\n", $m[0]) as $line) {
        if (preg_match('~^\s*\*\s*@(param)\s+\S+\s+(\$\w+)~', $line, $t)
            || preg_match('~^\s*\*\s*@(return)\b~', $line, $t)) {
            $key = $t[1] . ($t[2] ?? '');
            if (isset($seen[$key])) {
                continue;
            }
            $seen[$key] = true;
        }
        $lines[] = $line;
    }
    // Drop a blank docblock line left right before the closing "*/".
    $text = implode("\n", $lines);
    return preg_replace('~\n\s*\*\s*\n(\s*\*/)$~', "\n$1", $text);
}, $raw);

// Objects that only a LockManager makes: PHP code cannot construct them
// (the extension refuses with an Exception), so the stub says so.
$stub = preg_replace(
    '~(class (?:Lock|MultiLock|Semaphore) \{\n\s*)public function __construct\(\) \{\}~',
    '$1private function __construct() {}',
    $stub
);
// Waits that may be left out, not passed as null: arginfo gives these
// optional zvals a null default, the code takes int|float (null is a
// TypeError) and uses these defaults.
$stub = str_replace(
    ['mixed $maxWait = null', 'mixed $wait = null'],
    ['int|float $maxWait = 10', 'int|float $wait = 0'],
    $stub
);

$exceptions = '';
$ext = new ReflectionExtension('redis_lock');
$classes = $ext->getClasses();
ksort($classes);
foreach ($classes as $class) {
    if (!$class->isSubclassOf(Throwable::class)) {
        continue;
    }
    $short = $class->getShortName();
    $parent = '\\' . $class->getParentClass()->getName();
    $exceptions .= "\n    class $short extends $parent {}\n";
}
$pos = strrpos($stub, "}");
echo rtrim(substr($stub, 0, $pos)) . "\n" . $exceptions . "}\n";
