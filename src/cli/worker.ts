import { jobs } from '../../jobs/index.ts';
import { cronEvery } from '../queue/duties.ts';
import { DEFAULT_PREFIX, QUEUE_NAMES, type QueueName } from '../queue/queues.ts';
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

const MAX_SLOTS = 200;

/** `--concurrency poll=20,analyze=3`: jobs at once per queue on this replica, for the queues named. */
export function concurrencyArg(value: string | undefined): Partial<Record<QueueName, number>> {
  if (value === undefined) return {};
  const slots: Partial<Record<QueueName, number>> = {};
  for (const part of value.split(',')) {
    const [queue, count, extra] = part.trim().split('=');
    if (!(QUEUE_NAMES as readonly string[]).includes(queue ?? '')) {
      throw new UsageError(`--concurrency: "${part}": no queue named "${queue}" (queues: ${QUEUE_NAMES.join(', ')})`);
    }
    // digits only: Number() would also take 0x10 and 1e6, and each slot may hold a Postgres connection for a run lock
    const n = /^\d+$/.test(count ?? '') ? Number(count) : Number.NaN;
    if (extra !== undefined || !(n >= 1 && n <= MAX_SLOTS)) {
      throw new UsageError(
        `--concurrency: "${part}": give a queue and a whole number of jobs at once, 1 to ${MAX_SLOTS} (like ${queue}=4)`,
      );
    }
    if (slots[queue as QueueName] !== undefined) {
      throw new UsageError(`--concurrency: "${queue}" is given twice; give each queue once`);
    }
    slots[queue as QueueName] = n;
  }
  return slots;
}

export const workerCommand: Command = {
  summary: 'run the worker: schedules, jobs, health and metrics endpoints',
  usage: `keywarden worker [--prefix <name>] [--shutdown-timeout <duration>] [--watchdog-interval <duration>]
                 [--heartbeat-interval <duration>] [--concurrency <queue>=<n>,...]

  --prefix              BullMQ key prefix in Redis (default ${DEFAULT_PREFIX}); replicas of one deployment share it;
                        keep a {hash tag} in it on Redis Cluster
  --shutdown-timeout    how long SIGTERM waits for running jobs before abandoning them (default 30s)
  --watchdog-interval   how often this replica checks and repairs the schedulers (default 60s)
  --heartbeat-interval  how often this replica logs its heartbeat: memory and event-loop delay (default 60s)
  --concurrency         jobs run at once on this replica per queue, e.g. analyze=3,ingest=2 (default: poll one per
                        organization; ingest 3, analyze 6, notify 4, maintenance 2: one more than the jobs on it;
                        fewer saves memory, but then one organization whose Admin API hangs can hold them all)`,
  async run(args) {
    const { values } = parse(args, {
      prefix: { type: 'string' },
      'shutdown-timeout': { type: 'string' },
      'watchdog-interval': { type: 'string' },
      'heartbeat-interval': { type: 'string' },
      concurrency: { type: 'string' },
    });
    const concurrency = concurrencyArg(values.concurrency);
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
      concurrency,
    });
    return -1; // keeps running; the shutdown handler exits
  },
};
