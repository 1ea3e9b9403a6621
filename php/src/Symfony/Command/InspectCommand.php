<?php
declare(strict_types=1);

namespace RedisLock\Symfony\Command;

use RedisLock\Console\Inspection;
use RedisLock\Symfony\RedisLockStore;
use Symfony\Component\Console\Command\Command;
use Symfony\Component\Console\Input\InputArgument;
use Symfony\Component\Console\Input\InputInterface;
use Symfony\Component\Console\Input\InputOption;
use Symfony\Component\Console\Output\OutputInterface;

/**
 * `bin/console redis-lock:inspect <resource> [--json]`: who holds a lock of
 * the bundle's store, for how long, and who waits (`LockManager::inspect()`).
 */
final class InspectCommand extends Command
{
    public function __construct(private RedisLockStore $store)
    {
        parent::__construct('redis-lock:inspect');
    }

    protected function configure(): void
    {
        $this->setDescription('Shows who holds a lock, for how long, and who waits for it')
            ->addArgument('resource', InputArgument::REQUIRED, 'the lock\'s resource name, as given to LockFactory::createLock()')
            ->addOption('json', null, InputOption::VALUE_NONE, 'print inspect()\'s array as JSON');
    }

    protected function execute(InputInterface $input, OutputInterface $output): int
    {
        $resource = (string) $input->getArgument('resource');
        foreach (Inspection::lines($resource, $this->store->inspect($resource), (bool) $input->getOption('json')) as $line) {
            $output->writeln($line);
        }
        return 0;
    }
}
