import { startSlackActions } from './actions/transports.ts';
import { buildApp, requireEnv } from './app.ts';
import type { Clock } from './clock.ts';
import type { Config } from './config/index.ts';
import { canAlterAuditLog, createDb, schemaProblem } from './db/index.ts';
import { describeFailingJobs, watchJobs } from './health/jobs.ts';
import { createMetrics } from './http/metrics.ts';
import { startHealthServer } from './http/server.ts';
import { statusLoader } from './http/status/load.ts';
import type { Logger } from './log.ts';
import { checkRedisSettings, openRedis } from './queue/connection.ts';
import { exitOnCrash } from './queue/crash.ts';
import type { JobDefinition } from './queue/define.ts';
import { heartbeat, replicaName, startDuties } from './queue/duties.ts';
import { closeQueues, createQueues, type QueueName } from './queue/queues.ts';
import { buildRegistry } from './queue/registry.ts';
import { deliverSoon, enqueuer, queueConcurrency, startWorkers } from './queue/runner.ts';
import { checkSchedules, desiredSchedules, reconcileSchedules } from './queue/schedules.ts';
import { installShutdown } from './queue/shutdown.ts';

interface WorkerOptions {
  config: Config;
  jobs: readonly JobDefinition[];
  log: Logger;
  clock?: Clock;
  prefix: string;
  shutdownDeadlineMs: number;
  /** node-cron patterns of this replica's own duties: the scheduler watchdog and the heartbeat. */
  watchdogCron: string;
  heartbeatCron: string;
  /** Jobs run at once per queue, where the operator sets them (`--concurrency`); the rest are queueConcurrency's. */
  concurrency?: Partial<Record<QueueName, number>>;
  /** null: no health server (tests that run several workers on one machine). */
  httpPort: number | null;
}

