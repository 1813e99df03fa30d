/**
 * A real worker process (runWorker, real BullMQ, Postgres, Redis) whose jobs fail with secrets in their errors, for
 * the tests that read back what reached Redis and the log. `leak` throws an error quoting a proxy URL with a
 * password and a token in its query; `reject` leaves a promise rejected with no handler; `throw` throws from a
 * timer, outside any job. Usage: node test/support/failing-worker.ts   (env: DATABASE_URL, REDIS_URL,
 * ANTHROPIC_ADMIN_KEY, KW_PREFIX, KW_SECRET)
 */
import { z } from 'zod';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/log.ts';
import { defineJob } from '../../src/queue/define.ts';
import { runWorker } from '../../src/worker.ts';

const secret = process.env.KW_SECRET ?? 'CANARY-unset';
const proxyUrl = `http://kw:${secret}@proxy.example:3128/v1/organizations?limit=20&token=${secret}`;

const leak = defineJob({
  name: 'leak',
  queue: 'maintenance',
  schedule: null,
  attempts: 1,
  payload: z.object({}),
  async handler() {
    throw new Error(`request to ${proxyUrl} failed: the proxy answered 407`);
  },
});

const reject = defineJob({
  name: 'reject',
  queue: 'maintenance',
  schedule: null,
  attempts: 1,
  payload: z.object({}),
  async handler() {
    void Promise.reject(new Error(`background refresh of ${proxyUrl} failed`));
  },
});

const throwLater = defineJob({
  name: 'throw',
  queue: 'maintenance',
  schedule: null,
  attempts: 1,
  payload: z.object({}),
  async handler() {
    setTimeout(() => {
      throw new Error(`timer callback could not reach ${proxyUrl}`);
    }, 10);
  },
});

const config = loadConfig();
const log = createLogger({ level: 'info', pretty: false });
await runWorker({
  config,
  jobs: [leak, reject, throwLater],
  log,
  prefix: process.env.KW_PREFIX ?? 'kwtest',
  shutdownDeadlineMs: 5000,
  watchdogCron: '* * * * * *',
  heartbeatCron: '0 * * * * *',
  httpPort: null,
});
