import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { financeDigestJob } from '../../jobs/finance-digest.ts';
import { projectSpendJob } from '../../jobs/project-spend.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { fixedClock } from '../../src/clock.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { createDb, type Db } from '../../src/db/index.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { type Pico, sumPico, usdToPico } from '../../src/money.ts';
import { FORECAST_RESOLVE_RATIO } from '../../src/spend/core/alerts.ts';
import type { spendReport } from '../../src/spend/report.ts';
import { DAY_MS } from '../../src/time.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { pollUsage } from '../../src/usage/ingest.ts';
import { testJobContext, usageContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, useDemoOrg } from '../support/demo-org.ts';
import { runNode } from '../support/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'kw-spend-'));
let policies = 0;

function policy(spend: string): Config {
  const path = join(dir, `policy-${policies++}.yaml`);
  writeFileSync(
    path,
    `spend: ${spend}
routes:
  - { match: { kind: "spend.*" }, slack: ["#finance"], email: ["finance@acme.example"] }
`,
  );
  return loadConfig({ env: { KEYWARDEN_CONFIG: path } });
}

/** A hand-made organization: workspaces "Research" (key "Batch") and "Product" (key "Backend"). */
async function seedInventory(db: Db) {
  // usage is written straight into usage_buckets here: mark it complete (a poll watermark beyond every test's clock)
  await db.insertInto('watermarks').values({ name: WATERMARKS.usage, position: '2100-01-01T00:00:00Z' }).execute();
  await db
    .insertInto('workspaces')
    .values([
      { id: 'wrkspc_research', name: 'Research', created_at: '2025-01-01T00:00:00Z' },
      { id: 'wrkspc_product', name: 'Product', created_at: '2025-01-01T00:00:00Z' },
    ])
    .execute();
  await db
    .insertInto('api_keys')
    .values([
      {
        id: 'apikey_batch',
        name: 'Batch',
        status: 'active',
        workspace_id: 'wrkspc_research',
        created_at: '2025-01-01',
      },
      {
        id: 'apikey_backend',
        name: 'Backend',
        status: 'active',
        workspace_id: 'wrkspc_product',
        created_at: '2025-01-01',
      },
      { id: 'apikey_agent', name: 'Agent', status: 'active', workspace_id: 'wrkspc_product', created_at: '2025-01-01' },
    ])
    .execute();
}

const WORKSPACE_OF: Record<string, string> = {
  apikey_batch: 'wrkspc_research',
  apikey_backend: 'wrkspc_product',
  apikey_agent: 'wrkspc_product',
};

/** One usage row of `usd` for a key, in the minute (or hour, `width: '1h'`) starting at `at`. */
async function spend(
  db: Db,
  keyId: string,
  at: string,
  usd: string,
  width: '1m' | '1h' = '1m',
  model = 'claude-sonnet-4-5',
) {
  await db
    .insertInto('usage_buckets')
    .values({
      bucket_width: width,
      starting_at: at,
      api_key_id: keyId,
      workspace_id: WORKSPACE_OF[keyId]!,
      model,
      service_tier: 'standard',
      context_window: '0-200k',
      cost_usd: usd,
    })
    .execute();
}

/** A daily series as one hourly row at noon UTC per day, from `from` to `until` (both included). */
async function dailySpend(db: Db, keyId: string, from: string, until: string, usd: (date: string) => string) {
  for (let t = Date.parse(`${from}T12:00:00Z`); t <= Date.parse(`${until}T12:00:00Z`); t += DAY_MS) {
    const at = new Date(t).toISOString();
    await spend(db, keyId, at, usd(at.slice(0, 10)), '1h');
  }
}

/** Outbox rows of one kind, one entry per (alert fingerprint, event, target) they speak for. */
async function deliveries(db: Db, kind: string) {
  const rows = await db.selectFrom('notifications').select(['event', 'target', 'payload']).execute();
  return rows.flatMap((r) => {
    const payload = r.payload as unknown as { notification: { kind: string }; fingerprints: string[] };
    if (payload.notification.kind !== kind) return [];
    return payload.fingerprints.map((fp) => `${r.event} ${fp.split('|').slice(1).join('|')} → ${r.target}`);
  });
}

/** Two workers on one database, each with its own pool and Redis connection, running the job at the same moment. */
function twoReplicas(t: TestDatabase, config: Config, clock: ReturnType<typeof fixedClock>) {
  const second = createDb(t.url, { max: 5 });
  const replicas = [t.db, second].map((db) =>
    testJobContext({ db, emulatorUrl: 'http://127.0.0.1:9', adminKey: DEMO_ADMIN_KEY, clock, config }),
  );
  return {
    run: async (times = 2) => {
      for (let i = 0; i < times; i++) await Promise.all(replicas.map((r) => projectSpendJob.handler(r.ctx, {})));
    },
    close: async () => {
      for (const r of replicas) await r.close();
      await second.destroy();
    },
  };
}

