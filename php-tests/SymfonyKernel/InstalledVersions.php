<?php
declare(strict_types=1);

namespace Composer;

/**
 * Stand-in for Composer 2's runtime API, loaded only where it is missing.
 *
 * Debian's packaged Symfony is not installed by Composer, so there is no
 * Composer\InstalledVersions, and FrameworkBundle 6.4/7.4 refuses to load
 * without it (ContainerBuilder::willBeAvailable: "installed with Composer 1
 * is not supported"; 5.4 only deprecates it). An application installed by
 * Composer has the real class. This one answers as the real class does when
 * Composer recorded no packages: nothing is installed, so FrameworkBundle
 * enables each feature whose classes it can load.
 */
final class InstalledVersions
{
    public static function isInstalled(string $packageName, bool $includeDevRequirements = true): bool
    {
        return false;
    }

    /** @return array{name: string, pretty_version: string, version: string, reference: ?string, type: string, install_path: string, aliases: string[], dev: bool} */
    public static function getRootPackage(): array
    {
        return ['name' => '__root__', 'pretty_version' => 'dev-main', 'version' => 'dev-main', 'reference' => null,
            'type' => 'project', 'install_path' => __DIR__, 'aliases' => [], 'dev' => false];
    }

    public static function getVersion(string $packageName): ?string
    {
        return null;
    }

    public static function getPrettyVersion(string $packageName): ?string
    {
        return null;
    }
}
