import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { picoToNumberUsd, sumPico } from '../../src/money.ts';
import { DAY_MS } from '../../src/time.ts';
import { createTestDatabase, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { drillWorkerEnv } from '../support/kill-drill.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * Issue #15 item 5 with the real worker: an organization already at 85% of a limit when keywarden starts is told
 * within 3 minutes of the start, by the check that follows the first usage poll. The limit is the usage tier's cap,
 * read from the Spend Limits API (no `spend.limits` in the policy file), and the quarter-hour projection is never
 * scheduled here, so only the check after the poll can be the one that tells.
 */

let t: TestDatabase;
let emulator: Emulator;
let slack: SlackServer;
let smtp: SmtpCapture;
let dir: string;
let worker: WorkerProcess | null = null;

const NEVER = '0 0 1 1 *';

beforeAll(async () => {
  t = await createTestDatabase();
  emulator = await startEmulator({ scenario: loadScenario('quiet'), freshnessDelayMinutes: 0 });
  slack = await startSlackServer();
  smtp = await startSmtpCapture();
  dir = mkdtempSync(join(tmpdir(), 'kw-spend-at-start-'));
});
afterAll(async () => {
  await worker?.kill9();
  await slack?.close();
  await smtp?.close();
  await emulator?.close();
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The organization's priced usage this UTC month so far, from the emulator's own truth. */
function monthToDateUsd(): number {
  const now = Date.now();
  const first = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
  const workspaces = [null, ...emulator.state.workspaces.map((w) => w.id)];
  const days: bigint[] = [];
  for (let day = first; day <= now; day += DAY_MS) {
    for (const w of workspaces) days.push(emulator.costPicoFor(w, new Date(day)));
  }
  return picoToNumberUsd(sumPico(days));
}

describe('spend alerts within minutes of a start', () => {
  it('a usage-tier cap already 85% spent when the worker starts is told within 3 minutes, without the schedule', async () => {
    const spent = monthToDateUsd();
    expect(spent).toBeGreaterThan(1);
    // the cap the organization is at 85% of (the month's usage keeps coming during the test: it stays under 100%)
    emulator.state.spendLimits.apply(
      { usage_tier: { amount_usd: Math.round((spent / 0.85) * 100) / 100 }, set: [], delete: [] },
      Date.now(),
    );

    const policy = {
      routes: [{ match: { kind: 'spend.*' }, slack: ['#finance'], email: ['finance@acme.example'] }],
      schedules: {
        'deliver-notifications': '* * * * * *',
        'project-spend': NEVER,
        'usage-retention': NEVER,
        'reconcile-costs': NEVER,
        'enforce-rotation': NEVER,
      },
    };
    worker = workerProcess({
      dir,
      prefix: uniquePrefix(),
      policy: JSON.stringify(policy, null, 2),
      env: { ...drillWorkerEnv({ t, emulator, slack, smtp }), LOG_LEVEL: 'info' },
    });
    const started = Date.now();
    await worker.start();

    const title = "The organization reached 80% of its usage tier's";
    const post = await waitUntil(
      'the usage-tier threshold in #finance',
      () =>
        slack.calls.find(
          (c) => c.method === 'chat.postMessage' && c.response?.ok && JSON.stringify(c.args).includes(title),
        ),
      180_000,
      500,
    );
    const toldAfterMs = Date.now() - started;
    expect(toldAfterMs).toBeLessThan(180_000);
    expect(JSON.stringify(post.args)).toContain('refuses every request of the organization');
    const email = await waitUntil('the same alert by email', () =>
      smtp.messages.find((m) => m.text.includes(title) && m.to.includes('finance@acme.example')),
    );
    expect(email.text).toContain('refuses every request of the organization');
    // the projection that ran was the check after the first poll: nothing scheduled it
    expect(worker.output()).toMatch(/"msg":"spend checked"/);
    expect(worker.output()).not.toMatch(/"msg":"spend projected"/);
  }, 240_000);
});
