import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHeadroomJob } from '../../jobs/check-headroom.ts';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { checkHeadroom } from '../../src/anomaly/check-headroom.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const MIN = 60_000;
const START = new Date('2026-11-16T10:00:00Z');
const ADMIN_KEY = 'sk-ant-admin01-keywarden-headroom-test-0001';
const SONNETS = ['claude-sonnet-4-6', 'claude-sonnet-4-5', 'claude-sonnet-4'];

// "Chatbot" runs at ~60k input and ~12k output tokens a minute on Sonnet against a workspace limit of 50k input
// and 40k output; "Research" runs at a tenth of that under the organization's limits. Chatbot's key is switched
// off 30 minutes in.
const scenario = parseScenario({
  name: 'headroom',
  admin_keys: [ADMIN_KEY],
  traffic_defaults: { models: { 'claude-sonnet-4-5': 1 }, daily_amplitude: 0, noise: 0.05, output_ratio: 0.2 },
  workspaces: [
    {
      name: 'Chatbot',
      rate_limits: [
        {
          group_type: 'model_group',
          models: SONNETS,
          limits: { input_tokens_per_minute: 50_000, output_tokens_per_minute: 40_000 },
        },
      ],
    },
    { name: 'Research' },
  ],
  keys: [
    { name: 'chatbot-prod', workspace: 'Chatbot', age_days: 60, traffic: { tokens_per_minute: 60_000 } },
    { name: 'research', workspace: 'Research', age_days: 60, traffic: { tokens_per_minute: 6_000 } },
  ],
  events: [{ type: 'key_status', key: 'chatbot-prod', at_minutes: 30, status: 'inactive' }],
});

const dir = mkdtempSync(join(tmpdir(), 'kw-headroom-'));
const policyPath = join(dir, 'policy.yaml');
writeFileSync(policyPath, 'routes:\n  - { match: { kind: "ratelimit.*" }, slack: ["#ai-alerts"] }\n');

describe('check-headroom against the emulator', () => {
  const clock = fixedClock(START);
  let t: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    t = await createTestDatabase();
    emulator = await startEmulator({ scenario, clock, startAt: START });
  });
  afterAll(async () => {
    await emulator.close();
    await t.drop();
  });

  it('raises ratelimit.headroom for a workspace above 80% of its input limit, only there, and resolves it when usage falls', async () => {
    const config = loadConfig({ env: { KEYWARDEN_CONFIG: policyPath } });
    const env = testJobContext({ db: t.db, emulatorUrl: emulator.url, adminKey: ADMIN_KEY, clock, config });
    try {
      await syncInventory.handler(env.ctx, {});
      clock.advance(20 * MIN);
      await pollUsageJob.handler(env.ctx, {});
      const first = await checkHeadroom(env.ctx);
      expect(first.workspaces).toBe(2);
      const firing = await t.db
        .selectFrom('alerts')
        .select(['title', 'state', 'scope_id', 'details'])
        .where('kind', '=', 'ratelimit.headroom')
        .execute();
      // Input at ~120% of 50k fires; output at ~30% of 40k does not; Research is far from the organization's limits.
      expect(firing.map((a) => [a.title.replace(/\d+%/, 'N%'), a.state])).toEqual([
        ['Workspace "Chatbot" uses N% of its input tokens per minute limit', 'firing'],
      ]);
      const utilization = (firing[0]!.details as { details: { utilization: number } }).details.utilization;
      expect(utilization).toBeGreaterThan(1);
      expect(utilization).toBeLessThan(1.4);
      const outbox = await t.db.selectFrom('notifications').select(['target', 'event']).execute();
      expect(outbox).toEqual([{ target: '#ai-alerts', event: 'firing' }]);

      // A second run while it still holds says nothing new.
      clock.advance(5 * MIN);
      await pollUsageJob.handler(env.ctx, {});
      await checkHeadroomJob.handler(env.ctx, {});
      expect(await t.db.selectFrom('notifications').select('event').execute()).toHaveLength(1);

      // The key is switched off at minute 30: once a whole window has passed without its traffic, it resolves.
      clock.advance(25 * MIN);
      await pollUsageJob.handler(env.ctx, {});
      await checkHeadroomJob.handler(env.ctx, {});
      const after = await t.db.selectFrom('alerts').select('state').where('kind', '=', 'ratelimit.headroom').execute();
      expect(after).toEqual([{ state: 'resolved' }]);
    } finally {
      await env.close();
    }
  });
});

