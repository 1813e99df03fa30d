/**
 * A real worker process (runWorker, real BullMQ, Postgres, Redis) with two test jobs, for the e2e tests of the job
 * runtime: `tick` records each scheduled run in the test database; `long` runs for a long time, to be interrupted.
 * Usage: node test/support/test-worker.ts   (env: DATABASE_URL, REDIS_URL, ANTHROPIC_ADMIN_KEY, KW_PREFIX,
 * KW_TICK_CRON, KW_SHUTDOWN_MS, KW_LONG_HONOURS_SIGNAL)
 */
import { sql } from 'kysely';
import { z } from 'zod';
import { loadConfig } from '../../src/config/index.ts';
import { createDb } from '../../src/db/index.ts';
import { createLogger } from '../../src/log.ts';
import { defineJob } from '../../src/queue/define.ts';
import { runWorker } from '../../src/worker.ts';

const config = loadConfig();
// the test jobs record their runs in a table of the test's own: a pool of theirs, beside the Context's repositories
// (the shutdown's process.exit ends it)
const db = createDb(config.env.databaseUrl!, { max: 2 });

const tick = defineJob({
  name: 'tick',
  queue: 'maintenance',
  schedule: process.env.KW_TICK_CRON ?? null,
  payload: z.object({}),
  async handler(ctx) {
    await sql`INSERT INTO test_ticks (job_id, pid) VALUES (${ctx.job.id}, ${process.pid})`.execute(db);
  },
});

const long = defineJob({
  name: 'long',
  queue: 'analyze',
  schedule: null,
  payload: z.object({}),
  async handler(ctx) {
    await sql`INSERT INTO test_ticks (job_id, pid) VALUES ('long-started', ${process.pid})`.execute(db);
    const honours = process.env.KW_LONG_HONOURS_SIGNAL === '1';
    for (let i = 0; i < 600; i++) {
      if (honours && ctx.signal.aborted) {
        await sql`INSERT INTO test_ticks (job_id, pid) VALUES ('long-stopped', ${process.pid})`.execute(db);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  },
});

const log = createLogger({ level: 'info', pretty: false });
await runWorker({
  config,
  jobs: [tick, long],
  log,
  prefix: process.env.KW_PREFIX ?? 'kwtest',
  shutdownDeadlineMs: Number(process.env.KW_SHUTDOWN_MS ?? 5000),
  watchdogCron: '* * * * * *',
  heartbeatCron: '0 * * * * *',
  httpPort: null,
});
