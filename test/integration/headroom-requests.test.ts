import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { checkHeadroom } from '../../src/anomaly/check-headroom.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { TOKENS_PER_REQUEST } from '../../src/emulator/analytics.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const MIN = 60_000;
const START = new Date('2026-11-16T10:00:00Z');
const ADMIN_KEY = 'sk-ant-admin01-keywarden-headroom-rpm-0001';
/** Chatbot's requests limit: its traffic runs at about 90% of it. */
const LIMIT = 33;
const SONNETS = ['claude-sonnet-4-6', 'claude-sonnet-4-5', 'claude-sonnet-4'];

// "Chatbot" sends about 30 Sonnet requests a minute (the emulator counts one per 2,000 input tokens of each minute
// and model slot) against a workspace limit of 33 requests a minute, and tokens far below its token limits; "Research" runs a tenth of that
// under the organization's limits (4,000 requests a minute).
function scenario(analytics: 'available' | 'refused') {
  return parseScenario({
    name: 'headroom-rpm',
    admin_keys: [ADMIN_KEY],
    analytics_api: analytics,
    traffic_defaults: { models: { 'claude-sonnet-4-5': 1 }, daily_amplitude: 0, noise: 0.05, output_ratio: 0.2 },
    workspaces: [
      {
        name: 'Chatbot',
        rate_limits: [
          {
            group_type: 'model_group',
            models: SONNETS,
            limits: {
              requests_per_minute: LIMIT,
              input_tokens_per_minute: 1_000_000,
              output_tokens_per_minute: 400_000,
            },
          },
        ],
      },
      { name: 'Research' },
    ],
    keys: [
      { name: 'chatbot-prod', workspace: 'Chatbot', age_days: 60, traffic: { tokens_per_minute: 60_000 } },
      { name: 'research', workspace: 'Research', age_days: 60, traffic: { tokens_per_minute: 6_000 } },
    ],
  });
}

const dir = mkdtempSync(join(tmpdir(), 'kw-headroom-rpm-'));
const policyPath = join(dir, 'policy.yaml');
writeFileSync(policyPath, 'routes:\n  - { match: { kind: "ratelimit.*" }, slack: ["#ai-alerts"] }\n');

const headroomAlerts = (t: TestDatabase) =>
  t.db
    .selectFrom('alerts')
    .select(['title', 'state', 'details'])
    .where('kind', '=', 'ratelimit.headroom')
    .orderBy('title')
    .execute();

describe.each(['available', 'refused'] as const)('requests-per-minute headroom, analytics API %s', (analytics) => {
  const clock = fixedClock(START);
  let t: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    t = await createTestDatabase();
    emulator = await startEmulator({ scenario: scenario(analytics), clock, startAt: START, freshnessDelayMinutes: 0 });
  });
  afterAll(async () => {
    await emulator?.close();
    await t?.drop();
  });

  it(
    analytics === 'available'
      ? 'fires ratelimit.headroom for the workspace near its requests limit, with the emulator’s request count'
      : 'checks no requests limit, says so once in three checks, raises nothing',
    async () => {
      const config = loadConfig({ env: { KEYWARDEN_CONFIG: policyPath } });
      const env = testJobContext({ db: t.db, emulatorUrl: emulator.url, adminKey: ADMIN_KEY, clock, config });
      try {
        await syncInventory.handler(env.ctx, {});
        clock.advance(20 * MIN);
        await pollUsageJob.handler(env.ctx, {});
        let window: { from: Date; until: Date } | null = null;
        for (let run = 0; run < 3; run++) {
          const summary = await checkHeadroom(env.ctx);
          window = summary.window;
          expect(summary.workspaces).toBe(2);
          expect(summary.unreadable).toEqual([]);
        }
        const alerts = await headroomAlerts(t);
        const metrics = await createMetrics(createRepos(t.db)).registry.metrics();
        if (analytics === 'refused') {
          expect(alerts).toEqual([]);
          expect(env.lines.filter((l) => l.includes('no requests-per-minute headroom'))).toHaveLength(1);
          expect(metrics).toContain('keywarden_analytics_api_available{api="analytics.usage"} 0');
          return;
        }
        expect(alerts.map((a) => [a.title.replace(/\d+%/, 'N%'), a.state])).toEqual([
          ['Workspace "Chatbot" uses N% of its requests per minute limit', 'firing'],
        ]);
        const details = (alerts[0]!.details as { details: { utilization: number; limit: number; limitType: string } })
          .details;
        expect(details).toMatchObject({ limitType: 'requests_per_minute', limit: LIMIT });
        // the utilization is the emulator's own request count over the window (one request per 2,000 input tokens of
        // each minute and model slot, as its analytics count them), against the limit
        const chatbot = emulator.state.keys.find((k) => k.name === 'chatbot-prod')!;
        let truth = 0;
        let minutes = 0;
        for (let m = window!.from.getTime(); m <= window!.until.getTime(); m += MIN) {
          minutes++;
          for (const c of emulator.usageAt(chatbot.id, new Date(m))) {
            const input =
              c.uncached_input_tokens +
              c.cache_read_input_tokens +
              c.cache_creation_5m_input_tokens +
              c.cache_creation_1h_input_tokens;
            truth += Math.max(1, Math.ceil(input / TOKENS_PER_REQUEST));
          }
        }
        expect(details.utilization).toBeCloseTo(truth / minutes / LIMIT, 9);
        expect(details.utilization).toBeGreaterThanOrEqual(0.8);
        expect(metrics).toContain('keywarden_analytics_api_available{api="analytics.usage"} 1');
      } finally {
        await env.close();
      }
    },
  );
});