// Every limiter type the SDK lists, in 2026 shapes (group objects, source objects): "Chatbot" runs at ~54k
// cache-aware input + output tokens a minute and ~2 web searches a second, with no fast-mode traffic at all.
const everyLimiter = parseScenario({
  name: 'headroom-2026',
  admin_keys: [ADMIN_KEY],
  api_shape: '2026',
  traffic_defaults: { models: { 'claude-sonnet-4-5': 1 }, daily_amplitude: 0, noise: 0.05, output_ratio: 0.2 },
  workspaces: [
    {
      name: 'Chatbot',
      rate_limits: [
        {
          group_type: 'model_group',
          models: SONNETS,
          limits: {
            tokens_per_minute: 60_000,
            tokens_per_day: 1_200_000,
            fast_itpmca: 1_000,
            fast_otpm: 1_000,
            requests_per_minute: 1,
          },
        },
        { group_type: 'web_search', models: null, limits: { tool_uses_per_second: 2.2 } },
      ],
    },
  ],
  rate_limits: [
    {
      group_type: 'model_group',
      models: SONNETS,
      limits: {
        tokens_per_minute: 10_000_000,
        tokens_per_day: 100_000_000,
        fast_itpmca: 100_000,
        fast_otpm: 100_000,
        requests_per_minute: 4000,
      },
    },
    { group_type: 'web_search', models: null, limits: { tool_uses_per_second: 30 } },
  ],
  keys: [
    {
      name: 'chatbot-prod',
      workspace: 'Chatbot',
      age_days: 60,
      traffic: { tokens_per_minute: 60_000, web_search_per_minute: 120 },
    },
  ],
});

describe('check-headroom on every limiter type', () => {
  const clock = fixedClock(START);
  let t: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    t = await createTestDatabase();
    emulator = await startEmulator({ scenario: everyLimiter, clock, startAt: START });
  });
  afterAll(async () => {
    await emulator.close();
    await t.drop();
  });

  it('tokens per minute, per day and web search uses per second, labelled for people; fast-mode limits count fast-mode usage only', async () => {
    const config = loadConfig({ env: { KEYWARDEN_CONFIG: policyPath } });
    const env = testJobContext({ db: t.db, emulatorUrl: emulator.url, adminKey: ADMIN_KEY, clock, config });
    try {
      await syncInventory.handler(env.ctx, {});
      clock.advance(20 * MIN);
      await pollUsageJob.handler(env.ctx, {});
      const summary = await checkHeadroom(env.ctx);
      expect(summary.unreadable).toEqual([]);
      const firing = await t.db
        .selectFrom('alerts')
        .select(['title', 'details'])
        .where('kind', '=', 'ratelimit.headroom')
        .orderBy('title')
        .execute();
      // requests are counted now (the analytics usage API): ~24 a minute against a limit of 1 fires too
      expect(firing.map((a) => a.title.replace(/\d+%/, 'N%'))).toEqual([
        'Workspace "Chatbot" uses N% of its requests per minute limit',
        'Workspace "Chatbot" uses N% of its tokens per day limit',
        'Workspace "Chatbot" uses N% of its tokens per minute limit',
        'Workspace "Chatbot" uses N% of its web search uses per second limit',
      ]);
      expect(JSON.stringify(firing[2]!.details)).toContain('(Claude Sonnet: claude-sonnet-4-6');
      // the fast-mode usage was asked for (with the beta header the speed filter needs), and there was none: no alert
      // against the small fast-mode limits
      expect(emulator.requestLog.some((r) => r.path.includes('speeds%5B%5D=fast'))).toBe(true);
      expect(env.lines.filter((l) => l.includes('fast-mode usage could not be read'))).toEqual([]);
    } finally {
      await env.close();
    }
  });
});