describe('project-spend: spend.threshold', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    await seedInventory(t.db);
    // Batch grows from $10 to $20 a day in November; Backend spends a steady $30 a day.
    await dailySpend(t.db, 'apikey_batch', '2026-10-01', '2026-11-09', (d) => (d < '2026-11-01' ? '10' : '20'));
    await dailySpend(t.db, 'apikey_backend', '2026-10-01', '2026-11-09', () => '30');
  });
  afterAll(async () => t.drop());

  it('fires each threshold once per month and scope, across repeated runs of two concurrent replicas', async () => {
    const clock = fixedClock(new Date('2026-11-10T12:00:00Z'));
    const config = policy(
      '{ thresholds: [0.5, 0.8, 1.0], forecast: false, limits: { organization: 5000, workspaces: { Research: 400 }, keys: { Batch: 300 } } }',
    );
    const workers = twoReplicas(t, config, clock);
    const fired = async () => (await deliveries(t.db, 'spend.threshold')).filter((d) => d.startsWith('firing'));
    const targets = (what: string) => [`firing ${what} → #finance`, `firing ${what} → finance@acme.example`];
    try {
      // Nov 1–9: Batch (and so Research) $180: 60% of Batch's $300, 45% of Research's $400
      await workers.run();
      expect(await fired()).toEqual(targets('key|apikey_batch|2026-11@0.5'));

      // today's batch jobs: $250, then $350, then $450
      await spend(t.db, 'apikey_batch', '2026-11-10T09:00:00Z', '70');
      await workers.run();
      await spend(t.db, 'apikey_batch', '2026-11-10T10:00:00Z', '100');
      await workers.run();
      await spend(t.db, 'apikey_batch', '2026-11-10T11:00:00Z', '100');
      await workers.run();
      const november = [
        'key|apikey_batch|2026-11@0.5',
        'key|apikey_batch|2026-11@0.8', // $250
        'workspace|wrkspc_research|2026-11@0.5',
        'key|apikey_batch|2026-11@1', // $350: the 100% alert silences 50% and 80%
        'workspace|wrkspc_research|2026-11@0.8',
        'workspace|wrkspc_research|2026-11@1', // $450
      ];
      expect((await fired()).sort()).toEqual(november.flatMap(targets).sort());

      // a usage correction takes the month to date back under 80% and 100%, then restores it: nothing is said again
      const corrected = await t.db
        .deleteFrom('usage_buckets')
        .where('starting_at', '>=', new Date('2026-11-10T10:00:00Z'))
        .returningAll()
        .execute();
      await workers.run();
      await t.db.insertInto('usage_buckets').values(corrected).execute();
      await workers.run();
      expect((await fired()).sort()).toEqual(november.flatMap(targets).sort());

      // December: November's alerts end silently; December's thresholds are new facts
      clock.set(new Date('2026-12-01T00:30:00Z'));
      await workers.run();
      expect((await fired()).sort()).toEqual(november.flatMap(targets).sort());
      await spend(t.db, 'apikey_batch', '2026-12-01T00:10:00Z', '400.00');
      clock.set(new Date('2026-12-01T01:30:00Z'));
      await workers.run();
      // exactly $400.00 of Research's $400 is 100%
      const december = ['key|apikey_batch|2026-12@1', 'workspace|wrkspc_research|2026-12@1'];
      expect((await fired()).sort()).toEqual([...november, ...december].flatMap(targets).sort());
      expect((await deliveries(t.db, 'spend.threshold')).filter((d) => !d.startsWith('firing'))).toEqual([]);

      const alerts = await t.db.selectFrom('alerts').select(['period', 'scope_id', 'state']).execute();
      expect(alerts.filter((a) => a.state === 'firing' && a.period.startsWith('2026-11'))).toEqual([]);
      expect(new Set(alerts.map((a) => `${a.scope_id}|${a.period}`)).size).toBe(alerts.length);
    } finally {
      await workers.close();
    }
  });

  it('names the month to date, the limit, the projection and the top drivers in every message', async () => {
    const rows = await t.db.selectFrom('notifications').select('payload').where('target', '=', '#finance').execute();
    const research = rows
      .map(
        (r) =>
          r.payload as unknown as {
            notification: {
              title: string;
              fields: { label: string; value: string }[];
              items?: { title: string; fields: { label: string; value: string }[] }[];
            };
          },
      )
      .flatMap((p) => (p.notification.items ?? [p.notification]).map((i) => ({ title: i.title, fields: i.fields })))
      .find((m) => m.title === 'Workspace "Research" reached 50% of its $400.00 limit for November 2026');
    expect(research).toBeDefined();
    const field = (label: string) => research!.fields.find((f) => f.label === label)?.value;
    expect(field('Month to date')).toBe('$250.00 of $400.00 (62.5%)');
    expect(field('Projected month end')).toMatch(/^\$[\d,.]+ likely, up to \$[\d,.]+ \(p90\)$/);
    expect(field('Limit reached')).toMatch(/^2026-11-\d\d \(likely\); 2026-11-\d\d at the earliest \(p90\)$/);
    expect(field('Top keys this month')).toBe('Batch $250.00 (100%)');
    expect(field('Top models this month')).toBe('claude-sonnet-4-5 $250.00 (100%)');
    // Nov 3–9 at $20 against Oct 27–Nov 2 (five days at $10, two at $20)
    expect(field('Fastest growing keys (last 7 days vs the 7 before)')).toBe('Batch +$50.00 (+56%)');
  });
});

