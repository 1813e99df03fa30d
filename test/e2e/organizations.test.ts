import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/index.ts';
import { WATERMARKS, watermarksRepo } from '../../src/db/repos/watermarks.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { MINUTE_MS } from '../../src/time.ts';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { drillPolicy } from '../support/kill-drill.ts';
import { spawnNode } from '../support/processes.ts';
import { ticksOf } from '../support/replica-logs.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';
import { storedUsage, truthUsage } from '../support/usage-truth.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * Several organizations from one deployment (#18): two organizations, each on an emulator of its own (their own
 * keys, their own traffic) named by `base_url`, and two worker replicas. Both organizations' usage is polled and
 * stored in its own schema; then organization A's admin key is revoked: keywarden.blind fires for A alone and names
 * it, while B's polls keep every tick (counted on B's emulator and in the replicas' logs, not by a stopwatch).
 */

const KEY_A = 'sk-ant-admin01-organization-a-drill-key-0123456789abcdAAAA';
const KEY_B = 'sk-ant-admin01-organization-b-drill-key-0123456789abcdBBBB';
// a poll here takes 1-3 s on a loaded machine: each tick is a poll of its own, none skipped behind the last
const POLL_EVERY_S = 5;
const USAGE_PATH = '/v1/organizations/usage_report/messages';

let t: TestDatabase;
let emulatorA: Emulator;
let emulatorB: Emulator;
let slack: SlackServer;
let smtp: SmtpCapture;
let dir: string;
let replicas: WorkerProcess[] = [];
const pools: Db[] = [];
const schemaDb = (schema: string) => {
  const db = createDb(t.url, { max: 2, schema });
  pools.push(db);
  return db;
};

