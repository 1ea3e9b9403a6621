<?php
declare(strict_types=1);

namespace RedisLock\Symfony\Command;

use RedisLock\Console\MetricsReport;
use Symfony\Component\Console\Command\Command;
use Symfony\Component\Console\Input\InputInterface;
use Symfony\Component\Console\Input\InputOption;
use Symfony\Component\Console\Output\OutputInterface;

/**
 * `bin/console redis-lock:metrics [--json] [--prometheus]`: this host's lock
 * metrics, every PHP process's together (`RedisLock\Metrics`).
 */
final class MetricsCommand extends Command
{
    public function __construct()
    {
        parent::__construct('redis-lock:metrics');
    }

    protected function configure(): void
    {
        $this->setDescription('Shows the lock metrics of every PHP process on this host')
            ->addOption('json', null, InputOption::VALUE_NONE, 'print Metrics::snapshot() as JSON')
            ->addOption('prometheus', null, InputOption::VALUE_NONE, 'print the Prometheus text');
    }

    protected function execute(InputInterface $input, OutputInterface $output): int
    {
        $format = $input->getOption('prometheus') ? 'prometheus' : ($input->getOption('json') ? 'json' : 'table');
        foreach (MetricsReport::lines($format) as $line) {
            $output->writeln($line, OutputInterface::OUTPUT_RAW);
        }
        return 0;
    }
}