/** `keywarden worker`: runs until SIGTERM/SIGINT. Throws (before starting anything) on a bad registry or schema. */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const { config, log } = options;
  exitOnCrash(log);
  const registry = buildRegistry(options.jobs, config.policy);
  requireEnv(config, ['database', 'redis', 'admin'], 'worker');
  // the worker's own connection: its queues, its workers, the schedulers and /readyz
  const redis = await openRedis(config.env.redisUrl!, { prefix: options.prefix, log });
  const queues = createQueues(redis, options.prefix);
  const app = buildApp(config, {
    log,
    clock: options.clock,
    command: 'worker',
    enqueue: (organization) => enqueuer(registry, queues, organization),
  });
  const { ctx } = app;
  const orgs = [...app.orgs.values()];
  const closeRedis = async () => {
    await closeQueues(queues);
    redis.disconnect();
  };

  for (const { org, db } of orgs) {
    const schema = await schemaProblem(db);
    if (schema === null) continue;
    await app.close();
    await closeRedis();
    throw new Error(orgs.length > 1 ? `organization ${org.id} (schema ${org.schema}): ${schema}` : schema);
  }
  await checkRedisSettings(redis, log);

  if (await canAlterAuditLog(app.db)) {
    log.warn(
      "DATABASE_URL connects as a superuser or as the owner of audit_log: this role could disable the audit log's " +
        'append-only trigger or drop the table. Connect the worker as a member of keywarden_runtime and keep the ' +
        'owner for `keywarden migrate` (MIGRATION_DATABASE_URL; README "Database roles")',
    );
  }

  // one scheduler per job and organization: each organization's ticks are jobs of their own
  const specs = orgs.flatMap(({ org }) => desiredSchedules(registry, org.policy, org.id));
  await reconcileSchedules(queues, redis, options.prefix, specs, log);

  const metrics = createMetrics(
    orgs.map(({ org, ctx: octx }) => ({ id: org.id, repos: octx.repos, admin: octx.admin })),
  );
  const watched = new Map(
    orgs.map(({ org, ctx: octx }) => [
      org.id,
      {
        ctx: octx,
        jobWatch: watchJobs(
          octx,
          [...registry.keys()],
          specs.filter((s) => s.organization === org.id).map((s) => ({ job: s.job, pattern: s.pattern, tz: s.tz })),
          () => deliverSoon(octx, registry),
        ),
      },
    ]),
  );
  const watches = [...watched.values()].map((w) => w.jobWatch);
  const jobWatch = {
    check: async () => (await Promise.all(watches.map((w) => w.check()))).flat(),
    /** Each failing job, named with its organization where there are several. */
    get failing() {
      return [...watched].flatMap(([id, w]) =>
        w.jobWatch.failing.map((f) => (orgs.length > 1 ? { ...f, job: `${f.job} (organization ${id})` } : f)),
      );
    },
  };
  const replica = replicaName();
  const concurrency = queueConcurrency(registry, orgs.length, options.concurrency);
  // one connection per run that may not overlap itself, at most one per concurrent job
  const runLocks = createDb(config.env.databaseUrl!, {
    max: Object.values(concurrency).reduce((sum, n) => sum + n, 0),
    applicationName: 'keywarden-run-locks',
  });
  const pool = startWorkers(ctx, registry, {
    connection: redis,
    prefix: options.prefix,
    queues,
    metrics,
    concurrency,
    organizations: watched,
    runLocks,
    name: replica,
  });

  // failures recorded by an earlier process show in /readyz from the start
  jobWatch.check().catch((err) => log.warn({ err }, "could not check the jobs' outcomes; will try again"));
  const beat = heartbeat(options.heartbeatCron, metrics, log, replica);
  const duties = startDuties(
    [
      {
        name: 'schedule-watchdog',
        cron: options.watchdogCron,
        async run() {
          await Promise.all([
            checkSchedules(queues, redis, options.prefix, specs, log).catch((err) =>
              log.warn({ err }, 'schedule watchdog could not check the schedulers (Redis down?); will try again'),
            ),
            // a job that stopped running at all records no outcome: only this check notices it
            jobWatch.check().catch((err) => log.warn({ err }, "could not check the jobs' outcomes; will try again")),
          ]);
        },
      },
      beat,
    ],
    log,
  );

  const slackActions = startSlackActions(
    new Map(orgs.map(({ org, ctx: octx }) => [org.id, octx])),
    redis,
    options.prefix,
    log,
  );
  const health =
    options.httpPort === null
      ? null
      : await startHealthServer({
          port: options.httpPort,
          host: config.env.httpHost,
          db: app.db,
          redis,
          metrics,
          log,
          failingJobs: () => describeFailingJobs(jobWatch.failing),
          status: config.env.uiToken
            ? {
                token: config.env.uiToken,
                load: statusLoader(
                  new Map([...watched].map(([id, w]) => [id, { ctx: w.ctx, failing: () => w.jobWatch.failing }])),
                ),
              }
            : undefined,
          ...(slackActions.endpoint ? { slackActions: slackActions.endpoint } : {}),
        });

  log.info(
    {
      jobs: [...registry.keys()],
      organizations: orgs.map(({ org }) => `${org.id} (${org.schema})`),
      schedules: specs.map((s) => `${s.id} ${s.pattern}`),
      prefix: options.prefix,
      replica,
      httpPort: health?.port ?? null,
      httpHost: health ? config.env.httpHost : null,
    },
    'worker started',
  );

  installShutdown({
    log,
    deadlineMs: options.shutdownDeadlineMs,
    onSignal: () => {
      beat.stop();
      pool.abort();
    },
    steps: [
      { name: 'replica duties', run: () => duties.stop() },
      { name: 'workers', run: (force) => pool.close(force) },
      { name: 'health server', run: async () => health?.close() },
      { name: 'slack socket mode', run: () => slackActions.close() },
      { name: 'queues, redis', run: closeRedis },
      { name: 'postgres, notifier', run: () => app.close() },
      // a job abandoned at the deadline still holds its lock's connection, which ending the pool would wait for
      { name: 'run locks', run: async (force) => (force ? undefined : runLocks.destroy()) },
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
