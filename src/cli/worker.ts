import { jobs } from '../../jobs/index.ts';
import { DEFAULT_PREFIX } from '../queue/queues.ts';
import { runWorker } from '../worker.ts';
import { type Command, cliLogger, durationArg, loadCliConfig, parse } from './command.ts';

export const workerCommand: Command = {
  summary: 'run the worker: schedules, jobs, health and metrics endpoints',
  usage: `keywarden worker [--prefix <name>] [--shutdown-timeout <duration>] [--watchdog-interval <duration>]

  --prefix             BullMQ key prefix in Redis (default ${DEFAULT_PREFIX}); replicas of one deployment share it
  --shutdown-timeout   how long SIGTERM waits for running jobs before abandoning them (default 30s)
  --watchdog-interval  how often the schedulers are checked and repaired (default 60s)`,
  async run(args) {
    const { values } = parse(args, {
      prefix: { type: 'string' },
      'shutdown-timeout': { type: 'string' },
      'watchdog-interval': { type: 'string' },
    });
    const config = loadCliConfig();
    await runWorker({
      config,
      jobs,
      log: cliLogger(config),
      prefix: values.prefix ?? DEFAULT_PREFIX,
      shutdownDeadlineMs: durationArg('shutdown-timeout', values['shutdown-timeout'], 30_000),
      watchdogIntervalMs: durationArg('watchdog-interval', values['watchdog-interval'], 60_000),
      httpPort: config.env.httpPort,
    });
    return -1; // keeps running; the shutdown handler exits
  },
};