describe('project-spend: spend.forecast', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    await seedInventory(t.db);
    await dailySpend(t.db, 'apikey_agent', '2026-09-01', '2026-11-14', () => '100');
  });
  afterAll(async () => t.drop());

  /** Today's spend so far (half the day has passed) is `usd`; runs both replicas and returns the stored p90. */
  async function runWithToday(usd: string, limit: number | null): Promise<Pico> {
    await t.db.deleteFrom('usage_buckets').where('starting_at', '>=', new Date('2026-11-15T00:00:00Z')).execute();
    await spend(t.db, 'apikey_agent', '2026-11-15T06:00:00Z', usd);
    const clock = fixedClock(new Date('2026-11-15T12:00:00Z'));
    const workers = twoReplicas(
      t,
      policy(`{ forecast: true, thresholds: [1.0], limits: { keys: { Agent: ${limit ?? 1_000_000} } } }`),
      clock,
    );
    try {
      await workers.run(1);
    } finally {
      await workers.close();
    }
    const row = await t.db
      .selectFrom('projections')
      .select('p90_usd')
      .where('scope_id', '=', 'apikey_agent')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    return usdToPico(row.p90_usd);
  }

  it('fires when p90 reaches the limit, holds while it wobbles just under, resolves below 95% without flapping', async () => {
    // calibrate: how far today's spend moves the key's p90
    const low = await runWithToday('50', null);
    const high = await runWithToday('250', null);
    expect(high).toBeGreaterThan(low);
    const limitUsd = Math.round((Number(low) / 1e12) * 1.02);
    const limit = usdToPico(String(limitUsd));
    // today's spend that puts p90 ~2% over the limit
    const over = 50 + (200 * (limitUsd * 1.02 - Number(low) / 1e12)) / (Number(high - low) / 1e12);

    const p90s: Pico[] = [];
    for (const today of ['50', over.toFixed(2), '50', over.toFixed(2), '50', over.toFixed(2), '50']) {
      p90s.push(await runWithToday(today, limitUsd));
    }
    // the premise: the projection really crossed the limit both ways, and stayed in the hysteresis band below it
    const band = (p: Pico) => p * 100n >= limit * BigInt(FORECAST_RESOLVE_RATIO * 100) && p < limit;
    expect(p90s.map((p) => (p >= limit ? 'over' : band(p) ? 'band' : 'under'))).toEqual([
      'band',
      'over',
      'band',
      'over',
      'band',
      'over',
      'band',
    ]);
    expect(await deliveries(t.db, 'spend.forecast')).toEqual([
      'firing key|apikey_agent|2026-11 → #finance',
      'firing key|apikey_agent|2026-11 → finance@acme.example',
    ]);

    // the limit is raised: p90 falls under 95% of it, and the alert resolves once
    await runWithToday('50', limitUsd * 1.1);
    await runWithToday('50', limitUsd * 1.1);
    expect((await deliveries(t.db, 'spend.forecast')).sort()).toEqual(
      [
        'firing key|apikey_agent|2026-11 → #finance',
        'firing key|apikey_agent|2026-11 → finance@acme.example',
        'resolved key|apikey_agent|2026-11 → #finance',
        'resolved key|apikey_agent|2026-11 → finance@acme.example',
      ].sort(),
    );
    const message = await t.db
      .selectFrom('notifications')
      .select('payload')
      .where('event', '=', 'firing')
      .where('target', '=', '#finance')
      .executeTakeFirstOrThrow();
    const text = JSON.stringify(message.payload);
    expect(text).toContain(
      `API key \\"Agent\\" is projected to exceed its $${limitUsd.toLocaleString('en-US')}.00 limit for November 2026`,
    );
    expect(text).toMatch(
      /Limit reached","value":"(2026-11-\d\d|not expected) \(likely\); 2026-11-\d\d at the earliest \(p90\)/,
    );
  });
});

