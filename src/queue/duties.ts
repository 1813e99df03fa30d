import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import cron from 'node-cron';
import { Gauge } from 'prom-client';
import type { Metrics } from '../http/metrics.ts';
import type { Logger } from '../log.ts';

/**
 * What each replica does for itself, on its own clock: the scheduler watchdog, its heartbeat and the gauges only it
 * can read (its memory, its event loop). These run on node-cron in every process; the work the deployment shares
 * runs on BullMQ's job schedulers, the one source of cluster-wide schedules.
 */
export interface ReplicaDuty {
  name: string;
  /** node-cron pattern, seconds first when six fields. */
  cron: string;
  run(): Promise<void>;
}

/** The name this process goes by: in BullMQ's `processedBy` and `getWorkers()`, and in its heartbeat. */
export function replicaName(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * A node-cron pattern that fires every `ms`, or null: a duration of whole seconds that divides a minute, or of whole
 * minutes that divides an hour (cron fires at fixed marks of the clock, so 90 s has no pattern).
 */
export function cronEvery(ms: number): string | null {
  const divides = (n: number, whole: number) => Number.isInteger(n) && n >= 1 && whole % n === 0;
  const seconds = ms / 1000;
  if (seconds === 1) return '* * * * * *';
  if (seconds < 60 && divides(seconds, 60)) return `*/${seconds} * * * * *`;
  const minutes = ms / 60_000;
  if (minutes === 1) return '0 * * * * *';
  if (minutes === 60) return '0 0 * * * *';
  if (divides(minutes, 60)) return `0 */${minutes} * * * *`;
  return null;
}

/**
 * Starts the duties. A run that throws is logged and tried again at the next mark; a run still going when its next
 * mark comes is not started twice (noOverlap). `stop()` ends them.
 */
export function startDuties(duties: readonly ReplicaDuty[], log: Logger): { stop(): Promise<void> } {
  const cronLog = log.child({ component: 'node-cron' });
  const tasks = duties.map((duty) =>
    cron.schedule(
      duty.cron,
      async () => {
        try {
          await duty.run();
        } catch (err) {
          log.warn({ err, duty: duty.name }, 'replica duty failed; will try again at its next mark');
        }
      },
      {
        name: duty.name,
        noOverlap: true,
        // node-cron prints to the console otherwise
        logger: {
          info: (message) => cronLog.debug(message),
          warn: (message) => cronLog.warn(message),
          error: (message, err) => cronLog.error({ err }, String(message)),
          debug: (message) => cronLog.debug(String(message)),
        },
      },
    ),
  );
  return {
    stop: async () => {
      for (const task of tasks) await task.destroy();
    },
  };
}

/**
 * The heartbeat: one log line per beat with this replica's resident memory (and the V8 heap's and buffers' share of
 * it) and its event loop's delay since the last beat (p99 and max, from perf_hooks' monitorEventLoopDelay), and the
 * same as gauges on /metrics. A replica whose heartbeat stops, or whose delay climbs, is one to look at.
 */
export function heartbeat(
  pattern: string,
  metrics: Metrics,
  log: Logger,
  replica: string,
): ReplicaDuty & { stop(): void } {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const p99 = new Gauge({
    name: 'keywarden_event_loop_delay_p99_seconds',
    help: "This replica's event-loop delay, 99th percentile between its last two heartbeats.",
    registers: [metrics.registry],
  });
  const beat = new Gauge({
    name: 'keywarden_heartbeat_timestamp_seconds',
    help: "When this replica's last heartbeat ran (Unix seconds).",
    registers: [metrics.registry],
  });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return {
    name: 'heartbeat',
    cron: pattern,
    async run() {
      const memory = process.memoryUsage();
      const facts = {
        replica,
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        // beside RSS, to tell a growing heap (a holder to find) from native growth (allocator, buffers)
        heapTotalBytes: memory.heapTotal,
        externalBytes: memory.external,
        arrayBuffersBytes: memory.arrayBuffers,
        eventLoopDelayP99Ms: ms(delay.percentile(99)),
        eventLoopDelayMaxMs: ms(delay.max),
      };
      delay.reset();
      p99.set(facts.eventLoopDelayP99Ms / 1000);
      beat.set(Date.now() / 1000);
      log.info(facts, 'heartbeat');
    },
    stop: () => delay.disable(),
  };
}
