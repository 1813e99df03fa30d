import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { projectSpendJob } from '../../jobs/project-spend.ts';
import { reconcileCostsJob } from '../../jobs/reconcile-costs.ts';
import { formatSpendReport } from '../../src/cli/spend.ts';
import { fixedClock } from '../../src/clock.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { composeFinanceDigest } from '../../src/digest/finance.ts';
import { loadFinanceData } from '../../src/digest/finance-data.ts';
import { parseScenario, type Scenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { formatUsd, type Pico, picoToCents, picoToUsd } from '../../src/money.ts';
import { spendReport } from '../../src/spend/report.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { pollUsage } from '../../src/usage/ingest.ts';
import { testJobContext, usageContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

// the first poll backfills November 1–15 hourly and reads the 16th in 1m buckets up to now: 16 days
const NOW = new Date('2026-11-16T06:00:00Z');
const MONTH = new Date('2026-11-01T00:00:00Z');
const DAY = 86_400_000;
const ADMIN_KEY = 'sk-ant-admin01-keywarden-quiet-not-a-secret-0001';
const clock = fixedClock(NOW);

/** The quiet organization, plus a key whose Opus requests are blocked (tokens reported, nothing billed). */
function scenario(analytics: 'available' | 'refused'): Scenario {
  const raw = parseYaml(readFileSync(new URL('../../src/emulator/scenarios/quiet.yaml', import.meta.url), 'utf8'));
  raw.analytics_api = analytics;
  raw.keys.push({
    name: 'guarded',
    workspace: 'Product',
    created_by: 'sam@quiet.example',
    age_days: 60,
    traffic: {
      tokens_per_minute: 4000,
      models: { 'claude-sonnet-4-5': 1, 'claude-opus-4-6': 1 },
      blocked_models: ['claude-opus-4-6'],
    },
  });
  return parseScenario(raw, 'quiet + blocked');
}

async function poll(t: TestDatabase, ctx: ReturnType<typeof testJobContext>['ctx']) {
  await pollUsage(usageContext(t.db, ctx.admin, clock), {
    overlapMinutes: 15,
    freshnessMinutes: 0,
    firstPollHours: 6,
    backfillDaysBeforeMonth: 0,
    table: PRICE_TABLE,
  });
}

type Result = {
  compared: number;
  drifted: unknown[];
  keys: { source: 'analytics' | 'classic'; drifted?: number; unbilled?: number };
};

const driftAlerts = (t: TestDatabase) =>
  t.db.selectFrom('alerts').select(['scope_id', 'state']).where('kind', '=', 'cost.drift').execute();

describe('billed cost per key (the analytics cost API)', () => {
  let t: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    t = await createTestDatabase();
    emulator = await startEmulator({ scenario: scenario('available'), clock, startAt: NOW, freshnessDelayMinutes: 0 });
  });
  afterAll(async () => {
    await emulator?.close();
    await t?.drop();
  });

  it('equals the emulator billed cost per key and day to the cent over 16 days; drift fires for a mispriced key, not for blocked requests', async () => {
    const { ctx, close } = testJobContext({ db: t.db, emulatorUrl: emulator.url, adminKey: ADMIN_KEY, clock });
    try {
      await poll(t, ctx);
      const first = (await reconcileCostsJob.handler(ctx, {})) as Result;
      expect(first.keys).toMatchObject({ source: 'analytics', drifted: 0 });
      // the blocked key's Opus usage is priced, not billed: set apart, no drift
      expect(first.keys.unbilled).toBeGreaterThan(0);
      expect(await driftAlerts(t)).toEqual([]);

      // stored bill per key and UTC day (closed days as 1d rows, today as 1h rows) = the scenario's truth
      const cells = await createRepos(t.db).billing.billedCells(MONTH, NOW);
      const perKeyDay = new Map<string, Pico>();
      for (const c of cells) {
        const id = `${c.keyId} ${c.start.toISOString().slice(0, 10)}`;
        perKeyDay.set(id, (perKeyDay.get(id) ?? 0n) + c.amount);
      }
      const guarded = emulator.state.keys.find((k) => k.name === 'guarded')!;
      let checked = 0;
      for (const k of emulator.state.keys) {
        for (let d = MONTH.getTime(); d < NOW.getTime(); d += DAY) {
          const day = new Date(d).toISOString().slice(0, 10);
          const truth = emulator.billedPicoFor(k.id, new Date(d), new Date(Math.min(d + DAY, NOW.getTime())));
          if (truth === 0n) continue;
          expect(`${k.name} ${day} ${picoToCents(perKeyDay.get(`${k.id} ${day}`) ?? 0n)}`).toBe(
            `${k.name} ${day} ${picoToCents(truth)}`,
          );
          checked++;
        }
      }
      // every stored key-day was checked, and the 16 days of every key with traffic are there
      expect(perKeyDay.size).toBe(checked);
      expect(new Set([...perKeyDay.keys()].map((id) => id.split(' ')[1])).size).toBe(16);

      // the actor behind each key's spend is stored with it: its principal (a service account, a user), else the key
      const actors = await t.db
        .selectFrom('billed_costs')
        .select(['api_key_id', 'actor_type', 'actor_id', 'actor_label'])
        .distinct()
        .execute();
      const expected = emulator.state.keys.map((k) => {
        const p = k.principal;
        if (p === null) return { api_key_id: k.id, actor_type: 'api_actor', actor_id: k.id, actor_label: null };
        if ('serviceAccountId' in p) {
          return {
            api_key_id: k.id,
            actor_type: 'service_account_actor',
            actor_id: p.serviceAccountId,
            actor_label: null,
          };
        }
        return { api_key_id: k.id, actor_type: 'user_actor', actor_id: p.user.id, actor_label: p.user.email };
      });
      const byKey = (a: { api_key_id: string }, b: { api_key_id: string }) => a.api_key_id.localeCompare(b.api_key_id);
      expect(actors.sort(byKey)).toEqual(expected.sort(byKey));
      expect(new Set(actors.map((a) => a.actor_type)).size).toBe(3);

      // priced usage per key and day equals the bill to the cent, except the blocked key (its Opus usage is unbilled)
      const priced = await createRepos(t.db).usage.pricedByKeyModel(MONTH, NOW, '1d');
      const pricedPerKeyDay = new Map<string, Pico>();
      for (const p of priced) {
        if (p.keyId === guarded.id && p.model === 'claude-opus-4-6') continue;
        const id = `${p.keyId} ${p.start.toISOString().slice(0, 10)}`;
        pricedPerKeyDay.set(id, (pricedPerKeyDay.get(id) ?? 0n) + p.pico);
      }
      for (const [id, pico] of perKeyDay)
        expect(`${id} ${picoToCents(pricedPerKeyDay.get(id) ?? 0n)}`).toBe(`${id} ${picoToCents(pico)}`);

      // one key priced 5% high on the 10th (a wrong price): cost.drift for that key only
      const mispriced = emulator.state.keys.find((k) => k.name === 'product-api')!;
      await sql`UPDATE usage_buckets SET cost_usd = cost_usd * 1.05
        WHERE api_key_id = ${mispriced.id} AND starting_at >= '2026-11-10' AND starting_at < '2026-11-11'`.execute(
        t.db,
      );
      const drifting = (await reconcileCostsJob.handler(ctx, {})) as Result;
      expect(drifting.keys.drifted).toBe(1);
      expect(await driftAlerts(t)).toEqual([{ scope_id: mispriced.id, state: 'firing' }]);

      // fixed: the alert resolves
      await sql`UPDATE usage_buckets SET cost_usd = cost_usd / 1.05
        WHERE api_key_id = ${mispriced.id} AND starting_at >= '2026-11-10' AND starting_at < '2026-11-11'`.execute(
        t.db,
      );
      await reconcileCostsJob.handler(ctx, {});
      expect(await driftAlerts(t)).toEqual([{ scope_id: mispriced.id, state: 'resolved' }]);

      const text = await createMetrics(createRepos(t.db)).registry.metrics();
      expect(text).toContain('keywarden_analytics_api_available{api="analytics.cost"} 1');

      // billed beside priced: `keywarden spend` (table and --json) and the finance digest say which is which
      const billedMtd = emulator.billedPicoFor(mispriced.id, MONTH, NOW);
      await projectSpendJob.handler(ctx, {});
      const report = (await spendReport(createRepos(t.db)))!;
      const keyRow = report.rows.find((r) => r.scopeId === mispriced.id)!;
      expect(keyRow.billedMonthToDateUsd).toBe(picoToUsd(billedMtd));
      expect(report.rows.find((r) => r.scopeType === 'organization')!.billedMonthToDateUsd).not.toBeNull();
      const table = formatSpendReport(report);
      expect(table).toContain('MONTH TO DATE (PRICED)');
      expect(table).toContain('BILLED (UTC)');
      expect(table).toContain(formatUsd(billedMtd));
      const finance = await loadFinanceData(createRepos(t.db), NOW, {
        organizationName: 'Quiet Co',
        timezone: 'UTC',
        organizationLimitUsd: null,
      });
      expect(finance.keys.find((k) => k.id === mispriced.id)!.billed).toBe(billedMtd);
      const digest = composeFinanceDigest(finance).message;
      const keys = digest.sections[0]!;
      expect(keys.columns.map((c) => c.label)).toContain('Billed');
      expect(keys.columns.map((c) => c.label)).toContain('Priced');
      expect(digest.fields.map((f) => f.label)).toContain('Billed by Anthropic (UTC month)');
    } finally {
      await close();
    }
  });
});

