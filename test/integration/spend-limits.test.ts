import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSpendJob } from '../../jobs/check-spend.ts';
import { projectSpendJob } from '../../jobs/project-spend.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { loadScenario, parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import type { SpendLimitsControl } from '../../src/emulator/spend-limits.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { picoToNumberUsd, usdToPico } from '../../src/money.ts';
import { MINUTE_MS } from '../../src/time.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { pollUsage } from '../../src/usage/ingest.ts';
import { testJobContext, usageContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_START } from '../support/demo-org.ts';

/**
 * Issue #15 item 4: the caps Anthropic enforces drive the spend alerts with no `spend.limits` in the policy file.
 * The demo organization's Spend Limits API (the emulator) gets a usage-tier cap, an organization daily limit and a
 * workspace monthly limit; each is judged in its own period; a change in the Console is `spend.limit_changed`; a
 * refusal falls back to the policy file once, in the log and on /metrics, without an alert.
 */

const dir = mkdtempSync(join(tmpdir(), 'kw-spend-limits-'));
const policyPath = join(dir, 'keywarden.yaml');
writeFileSync(
  policyPath,
  `routes:
  - { match: { kind: "spend.*" }, slack: ["#finance"] }
`,
);
const config = loadConfig({ env: { KEYWARDEN_CONFIG: policyPath } });

let t: TestDatabase;
let em: Emulator;
const clock = fixedClock(DEMO_START);

beforeAll(async () => {
  t = await createTestDatabase();
  const demo = loadScenario('demo');
  em = await startEmulator({
    scenario: parseScenario({ ...demo, spend_limits: { access: 'enabled' } }),
    clock,
    startAt: DEMO_START,
  });
});
afterAll(async () => {
  await em.close();
  await t.drop();
});

function context() {
  return testJobContext({ db: t.db, emulatorUrl: em.url, adminKey: em.state.scenario.admin_keys[0]!, clock, config });
}

async function control(body: Partial<SpendLimitsControl>) {
  em.state.spendLimits.apply({ set: [], delete: [], ...body }, clock.now().getTime());
}

async function alerts(kind: string) {
  return (
    await t.db
      .selectFrom('alerts')
      .select(['scope_type', 'scope_id', 'period', 'severity', 'title', 'state'])
      .where('kind', '=', kind as never)
      .orderBy('id')
      .execute()
  ).map((a) => ({ ...a, key: `${a.scope_type}|${a.scope_id}|${a.period}` }));
}

async function projected(scopeType: string, scopeId: string) {
  return t.db
    .selectFrom('projections')
    .selectAll()
    .where('scope_type', '=', scopeType as never)
    .where('scope_id', '=', scopeId)
    .orderBy('id', 'desc')
    .executeTakeFirstOrThrow();
}

