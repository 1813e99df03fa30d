import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverNotificationsJob } from '../../jobs/deliver-notifications.ts';
import { detectAnomaliesJob } from '../../jobs/detect-anomalies.ts';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { startEmulator } from '../../src/emulator/server.ts';
import { createLogger } from '../../src/log.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START, keyIdByName } from '../support/demo-org.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';

/**
 * What the detector does with a "Mark as expected" (the press itself: slack-expected.test.ts): on the demo
 * organization, the CI runner's spend steps to ×15 for four hours (a planned job), and two hours in jumps ×10 on top
 * of it for half an hour. Marked at its first alert, the job's episode resolves saying who marked it; the planned
 * rate does not fire again, after a restart too (the mark is in Postgres); the jump does.
 */

const MIN = 60_000;

describe('detect-anomalies with a runaway marked as expected', () => {
  let slack: SlackServer;
  beforeAll(async () => {
    slack = await startSlackServer();
  });
  afterAll(async () => {
    await slack.close();
  });

  it('resolves the marked episode with its note, stays quiet at the planned rate across a restart, fires for a ×10 jump', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-expected-'));
    const path = join(dir, 'policy.yaml');
    writeFileSync(path, 'routes:\n  - { match: { kind: "usage.*" }, slack: ["#ai-alerts"], repeat_every: 1h }\n');
    const config = loadConfig({ env: { KEYWARDEN_CONFIG: path } });
    const demo = loadScenario('demo');
    const scenario = {
      ...demo,
      events: [
        ...demo.events.filter((e) => e.type !== 'runaway'),
        {
          type: 'runaway' as const,
          key: 'CI runner',
          at_minutes: 1,
          factor: 15,
          duration_minutes: 240,
          ramp_minutes: 0,
        },
        {
          type: 'runaway' as const,
          key: 'CI runner',
          at_minutes: 100,
          factor: 10,
          duration_minutes: 30,
          ramp_minutes: 0,
        },
      ],
    };
    const clock = fixedClock(DEMO_START);
    const t = await createTestDatabase();
    const emulator = await startEmulator({ scenario, clock, startAt: DEMO_START });
    const log = createLogger({ level: 'silent' });
    const notifier = {
      slack: createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, log }),
      email: null,
      close: async () => {},
    };
    const worker = () =>
      testJobContext({ db: t.db, emulatorUrl: emulator.url, adminKey: DEMO_ADMIN_KEY, clock, config, notifier });
    let env = worker();
    const runUntil = async (minutes: number) => {
      while (clock.now().getTime() < DEMO_START.getTime() + minutes * MIN) {
        clock.advance(MIN);
        await pollUsageJob.handler(env.ctx, {});
        await detectAnomaliesJob.handler(env.ctx, {});
        await deliverNotificationsJob.handler(env.ctx, {});
      }
    };
    const ciPosts = () =>
      slack.calls
        .filter(
          (c) => c.method === 'chat.postMessage' && c.response?.ok && JSON.stringify(c.args).includes('CI runner'),
        )
        .map((c) => ({ text: JSON.stringify(c.args), thread: c.args.thread_ts as string | undefined }));
    try {
      await syncInventory.handler(env.ctx, {});
      await runUntil(12);
      expect(ciPosts()).toHaveLength(1);
      const id = await keyIdByName(t.db, 'CI runner');
      const alert = await t.db
        .selectFrom('alerts')
        .selectAll()
        .where('kind', '=', 'usage.runaway')
        .where('scope_id', '=', id)
        .where('state', '=', 'firing')
        .executeTakeFirstOrThrow();
      const rate = (alert.details as { details: { currentHourlyUsd: number } }).details.currentHourlyUsd;
      // what the press makes (src/actions/handle.ts): a mark covering the alert's rate, for 24 hours
      await env.ctx.repos.anomaly.addMark(
        {
          scopeType: 'key',
          scopeId: id,
          coveredHourlyUsd: rate,
          startsAt: clock.now(),
          until: new Date(clock.now().getTime() + 24 * 60 * MIN),
          markedBy: 'slack:U0ANA',
          alertId: alert.id,
          slackButtonId: null,
        },
        clock.now(),
      );
      await runUntil(14);
      const resolved = await t.db.selectFrom('alerts').selectAll().where('id', '=', alert.id).executeTakeFirstOrThrow();
      expect(resolved.state).toBe('resolved');
      expect(ciPosts()).toHaveLength(2);
      expect(ciPosts()[1]!.thread).toBeDefined();
      expect(ciPosts()[1]!.text).toContain('Marked as expected by slack:U0ANA');

      // a restart: a new worker, with nothing but Postgres to remember the mark
      await env.close();
      env = worker();
      await runUntil(98);
      expect(ciPosts()).toHaveLength(2);
      // ×10 the planned rate from minute 100: that is not what was marked
      await runUntil(112);
      expect(ciPosts()).toHaveLength(3);
      expect(ciPosts()[2]!.text).toContain('marked as expected');
      expect(ciPosts()[2]!.thread).toBeUndefined();
    } finally {
      await env.close();
      await emulator.close();
      await t.drop();
    }
  }, 600_000);
});