describe('an organization the analytics API refuses', () => {
  let t: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    t = await createTestDatabase();
    emulator = await startEmulator({ scenario: scenario('refused'), clock, startAt: NOW, freshnessDelayMinutes: 0 });
  });
  afterAll(async () => {
    await emulator?.close();
    await t?.drop();
  });

  it('falls back to the per-workspace reconciliation, says so once in the log and on /metrics, alerts nothing', async () => {
    const { ctx, lines, close } = testJobContext({ db: t.db, emulatorUrl: emulator.url, adminKey: ADMIN_KEY, clock });
    try {
      await poll(t, ctx);
      for (let run = 0; run < 3; run++) {
        const result = (await reconcileCostsJob.handler(ctx, {})) as Result;
        expect(result.keys.source).toBe('classic');
        expect(result.compared).toBeGreaterThan(16);
      }
      const said = lines.filter((l) => l.includes('analytics cost API refuses'));
      expect(said).toHaveLength(1);
      expect(ctx.admin.keyVerdict.state).toBe('accepted');
      expect(await t.db.selectFrom('alerts').selectAll().execute()).toEqual([]);
      expect(await t.db.selectFrom('billed_costs').selectAll().execute()).toEqual([]);
      const text = await createMetrics(createRepos(t.db)).registry.metrics();
      expect(text).toContain('keywarden_analytics_api_available{api="analytics.cost"} 0');
      // nothing billed is known: the digest shows only what keywarden priced, named as before
      const finance = await loadFinanceData(createRepos(t.db), NOW, {
        organizationName: 'Quiet Co',
        timezone: 'UTC',
        organizationLimitUsd: null,
      });
      expect(finance.billedMtd).toBeNull();
      const keys = composeFinanceDigest(finance).message.sections[0]!;
      expect(keys.columns.map((c) => c.label)).toEqual(['Key', 'Workspace', 'Spent', 'Share', 'Projected month end']);
    } finally {
      await close();
    }
  });
});

describe('billed cost pages that repeat a row', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('keeps the later page’s row when a walk meets a row again (ranked live data moved it across a page boundary)', async () => {
    const row = (listUsd: number) => ({
      width: '1h' as const,
      startingAt: new Date(NOW.getTime() - 3_600_000),
      apiKeyId: 'apikey_01moved',
      workspaceId: 'wrkspc_01product',
      model: 'claude-sonnet-4-5',
      actor: { type: 'api_actor', id: 'apikey_01moved', label: null },
      amount: (BigInt(listUsd) * 10n ** 12n) as Pico,
      listAmount: (BigInt(listUsd) * 10n ** 12n) as Pico,
      requests: listUsd,
      currency: 'USD',
      dataRefreshedAt: NOW,
    });
    async function* pages() {
      yield [row(2)];
      yield [row(3)];
    }
    const repos = createRepos(t.db);
    await repos.billing.replaceBilled({ width: '1h', start: MONTH, end: NOW }, pages(), null);
    const stored = await t.db.selectFrom('billed_costs').select(['list_amount_usd', 'requests']).execute();
    expect(stored.map((r) => [Number(r.list_amount_usd), Number(r.requests)])).toEqual([[3, 3]]);
  });
});