beforeAll(async () => {
  t = await createTestDatabase();
  emulatorA = await startEmulator({ scenario: loadScenario('quiet'), adminKeys: [KEY_A], freshnessDelayMinutes: 0 });
  // the same calm organization on another seed: other key ids, other traffic
  emulatorB = await startEmulator({
    scenario: { ...loadScenario('quiet'), seed: 8 },
    adminKeys: [KEY_B],
    freshnessDelayMinutes: 0,
  });
  slack = await startSlackServer();
  smtp = await startSmtpCapture();
  dir = mkdtempSync(join(tmpdir(), 'kw-orgs-'));
  const policy = JSON.parse(drillPolicy({ pollUsage: `*/${POLL_EVERY_S} * * * * *` }).yaml);
  policy.routes.unshift({ match: { kind: 'keywarden.*' }, slack: ['#ops'], email: ['ops@acme.example'] });
  policy.organizations = [
    { id: 'orga', name: 'Org A', admin_key_env: 'ORG_A_ADMIN_KEY', base_url: emulatorA.url },
    { id: 'orgb', name: 'Org B', timezone: 'Asia/Tokyo', admin_key_env: 'ORG_B_ADMIN_KEY', base_url: emulatorB.url },
  ];
  const yaml = JSON.stringify(policy, null, 2);
  const env = {
    REDIS_URL: redisUrl(),
    ORG_A_ADMIN_KEY: KEY_A,
    ORG_B_ADMIN_KEY: KEY_B,
    SLACK_BOT_TOKEN: slack.token,
    SLACK_API_URL: slack.url,
    SMTP_URL: smtp.url,
    EMAIL_FROM: 'keywarden@acme.example',
    LOG_LEVEL: 'info',
  };
  const prefix = uniquePrefix();
  replicas = ['a', 'b'].map(() =>
    // as deployed: the worker a member of keywarden_runtime, migrate as the tables' owner
    workerProcess({ dir, prefix, policy: yaml, env: { ...env, DATABASE_URL: t.runtimeUrl } }),
  );
  // `keywarden migrate` creates both schemas (the worker process above wrote the policy file)
  const migrate = spawnNode('src/cli/index.ts', ['migrate'], {
    ...env,
    DATABASE_URL: t.url,
    KEYWARDEN_CONFIG: join(dir, 'keywarden.yaml'),
  });
  const done = await migrate.exited;
  expect(migrate.output()).toMatch(/^orga \(schema kw_orga\): applied: 001_initial/m);
  expect(migrate.output()).toMatch(/^orgb \(schema kw_orgb\): applied: 001_initial/m);
  expect(done.code).toBe(0);
  // as if each had polled a few minutes ago: no first-run backfill of the month
  const minute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
  for (const schema of ['kw_orga', 'kw_orgb']) {
    await schemaDb(schema)
      .insertInto('watermarks')
      .values({ name: WATERMARKS.usage, position: new Date(minute - 3 * MINUTE_MS) })
      .execute();
  }
});
afterAll(async () => {
  for (const r of replicas) await r.kill9();
  await Promise.all(pools.map((p) => p.destroy()));
  await Promise.allSettled([slack?.close(), smtp?.close(), emulatorA?.close(), emulatorB?.close()]);
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** First pages of the usage report: one per poll run (a later page carries `page=`). */
const pollsOf = (emulator: Emulator, since: number, until = Number.POSITIVE_INFINITY) =>
  emulator.requestLog.filter(
    (r) =>
      r.path.startsWith(USAGE_PATH) &&
      !/[?&]page=/.test(r.path) &&
      r.time.getTime() >= since &&
      r.time.getTime() <= until,
  );

describe('two organizations, two replicas', () => {
  it('poll both into their own schemas; a revoked key blinds that organization alone while the other polls on time', async () => {
    await Promise.all(replicas.map((r) => r.start()));
    const [dbA, dbB] = [schemaDb('kw_orga'), schemaDb('kw_orgb')];
    const start = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 3 * MINUTE_MS);
    // a poll of each completed: its watermark moved past where it was set
    await waitUntil(
      'both organizations polled',
      async () => {
        const marks = await Promise.all([dbA, dbB].map((db) => watermarksRepo(db).read(WATERMARKS.usage)));
        return marks.every((m) => m !== null && m.getTime() > start.getTime());
      },
      120_000,
    );

    // ── A's key revoked ──
    const revokedAt = Date.now();
    emulatorA.setAdminKeys([]);
    const blindPosts = () =>
      slack.calls.filter((c) => c.method === 'chat.postMessage' && /keywarden is blind/.test(String(c.args.text)));
    const blindA = await waitUntil('the blind alert for A in Slack', () => blindPosts()[0], 90_000);
    expect(String(blindA.args.text)).toMatch(/keywarden is blind to Org A/);
    // B keeps polling meanwhile: five more of its runs completed after the revocation
    const runsOfB = () =>
      replicas
        .flatMap((r) => ticksOf(r.output(), 'poll-usage', 'usage polled', 'orgb'))
        .filter((at) => at >= revokedAt);
    await waitUntil('five of B’s polls completed after the revocation', () => runsOfB().length >= 5, 200_000);
    const stoppedAt = Date.now();
    await Promise.all(replicas.map((r) => r.stop()));

    // ── blind for A only, naming A ──
    expect(blindPosts().map((c) => String(c.args.text).includes('Org A'))).toEqual(blindPosts().map(() => true));
    expect(blindPosts().some((c) => String(c.args.text).includes('Org B'))).toBe(false);
    const blindMail = smtp.messages.filter((m) => /keywarden is blind/.test(m.subject));
    // every message names its organization in front of its title
    expect(blindMail.map((m) => m.subject)).toEqual([expect.stringMatching(/\[Org A\] keywarden is blind to Org A/)]);
    expect(blindMail[0]!.text).not.toContain(KEY_A);
    const blindRows = async (db: Db) =>
      (await db.selectFrom('alerts').select('state').where('kind', '=', 'keywarden.blind').execute()).map(
        (a) => a.state,
      );
    expect(await blindRows(dbA)).toEqual(['firing']);
    expect(await blindRows(dbB)).toEqual([]);

    // ── B on time: its ticks since the revocation each once across the replicas, each a completed poll that B's
    // emulator saw. A few ticks may be missing: BullMQ makes a scheduler's next job when the current one starts, so a
    // job started past its successor's time (on a loaded machine) drops that one; A's refusals holding B back would
    // drop most. ──
    const outputs = replicas.map((r) => r.output());
    const ticksB = outputs
      .flatMap((out) => ticksOf(out, 'poll-usage', undefined, 'orgb'))
      .filter((at) => at >= revokedAt)
      .sort((x, y) => x - y);
    expect(ticksB.filter((at, i) => ticksB[i - 1] === at)).toEqual([]);
    const scheduled = Math.floor(stoppedAt / (POLL_EVERY_S * 1000)) - Math.ceil(revokedAt / (POLL_EVERY_S * 1000)) + 1;
    expect(ticksB.length).toBeGreaterThanOrEqual(Math.floor(scheduled * 0.8) - 1); // -1: the one in flight at the stop
    const afterRevocation = outputs
      .flatMap((out) => ticksOf(out, 'poll-usage', 'usage polled', 'orgb'))
      .filter((at) => at >= revokedAt);
    expect(afterRevocation.length).toBeGreaterThanOrEqual(5);
    // before the stop: a chained job enqueued as the replicas close their Redis connection fails then, and says so
    const failedB = outputs
      .flatMap((out) => out.split('\n'))
      .filter((l) => l.includes('"org":"orgb"') && l.includes('"msg":"job failed"'))
      .filter((l) => (JSON.parse(l) as { time: number }).time < stoppedAt);
    expect(failedB).toEqual([]);
    // and B's emulator saw them, counted on its request log: a poll per tick run, every one answered
    const pollsB = pollsOf(emulatorB, revokedAt, stoppedAt);
    expect(pollsB.length).toBeGreaterThanOrEqual(afterRevocation.length - 1); // the first may have begun before
    expect(pollsB.filter((r) => r.status !== 200 && r.status !== null)).toEqual([]);
    const perMinute = (pollsB.length / (stoppedAt - revokedAt)) * MINUTE_MS;
    console.info(
      `after A's revocation: ${pollsB.length} polls of B, ${afterRevocation.length} runs of ${scheduled} ticks scheduled (${perMinute.toFixed(1)}/min, schedule ${60 / POLL_EVERY_S}/min); ` +
        `${pollsOf(emulatorA, revokedAt, stoppedAt).length} refused polls of A; ticks per replica ${outputs.map((o) => ticksOf(o, 'poll-usage', 'usage polled', 'orgb').length).join(' / ')}`,
    );

    // ── each organization's usage in its own schema, equal to its own emulator's ──
    for (const [db, emulator, other] of [
      [dbA, emulatorA, emulatorB],
      [dbB, emulatorB, emulatorA],
    ] as const) {
      const to = (await watermarksRepo(db).read(WATERMARKS.usage))!;
      expect(to.getTime()).toBeGreaterThan(start.getTime());
      const stored = await storedUsage(db, '1m', start, to);
      expect(stored.size).toBeGreaterThan(0);
      expect(stored).toEqual(truthUsage(emulator, '1m', start, to));
      const otherKeys = new Set(other.state.keys.map((k) => k.id));
      const strays = await db.selectFrom('usage_buckets').select('api_key_id').distinct().execute();
      expect(strays.filter((r) => r.api_key_id !== null && otherKeys.has(r.api_key_id))).toEqual([]);
    }
  }, 400_000);
});
