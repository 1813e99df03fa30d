import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { jobs } from '../../jobs/index.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import type { Clock } from '../../src/clock.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import type { JobContext } from '../../src/context.ts';
import type { Db } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { createLogger } from '../../src/log.ts';
import type { Notifier } from '../../src/notify/notifier.ts';
import { closeQueues, createQueues } from '../../src/queue/queues.ts';
import { buildRegistry } from '../../src/queue/registry.ts';
import { enqueuer } from '../../src/queue/runner.ts';
import { redisUrl, uniquePrefix } from './db.ts';

/** A log whose lines the test can read (e.g. to prove a secret never reaches it). */
export function captureLog(level = 'debug') {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { log: createLogger({ level, destination: stream }), lines };
}

/** What the usage shells take (`pollUsage`, `applyUsageRetention`): the test's database, a client and a clock. */
export function usageContext(db: Db, admin: AdminClient, clock: Clock) {
  return { repos: createRepos(db), admin, clock };
}

/**
 * The Context a handler gets, built on the test's real Postgres and Redis, the emulator over HTTP as `admin`, and
 * a clock the test controls; `config` defaults to examples/keywarden.yaml. `ctx.enqueue` queues into the shipped
 * registry's queues under a prefix of this context's own (`queues`, on `redis`), where no worker takes them.
 */
export function testJobContext(opts: {
  db: Db;
  emulatorUrl: string;
  adminKey: string;
  clock: Clock;
  config?: Config;
  notifier?: Notifier;
}) {
  const { log, lines } = captureLog();
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const config = opts.config ?? loadConfig({ env: { KEYWARDEN_CONFIG: 'examples/keywarden.yaml' } });
  const queues = createQueues(redis, uniquePrefix());
  const ctx: JobContext = {
    config,
    repos: createRepos(opts.db),
    admin: new AdminClient({ baseUrl: opts.emulatorUrl, adminKey: new Secret(opts.adminKey), log, clock: opts.clock }),
    notifier: opts.notifier ?? { slack: null, email: null, close: async () => {} },
    clock: opts.clock,
    log,
    enqueue: enqueuer(buildRegistry(jobs, config.policy), queues),
    signal: new AbortController().signal,
    job: { id: 'test', name: 'test', attempt: 1 },
  };
  return {
    ctx,
    lines,
    redis,
    queues,
    close: async () => {
      await closeQueues(queues);
      await redis.quit();
    },
  };
}
