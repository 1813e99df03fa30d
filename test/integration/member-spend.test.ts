import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { financeDigestJob } from '../../jobs/finance-digest.ts';
import { projectSpendJob } from '../../jobs/project-spend.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { picoToNumberUsd } from '../../src/money.ts';
import { DAY_MS } from '../../src/time.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { pollUsage } from '../../src/usage/ingest.ts';
import { testJobContext, usageContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

/**
 * Issue #15 item 4, Enterprise: each member's effective spend limit from the per-member report gets thresholds at
 * 75% and 95%, told to the member by email (the route's `key_owner` recipient) as `spend.threshold` on the scope
 * `member`, once per period; a Console organization has no members' limits and no such alert.
 */

const ADMIN_KEY = 'sk-ant-admin01-member-spend-test-key-0001';
const START = new Date('2026-11-18T10:00:00Z');
const HOSTILE = 'Eve\n<b>*Admin*</b> <!channel>';

const dir = mkdtempSync(join(tmpdir(), 'kw-member-spend-'));
const policyPath = join(dir, 'keywarden.yaml');
writeFileSync(
  policyPath,
  `routes:
  - { match: { kind: "spend.*" }, slack: ["#finance"], email: ["key_owner", "finance@ent.example"] }
digests:
  finance: { cron: "0 8 * * *", email: ["finance@ent.example"] }
`,
);
const config = loadConfig({ env: { KEYWARDEN_CONFIG: policyPath } });

type Limits = { ana: number | null; eve: number | null; anaDaily: number | null };
const scenario = (limits: Limits, type: 'enterprise' | 'console' = 'enterprise') =>
  parseScenario({
    name: 'member-spend',
    seed: 31,
    admin_keys: [ADMIN_KEY],
    workspaces: [{ name: 'Apps' }],
    users: [
      { name: 'Ana', email: 'ana@ent.example', role: 'developer', workspaces: { Apps: 'workspace_developer' } },
      { name: HOSTILE, email: 'eve@ent.example', role: 'developer', workspaces: { Apps: 'workspace_developer' } },
    ],
    keys: [
      {
        name: 'ana-key',
        workspace: 'Apps',
        principal: 'ana@ent.example',
        created_by: 'ana@ent.example',
        age_days: 60,
        traffic: { tokens_per_minute: 3_000, models: { 'claude-sonnet-4-5': 1 }, noise: 0.1 },
      },
      {
        name: 'eve-key',
        workspace: 'Apps',
        principal: 'eve@ent.example',
        created_by: 'eve@ent.example',
        age_days: 60,
        traffic: { tokens_per_minute: 2_000, models: { 'claude-sonnet-4-5': 1 }, noise: 0.1 },
      },
    ],
    spend_limits:
      type === 'console'
        ? {}
        : {
            organization_type: 'enterprise',
            members: [
              { user: 'ana@ent.example', period: 'monthly', amount_usd: limits.ana },
              { user: 'ana@ent.example', period: 'daily', amount_usd: limits.anaDaily, source: 'seat_tier' },
              { user: 'eve@ent.example', period: 'monthly', amount_usd: limits.eve, source: 'rbac_group' },
            ],
            increase_requests: [
              { user: 'eve@ent.example', period: 'monthly', status: 'pending', age_days: 2 },
              { user: 'ana@ent.example', period: 'daily', status: 'pending', age_days: 0.5 },
              { user: 'ana@ent.example', period: 'monthly', status: 'denied', age_days: 9, resolved_days_ago: 8 },
            ],
          },
  });

let t: TestDatabase;
let em: Emulator;
const clock = fixedClock(START);
let spentUsd: { ana: number; eve: number };

beforeAll(async () => {
  t = await createTestDatabase();
  // the same traffic with no limits first: the members' spend so far, to set limits around it
  const probe = await startEmulator({ scenario: scenario({ ana: null, eve: null, anaDaily: null }), clock });
  try {
    const rows = await new AdminClient({ baseUrl: probe.url, adminKey: new Secret(ADMIN_KEY), clock })
      .listMemberSpend({ periods: ['monthly'] })
      .toArray();
    const of = (email: string) =>
      picoToNumberUsd(rows.find((r) => r.actor.type === 'user' && r.actor.email === email)!.spent);
    spentUsd = { ana: of('ana@ent.example'), eve: of('eve@ent.example') };
  } finally {
    await probe.close();
  }
  em = await startEmulator({
    // Ana past 95% of her month, Eve past 75% only, Ana's day far from its limit
    scenario: scenario({
      ana: Math.ceil(spentUsd.ana / 0.97),
      eve: Math.ceil(spentUsd.eve / 0.85),
      anaDaily: Math.ceil(spentUsd.ana * 10),
    }),
    clock,
    startAt: START,
  });
});
afterAll(async () => {
  await em?.close();
  await t?.drop();
});

const poll = (env: ReturnType<typeof testJobContext>) =>
  pollUsage(usageContext(t.db, env.ctx.admin, clock), {
    overlapMinutes: 15,
    freshnessMinutes: 1,
    firstPollHours: 48,
    backfillDaysBeforeMonth: 0,
    table: PRICE_TABLE,
  });

async function memberAlerts() {
  return t.db
    .selectFrom('alerts')
    .select(['scope_id', 'period', 'severity', 'title'])
    .where('kind', '=', 'spend.threshold')
    .where('scope_type', '=', 'member' as never)
    .orderBy('id')
    .execute();
}

describe('per-member spend thresholds of an Enterprise organization', () => {
  it('75% and 95% of each member’s limit, in its period, by email to the member, said once', async () => {
    expect(spentUsd.ana).toBeGreaterThan(1);
    const env = testJobContext({ db: t.db, emulatorUrl: em.url, adminKey: ADMIN_KEY, clock, config });
    try {
      await syncInventory.handler(env.ctx, {});
      await poll(env);
      const first = await projectSpendJob.handler(env.ctx, {});
      // the run also asks about the two pending increase requests (Approve / Deny in Slack), once each
      expect(first).toMatchObject({ increaseRequests: { fired: 2 } });
      const ana = em.state.users.find((u) => u.email === 'ana@ent.example')!.id;
      const eve = em.state.users.find((u) => u.email === 'eve@ent.example')!.id;
      const alerts = await memberAlerts();
      expect(alerts.map((a) => [a.scope_id, a.period, a.severity])).toEqual([
        [ana, '2026-11@0.75', 'info'],
        [ana, '2026-11@0.95', 'warning'],
        [eve, '2026-11@0.75', 'info'],
      ]);
      expect(alerts[0]!.title).toBe(
        `Member "Ana" reached 75% of their $${Math.ceil(spentUsd.ana / 0.97)}.00 spend limit`,
      );
      // the organization's text on one line, as data: no line break to forge a second line of the message
      expect(alerts[2]!.title).toBe(
        `Member "Eve <b>*Admin*</b> <!channel>" reached 75% of their $${Math.ceil(spentUsd.eve / 0.85)}.00 spend limit`,
      );

      const mails = await t.db
        .selectFrom('notifications')
        .select(['fingerprint', 'target'])
        .where('channel', '=', 'email')
        .where('event', '=', 'firing')
        .execute();
      const targets = mails.map((m) => m.target);
      expect(targets.filter((x) => x === 'ana@ent.example').length).toBeGreaterThan(0);
      expect(targets.filter((x) => x === 'eve@ent.example').length).toBeGreaterThan(0);
      expect(targets).toContain('finance@ent.example');

      // the next run, and the next day: nothing said twice
      const before = await t.db.selectFrom('notifications').select('id').execute();
      clock.advance(DAY_MS / 4);
      await poll(env);
      // no limit changed and no request answered: the increase notices stay firing, neither resolved by the
      // limit-change step nor revived by the increase step
      expect(await projectSpendJob.handler(env.ctx, {})).toMatchObject({
        limitChanges: { fired: 0, resolved: 0 },
        increaseRequests: { fired: 0, resolved: 0 },
      });
      const notices = await t.db
        .selectFrom('alerts')
        .select(['state', 'resolved_at'])
        .where('kind', '=', 'spend.limit_changed')
        .where('scope_type', '=', 'member' as never)
        .execute();
      expect(notices).toEqual([
        { state: 'firing', resolved_at: null },
        { state: 'firing', resolved_at: null },
      ]);
      expect((await memberAlerts()).length).toBe(3);
      const after = await t.db
        .selectFrom('notifications')
        .select(['id', 'target'])
        .where('id', 'not in', before.map((b) => b.id).length > 0 ? before.map((b) => b.id) : ['0'])
        .execute();
      expect(after.filter((n) => n.target.endsWith('@ent.example') && n.target !== 'finance@ent.example')).toEqual([]);
    } finally {
      await env.close();
    }
  });

  it('the finance digest lists the pending increase requests: who, their limit and spend, since when', async () => {
    const env = testJobContext({ db: t.db, emulatorUrl: em.url, adminKey: ADMIN_KEY, clock, config });
    try {
      expect(await financeDigestJob.handler(env.ctx, {})).toMatchObject({ queued: 1 });
      const [row] = await t.db
        .selectFrom('notifications')
        .select('payload')
        .where('event', '=', 'digest')
        .where('target', '=', 'finance@ent.example')
        .execute();
      const { sections } = (row!.payload as { digest: { sections: { title: string; rows: string[][] }[] } }).digest;
      const pending = sections.find((x) => x.title === 'Spend limit increase requests waiting for an answer')!;
      const eveLimit = Math.ceil(spentUsd.eve / 0.85);
      // the longest waiting first; the denied one is not listed; the name on one line, as data
      expect(pending.rows.map((r) => [r[0], r[1], r[2], r[4]])).toEqual([
        ['Eve <b>*Admin*</b> <!channel>', 'monthly', `$${eveLimit.toLocaleString('en-US')}.00`, '16 Nov (2 d ago)'],
        ['Ana', 'daily', `$${Math.ceil(spentUsd.ana * 10).toLocaleString('en-US')}.00`, '17 Nov (0 d ago)'],
      ]);
      expect(pending.rows[0]![3]).toMatch(/^\$[\d,]+\.\d\d \(8\d(\.\d)?%\)$/);
    } finally {
      await env.close();
    }
  });

  it('a Console organization: no member alerts, no warning in the log', async () => {
    const consoleEm = await startEmulator({
      scenario: scenario({ ana: null, eve: null, anaDaily: null }, 'console'),
      clock,
      startAt: START,
    });
    const db = await createTestDatabase();
    const env = testJobContext({ db: db.db, emulatorUrl: consoleEm.url, adminKey: ADMIN_KEY, clock, config });
    try {
      await syncInventory.handler(env.ctx, {});
      await pollUsage(usageContext(db.db, env.ctx.admin, clock), {
        overlapMinutes: 15,
        freshnessMinutes: 1,
        firstPollHours: 48,
        backfillDaysBeforeMonth: 0,
        table: PRICE_TABLE,
      });
      await projectSpendJob.handler(env.ctx, {});
      const member = await db.db
        .selectFrom('alerts')
        .select('id')
        .where('scope_type', '=', 'member' as never)
        .execute();
      expect(member).toEqual([]);
      expect(env.lines.join('\n')).not.toContain('members’ spend limits');
      expect(env.ctx.admin.keyVerdict.state).toBe('accepted');
    } finally {
      await env.close();
      await consoleEm.close();
      await db.drop();
    }
  });
});