describe('project-spend against the demo organization', () => {
  const org = useDemoOrg();

  it('stores a projection for the organization, each workspace and each key, and `keywarden spend` lists them', async () => {
    const env = testJobContext({
      db: org.t.db,
      emulatorUrl: org.emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock: org.clock,
      config: loadConfig({ env: { KEYWARDEN_CONFIG: 'examples/keywarden.yaml' } }),
    });
    try {
      await syncInventory.handler(env.ctx, {});
      await pollUsage(usageContext(org.t.db, env.ctx.admin, org.clock), {
        overlapMinutes: 15,
        freshnessMinutes: 1,
        firstPollHours: 48,
        backfillDaysBeforeMonth: 35,
        table: PRICE_TABLE,
      });
      await projectSpendJob.handler(env.ctx, {});
      const stored = await org.t.db.selectFrom('projections').selectAll().execute();

      // month to date to the picodollar: the organization's is the sum of November's usage rows
      const usage = await org.t.db
        .selectFrom('usage_buckets')
        .select('cost_usd')
        .where('starting_at', '>=', new Date('2026-11-01T00:00:00Z'))
        .execute();
      const orgRow = stored.find((s) => s.scope_type === 'organization')!;
      expect(usdToPico(orgRow.mtd_usd)).toBe(sumPico(usage.map((u) => usdToPico(u.cost_usd))));
      expect(orgRow.made_at).toEqual(org.clock.now());
      expect(orgRow.month).toBe('2026-11-01');
      expect(orgRow.method).toBe('weekday-level-trend');
      for (const s of stored) {
        const [mtd, p10, p50, p90] = [s.mtd_usd, s.p10_usd, s.p50_usd, s.p90_usd].map((v) => usdToPico(v));
        expect(mtd! <= p10! && p10! <= p50! && p50! <= p90!).toBe(true);
      }

      // the command, as a user runs it
      const cliEnv = { DATABASE_URL: org.t.url, KEYWARDEN_CONFIG: 'examples/keywarden.yaml' };
      const table = await runNode('src/cli/index.ts', ['spend'], cliEnv);
      expect(table.code).toBe(0);
      expect(table.output).toMatch(/^Spend for 2026-11, projected at 2026-11-16 10:00 UTC/);
      expect(table.output).toMatch(
        /\norganization +Organization +\$5,000\.00 +\$[\d,]+\.\d\d +\$[\d,.]+ +\$[\d,.]+ +[\d.]+% +already reached\n/,
      );
      expect(table.output).toMatch(/\nworkspace +Research +— +\$[\d,]+\.\d\d/);
      const json = await runNode('src/cli/index.ts', ['spend', '--json'], cliEnv);
      expect(json.code).toBe(0);
      const report = JSON.parse(json.output) as Awaited<ReturnType<typeof spendReport>> & {};
      expect(report.rows.length).toBe(stored.length);
      expect(report.rows.map((r) => r.name)).toEqual(
        expect.arrayContaining(['Organization', 'Customer chatbot', 'Production Backend']),
      );
      expect(report.rows[0]).toMatchObject({
        scopeType: 'organization',
        limitUsd: '5000.000000000000',
        monthToDateUsd: orgRow.mtd_usd,
      });
      expect(await runNode('src/cli/index.ts', ['spend', '--top'], cliEnv)).toMatchObject({ code: 2 });
    } finally {
      await env.close();
    }
  });
});

describe('project-spend before the first usage poll', () => {
  it('projects nothing and alerts nothing: "$0 this month" would be wrong, and the finance digest waits', async () => {
    const t = await createTestDatabase();
    const config = loadConfig({
      env: {
        KEYWARDEN_CONFIG: writePolicy(`spend: { limits: { organization: 100 } }
routes: [{ match: { kind: "*" }, slack: ["#finance"] }]
digests: { finance: { cron: "0 8 * * *", slack: ["#finance"] } }
`),
      },
    });
    const env = testJobContext({
      db: t.db,
      emulatorUrl: 'http://127.0.0.1:9',
      adminKey: DEMO_ADMIN_KEY,
      clock: fixedClock(new Date('2026-11-16T10:00:00Z')),
      config,
    });
    try {
      expect(await projectSpendJob.handler(env.ctx, {})).toEqual({ skipped: 'no usage polled yet' });
      expect(await financeDigestJob.handler(env.ctx, {})).toMatchObject({ queued: 0 });
      expect(await t.db.selectFrom('projections').select('id').execute()).toEqual([]);
      expect(await t.db.selectFrom('notifications').select('id').execute()).toEqual([]);
    } finally {
      await env.close();
      await t.drop();
    }
  });
});

function writePolicy(text: string): string {
  const path = join(dir, `policy-${policies++}.yaml`);
  writeFileSync(path, text);
  return path;
}
