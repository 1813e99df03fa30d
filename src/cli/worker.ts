import { jobs } from '../../jobs/index.ts';
import { cronEvery } from '../queue/duties.ts';
import { DEFAULT_PREFIX } from '../queue/queues.ts';
import { runWorker } from '../worker.ts';
import { type Command, cliLogger, durationArg, loadCliConfig, parse, UsageError } from './command.ts';

/** A replica duty's interval as the node-cron pattern it runs on; one cron cannot express is refused by name. */
function dutyCron(flag: string, value: string | undefined, fallbackMs: number): string {
  const ms = durationArg(flag, value, fallbackMs);
  const pattern = cronEvery(ms);
  if (pattern === null) {
    throw new UsageError(
      `--${flag}: "${value}" does not divide a minute into whole seconds or an hour into whole minutes (like 5s, 30s, 1m, 15m)`,
    );
  }
  return pattern;
}

export const workerCommand: Command = {
  summary: 'run the worker: schedules, jobs, health and metrics endpoints',
  usage: `keywarden worker [--prefix <name>] [--shutdown-timeout <duration>] [--watchdog-interval <duration>]
                 [--heartbeat-interval <duration>]

  --prefix              BullMQ key prefix in Redis (default ${DEFAULT_PREFIX}); replicas of one deployment share it;
                        keep a {hash tag} in it on Redis Cluster
  --shutdown-timeout    how long SIGTERM waits for running jobs before abandoning them (default 30s)
  --watchdog-interval   how often this replica checks and repairs the schedulers (default 60s)
  --heartbeat-interval  how often this replica logs its heartbeat: memory and event-loop delay (default 60s)`,
  async run(args) {
    const { values } = parse(args, {
      prefix: { type: 'string' },
      'shutdown-timeout': { type: 'string' },
      'watchdog-interval': { type: 'string' },
      'heartbeat-interval': { type: 'string' },
    });
    const config = loadCliConfig();
    await runWorker({
      config,
      jobs,
      log: cliLogger(config),
      prefix: values.prefix ?? DEFAULT_PREFIX,
      shutdownDeadlineMs: durationArg('shutdown-timeout', values['shutdown-timeout'], 30_000),
      watchdogCron: dutyCron('watchdog-interval', values['watchdog-interval'], 60_000),
      heartbeatCron: dutyCron('heartbeat-interval', values['heartbeat-interval'], 60_000),
      httpPort: config.env.httpPort,
    });
    return -1; // keeps running; the shutdown handler exits
  },
};