describe('spend limits from the Spend Limits API', () => {
  it('drive thresholds in their own periods, the usage tier its own message, and changes spend.limit_changed', async () => {
    const env = context();
    try {
      await syncInventory.handler(env.ctx, {});
      await pollUsage(usageContext(t.db, env.ctx.admin, clock), {
        overlapMinutes: 15,
        freshnessMinutes: 1,
        firstPollHours: 48,
        backfillDaysBeforeMonth: 35,
        table: PRICE_TABLE,
      });
      // the first read: the API has no limit yet, and the first read is no change
      await projectSpendJob.handler(env.ctx, {});
      expect(await alerts('spend.limit_changed')).toEqual([]);
      const org = await projected('organization', 'organization');
      expect(org.limit_usd).toBeNull();
      const mtd = picoToNumberUsd(usdToPico(org.mtd_usd));
      const research = em.state.workspaces.find((w) => w.name === 'Research')!;
      const researchMtd = picoToNumberUsd(usdToPico((await projected('workspace', research.id)).mtd_usd));

      // a person sets limits in the Console; Anthropic's tier cap for the organization shows
      await control({
        usage_tier: { amount_usd: Math.round(mtd / 0.85) },
        set: [
          { scope: 'organization', period: 'daily', amount_usd: 1_000_000, enabled: true },
          { scope: 'Research', period: 'monthly', amount_usd: Math.round(researchMtd / 0.6), enabled: true },
          // switched off: it caps nothing, so it alerts nothing
          { scope: 'Customer chatbot', period: 'weekly', amount_usd: 1, enabled: false },
        ],
      });
      clock.advance(MINUTE_MS);
      await projectSpendJob.handler(env.ctx, {});

      const changed = await alerts('spend.limit_changed');
      expect(changed.map((a) => a.title).sort()).toEqual(
        [
          "The organization's daily spend limit was set: $1,000,000.00",
          `The usage tier's cap was set: $${Math.round(mtd / 0.85).toLocaleString('en-US')}.00`,
          `Workspace "Customer chatbot"'s weekly spend limit was set: $1.00 (switched off)`,
          `Workspace "Research"'s monthly spend limit was set: $${Math.round(researchMtd / 0.6).toLocaleString('en-US')}.00`,
        ].sort(),
      );

      const thresholds = await alerts('spend.threshold');
      expect(thresholds.map((a) => a.key).sort()).toEqual(
        [
          'organization|usage_tier|2026-11@0.5',
          'organization|usage_tier|2026-11@0.8',
          `workspace|${research.id}|2026-11@0.5`,
        ].sort(),
      );
      const tier = thresholds.find((a) => a.period === '2026-11@0.8')!;
      expect(tier.severity).toBe('critical');
      expect(tier.title).toMatch(
        /^The organization reached 80% of its usage tier's \$[\d,]+\.00 monthly cap for November 2026$/,
      );
      // the projection stores the lowest monthly limit: the tier's cap for the organization, the API's for Research
      expect(usdToPico((await projected('organization', 'organization')).limit_usd!)).toBe(
        usdToPico(String(Math.round(mtd / 0.85))),
      );

      // a daily limit the day's spend is over: said for today, under today's date
      await control({ set: [{ scope: 'organization', period: 'daily', amount_usd: 1, enabled: true }] });
      clock.advance(MINUTE_MS);
      await projectSpendJob.handler(env.ctx, {});
      const daily = (await alerts('spend.threshold')).filter((a) => a.period.startsWith('2026-11-16@'));
      expect(daily.map((a) => [a.key, a.title])).toContainEqual([
        'organization|organization|2026-11-16@1',
        'The organization reached its $1.00 daily limit for 2026-11-16',
      ]);
      // the daily 100% does not silence the month's usage-tier or Research alerts (another period, another cap)
      expect((await alerts('spend.threshold')).filter((a) => a.period.startsWith('2026-11@'))).toHaveLength(3);
      expect((await alerts('spend.limit_changed')).map((a) => a.title)).toContain(
        "The organization's daily spend limit changed from $1,000,000.00 to $1.00",
      );

      // the same limits read again: nothing more is said
      const before = (await alerts('spend.limit_changed')).length;
      clock.advance(MINUTE_MS);
      await projectSpendJob.handler(env.ctx, {});
      expect(await alerts('spend.limit_changed')).toHaveLength(before);

      // deleted in the Console
      await control({ delete: [{ scope: 'Research', period: 'monthly' }] });
      clock.advance(MINUTE_MS);
      await projectSpendJob.handler(env.ctx, {});
      expect((await alerts('spend.limit_changed')).map((a) => a.title)).toContain(
        `Workspace "Research"'s monthly spend limit was deleted (it was $${Math.round(researchMtd / 0.6).toLocaleString('en-US')}.00)`,
      );
    } finally {
      await env.close();
    }
  });

  it('the check after a poll judges thresholds on the limits read last, without asking the API', async () => {
    const env = context();
    try {
      const asked = () => em.requestLog.filter((r) => r.path.startsWith('/v1/organizations/spend_limits')).length;
      const n = asked();
      clock.advance(MINUTE_MS);
      const result = await checkSpendJob.handler(env.ctx, {});
      expect(result).toMatchObject({ mode: 'checked' });
      expect(asked()).toBe(n);
    } finally {
      await env.close();
    }
  });

  it('a threshold newly reached between projections: the check runs the whole projection, which tells it', async () => {
    const env = context();
    try {
      // a late correction to an hour the poll already covered takes the organization over its usage tier cap
      await t.db
        .insertInto('usage_buckets')
        .values({
          bucket_width: '1m',
          starting_at: new Date(DEMO_START.getTime() - 120 * MINUTE_MS),
          api_key_id: null,
          workspace_id: null,
          model: 'claude-sonnet-4-5',
          service_tier: 'standard',
          context_window: '0-200k',
          cost_usd: '100000',
        })
        .execute();
      clock.advance(MINUTE_MS);
      expect(await checkSpendJob.handler(env.ctx, {})).toMatchObject({
        mode: 'projected',
        because: 'a threshold newly reached',
      });
      const tier = (await alerts('spend.threshold')).find((a) => a.key === 'organization|usage_tier|2026-11@1');
      expect(tier).toMatchObject({ state: 'firing', severity: 'critical' });
      // told once: the next check finds it recorded
      clock.advance(MINUTE_MS);
      expect(await checkSpendJob.handler(env.ctx, {})).toMatchObject({ mode: 'checked' });
    } finally {
      await env.close();
    }
  });

  it('a read that fails for a while (5xx) keeps judging against the limits read last', async () => {
    const env = context();
    try {
      const path = '/v1/organizations/spend_limits';
      em.setFaults({
        script: [
          { status: 500, path },
          { status: 503, path },
        ],
      });
      clock.advance(15 * MINUTE_MS);
      await projectSpendJob.handler(env.ctx, {});
      em.setFaults({});
      expect(env.lines.some((l) => l.includes('could not read the Spend Limits API'))).toBe(true);
      // the usage tier's alerts still hold: its cap was read last time
      const tier = (await alerts('spend.threshold')).find((a) => a.key === 'organization|usage_tier|2026-11@1');
      expect(tier?.state).toBe('firing');
      expect(env.lines.some((l) => l.includes('spend limits come from the policy file alone'))).toBe(false);
    } finally {
      await env.close();
    }
  });

  it('a refusal falls back to the policy file: once in the log, on /metrics, and no alert', async () => {
    const env = context();
    try {
      await control({ access: 'not_enabled' });
      const notificationsBefore = await t.db.selectFrom('notifications').select('id').execute();
      for (let i = 0; i < 3; i++) {
        clock.advance(MINUTE_MS);
        await projectSpendJob.handler(env.ctx, {});
      }
      const said = env.lines.filter((l) => l.includes('spend limits come from the policy file alone'));
      expect(said).toHaveLength(1);
      expect(said[0]).toContain('403 spend_limits_admin_api_writes_not_enabled');
      // the admin key is fine: no keywarden.blind
      expect(env.ctx.admin.keyVerdict.state).not.toBe('rejected');
      const metrics = await createMetrics(env.ctx.repos).registry.metrics();
      expect(metrics).toContain(
        'keywarden_spend_limits_from_api{reason="the Spend Limits API answered 403 spend_limits_admin_api_writes_not_enabled"} 0',
      );
      // the API's limits no longer apply: their alerts end silently, and nothing new is sent
      const after = await t.db.selectFrom('notifications').select(['id', 'payload']).execute();
      const fresh = after.filter((r) => !notificationsBefore.some((b) => b.id === r.id));
      expect(fresh.map((r) => JSON.stringify(r.payload)).filter((p) => !p.includes('"resolved"'))).toEqual([]);
      expect((await alerts('spend.threshold')).filter((a) => a.state === 'firing')).toEqual([]);

      // access granted again: the API is the source again, said once
      await control({ access: 'enabled' });
      clock.advance(MINUTE_MS);
      await projectSpendJob.handler(env.ctx, {});
      expect(await createMetrics(env.ctx.repos).registry.metrics()).toContain(
        'keywarden_spend_limits_from_api{reason=""} 1',
      );
    } finally {
      await env.close();
    }
  });
});
