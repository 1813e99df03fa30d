import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { deliverNotificationsJob } from '../../jobs/deliver-notifications.ts';
import { detectAnomaliesJob } from '../../jobs/detect-anomalies.ts';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { reconcileCostsJob } from '../../jobs/reconcile-costs.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { actorReport, formatActorReport } from '../../src/cli/spend.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { composeFinanceDigest } from '../../src/digest/finance.ts';
import { loadFinanceData } from '../../src/digest/finance-data.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createLogger } from '../../src/log.ts';
import { terminalJson } from '../../src/notify/escape.ts';
import { renderDigestEmail, renderDigestSlack } from '../../src/notify/render.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START } from '../support/demo-org.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';

const MIN = 60_000;
/** Organization-controlled: a Slack broadcast, mrkdwn, and a bidi override in the email of the CI runner's owner. */
const HOSTILE_EMAIL = '<!channel>*ci*\u202eowner@acme.example';

/** The demo organization, its CI runner (the runaway) a personal key of a user with a hostile email. */
function scenario() {
  const raw = parseYaml(readFileSync(new URL('../../src/emulator/scenarios/demo.yaml', import.meta.url), 'utf8'));
  raw.users.push({ name: 'CI Owner', email: HOSTILE_EMAIL, role: 'developer', age_days: 100 });
  const ci = raw.keys.find((k: { name: string }) => k.name === 'CI runner');
  ci.principal = HOSTILE_EMAIL;
  return parseScenario(raw, 'demo + hostile CI owner');
}

describe('who is behind the traffic (the analytics cost API actors)', () => {
  let slack: SlackServer;
  let t: TestDatabase;
  let emulator: Emulator;
  const clock = fixedClock(DEMO_START);
  beforeAll(async () => {
    slack = await startSlackServer();
    t = await createTestDatabase();
    emulator = await startEmulator({ scenario: scenario(), clock, startAt: DEMO_START });
  });
  afterAll(async () => {
    await emulator?.close();
    await t?.drop();
    await slack?.close();
  });

  it('names the actor in the runaway alert, lists top actors in the finance digest and in `spend --by actor`, escaped', async () => {
    const policy = join(mkdtempSync(join(tmpdir(), 'kw-actors-')), 'policy.yaml');
    writeFileSync(policy, 'routes:\n  - { match: { kind: "usage.*" }, slack: ["#ai-alerts"], repeat_every: 1h }\n');
    const config = loadConfig({ env: { KEYWARDEN_CONFIG: policy } });
    const log = createLogger({ level: 'silent' });
    const notifier = {
      slack: createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, log }),
      email: null,
      close: async () => {},
    };
    const env = testJobContext({
      db: t.db,
      emulatorUrl: emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock,
      config,
      notifier,
    });
    try {
      await syncInventory.handler(env.ctx, {});
      await pollUsageJob.handler(env.ctx, {});
      await reconcileCostsJob.handler(env.ctx, {});
      while (clock.now().getTime() < DEMO_START.getTime() + 12 * MIN) {
        clock.advance(MIN);
        await pollUsageJob.handler(env.ctx, {});
        await detectAnomaliesJob.handler(env.ctx, {});
        await deliverNotificationsJob.handler(env.ctx, {});
      }
      const posts = slack.calls
        .filter((c) => c.method === 'chat.postMessage' && c.response?.ok)
        .map((c) => JSON.stringify(c.args))
        .filter((text) => text.includes('CI runner'));
      expect(posts).toHaveLength(1);
      // the owner's email, escaped as Slack needs it: no broadcast, no formatting, the override shown
      expect(posts[0]).toContain('Behind it: &lt;!channel&gt;');
      expect(posts[0]).not.toContain('<!channel>');
      expect(posts[0]).not.toContain('\u202e');

      // the finance digest: top actors this UTC month, by billed spend (the renderers escape the rows)
      const repos = createRepos(t.db);
      const finance = await loadFinanceData(repos, clock.now(), {
        organizationName: 'Acme',
        timezone: 'UTC',
        organizationLimitUsd: null,
      });
      const message = composeFinanceDigest(finance).message;
      const actors = message.sections.find((s) => s.title.startsWith('Top actors'))!;
      const email = renderDigestEmail(message);
      expect(email.html).toContain('&lt;!channel&gt;*ci*');
      expect(email.html).not.toContain('<!channel>');
      const mrkdwn = JSON.stringify(renderDigestSlack(message).blocks.filter((b) => b.type !== 'header'));
      expect(mrkdwn).toContain('&lt;!channel&gt;');
      expect(mrkdwn).not.toContain('<!channel>');
      expect(actors.columns.map((c) => c.label)).toEqual(['Actor', 'Type', 'Billed', 'Share', 'Keys']);
      const names = actors.rows.map((r) => r[0]);
      expect(names).toContain(HOSTILE_EMAIL);
      expect(names).toContain('service account svac_01ProductionBackend');
      // ranked by billed spend, and the shares add up to the whole bill
      const billed = finance.actors!.map((a) => a.billed);
      expect([...billed].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0))).toEqual(billed);
      expect(billed.reduce((s, b) => s + b, 0n)).toBe(finance.billedMtd);
      // the production service account spends through two keys
      expect(finance.actors!.find((a) => a.id === 'svac_01ProductionBackend')!.keys).toBe(2);

      // `keywarden spend --by actor`: table with the email escaped for the terminal, JSON that parses back to it
      const report = (await actorReport(repos, clock.now()))!;
      expect(report.month).toBe('2026-11');
      const table = formatActorReport(report);
      expect(table).toContain('ACTOR');
      expect(table).toContain('<!channel>*ci*\\u202eowner@acme.example');
      expect(table).not.toContain('\u202e');
      const json = terminalJson(report);
      expect(json).not.toContain('\u202e');
      const parsed = JSON.parse(json) as typeof report;
      expect(parsed.actors.map((a) => a.name)).toContain(HOSTILE_EMAIL);
      expect(parsed.actors.find((a) => a.name === HOSTILE_EMAIL)!.type).toBe('user_actor');
    } finally {
      await env.close();
    }
  });
});
