import type { JobDefinition } from '../../jobs/define.ts';
import { buildApp } from '../app.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/index.ts';
import { createMigrator } from '../db/index.ts';
import { createMetrics } from '../http/metrics.ts';
import { startHealthServer } from '../http/server.ts';
import type { Logger } from '../log.ts';
import { closeQueues, createQueues } from './queues.ts';
import { buildRegistry } from './registry.ts';
import { startWorkers } from './runner.ts';
import { checkSchedules, desiredSchedules, reconcileSchedules } from './schedules.ts';
import { installShutdown } from './shutdown.ts';

export interface WorkerOptions {
  config: Config;
  jobs: readonly JobDefinition[];
  log: Logger;
  clock?: Clock;
  prefix: string;
  shutdownDeadlineMs: number;
  watchdogIntervalMs: number;
  /** null: no health server (tests that run several workers on one machine). */
  httpPort: number | null;
}

/** `keywarden worker`: runs until SIGTERM/SIGINT. Throws (before starting anything) on a bad registry or schema. */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const { config, log } = options;
  const registry = buildRegistry(options.jobs, config.policy);
  const app = await buildApp(config, { log, clock: options.clock, command: 'worker' });
  const { ctx } = app;

  const pending = (await createMigrator(ctx.db).getMigrations()).filter((m) => !m.executedAt);
  if (pending.length > 0) {
    await app.close();
    throw new Error(
      `the database schema is behind (${pending.map((m) => m.name).join(', ')} not applied): run \`keywarden migrate\` first`,
    );
  }

  const queues = createQueues(ctx.redis, options.prefix);
  const specs = desiredSchedules(registry, config.policy);
  await reconcileSchedules(queues, ctx.redis, options.prefix, specs, log);

  const metrics = createMetrics(ctx.db, ctx.admin);
  const pool = startWorkers(ctx, registry, { connection: ctx.redis, prefix: options.prefix, queues, metrics });

  const watchdog = setInterval(() => {
    checkSchedules(queues, ctx.redis, options.prefix, specs, log).catch((err) =>
      log.warn({ err }, 'schedule watchdog could not check the schedulers (Redis down?); will try again'),
    );
  }, options.watchdogIntervalMs);

  const health =
    options.httpPort === null
      ? null
      : await startHealthServer({ port: options.httpPort, db: ctx.db, redis: ctx.redis, metrics, log });

  log.info(
    {
      jobs: [...registry.keys()],
      schedules: specs.map((s) => `${s.id} ${s.pattern}`),
      prefix: options.prefix,
      httpPort: health?.port ?? null,
    },
    'worker started',
  );

  installShutdown({
    log,
    deadlineMs: options.shutdownDeadlineMs,
    onSignal: () => {
      clearInterval(watchdog);
      pool.abort();
    },
    steps: [
      { name: 'workers', run: (force) => pool.close(force) },
      { name: 'health server', run: async () => health?.close() },
      { name: 'queues', run: () => closeQueues(queues) },
      { name: 'redis, postgres, notifier', run: () => app.close() },
      {
        name: 'log',
        run: async () => {
          log.info('stopped');
          log.flush();
        },
      },
    ],
  });
}
