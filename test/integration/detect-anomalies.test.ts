import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverNotificationsJob } from '../../jobs/deliver-notifications.ts';
import { detectAnomaliesJob } from '../../jobs/detect-anomalies.ts';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { detectAnomalies } from '../../src/anomaly/run.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import { fixedClock } from '../../src/clock.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import { KEY_STATUS_LOCK, withAdvisoryLock } from '../../src/db/advisory-lock.ts';
import type { Db } from '../../src/db/index.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createLogger } from '../../src/log.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START, keyIdByName } from '../support/demo-org.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';

const MIN = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'kw-detect-'));

function policy(name: string, anomaly: string): Config {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    `anomaly: ${anomaly}
routes:
  - { match: { kind: "usage.*" }, slack: ["#ai-alerts"], repeat_every: 1h }
`,
  );
  return loadConfig({ env: { KEYWARDEN_CONFIG: path } });
}

/** The demo organization on its own clock and database, with keywarden's jobs run by hand once per minute. */
async function demoWorld(config: Config, slack: SlackServer, scenario = loadScenario('demo')) {
  const clock = fixedClock(DEMO_START);
  const t: TestDatabase = await createTestDatabase();
  const emulator: Emulator = await startEmulator({ scenario, clock, startAt: DEMO_START });
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
  await syncInventory.handler(env.ctx, {});
  return {
    clock,
    t,
    emulator,
    env,
    /** Poll, detect, deliver at each minute until `minutes` after the demo's start. */
    async runUntil(minutes: number) {
      while (clock.now().getTime() < DEMO_START.getTime() + minutes * MIN) {
        clock.advance(MIN);
        await pollUsageJob.handler(env.ctx, {});
        await detectAnomaliesJob.handler(env.ctx, {});
        await deliverNotificationsJob.handler(env.ctx, {});
      }
    },
    async keyStatus(name: string) {
      const id = await keyIdByName(t.db, name);
      return (await env.ctx.admin.getApiKey(id)).status;
    },
    async close() {
      await env.close();
      await emulator.close();
      await t.drop();
    },
  };
}

const posts = (slack: SlackServer) =>
  slack.calls
    .filter((c) => c.method === 'chat.postMessage' && c.response?.ok)
    .map((c) => ({ text: JSON.stringify(c.args), thread: c.args.thread_ts as string | undefined, ts: c.response!.ts }));

describe('detect-anomalies on the demo organization', () => {
  let slack: SlackServer;
  beforeAll(async () => {
    slack = await startSlackServer();
  });
  afterAll(async () => {
    await slack.close();
  });

  it('posts the CI runner runaway once, with what it costs, and resolves it in its thread after the runaway ends', async () => {
    slack.reset();
    const world = await demoWorld(policy('default', '{}'), slack);
    try {
      // The runaway runs from minute 1 to 41 of the demo; with 1-minute-late data it is visible minutes after.
      await world.runUntil(12);
      const firing = posts(slack).filter((p) => p.text.includes('CI runner'));
      expect(firing).toHaveLength(1);
      const text = firing[0]!.text;
      expect(text).toContain('Runaway spend on API key \\"CI runner\\"');
      expect(text).toContain('Internal tools'); // the workspace
      expect(text).toMatch(/\$\d+\.\d\d\/h \(\d+(\.\d)?× typical\)/); // current rate against typical
      expect(text).toContain('2026-11-16 10:01 UTC'); // when it started: the runaway's first minute
      expect(text).toMatch(/Next 24 h at this rate/);
      expect(text).toMatch(/claude-sonnet-4-5 \d+%/); // models involved
      expect(text).toMatch(/output \d+%/); // token kinds involved
      expect(text).toContain('anomaly.auto_deactivate.enabled: false');
      // How each key spends in time, measured from its stored 1-minute rows: the notebook spends in about 30% of its
      // minutes, scattered; Production Backend every minute.
      const state = async (name: string) =>
        world.t.db
          .selectFrom('anomaly_state')
          .select(['active_share', 'persistence'])
          .where('scope_type', '=', 'key')
          .where('scope_id', '=', await keyIdByName(world.t.db, name))
          .executeTakeFirstOrThrow();
      const notebook = await state('Research notebook');
      expect(notebook.active_share).toBeGreaterThan(0.25);
      expect(notebook.active_share).toBeLessThan(0.35);
      expect(notebook.persistence).toBeGreaterThan(0.25);
      expect(notebook.persistence).toBeLessThan(0.35);
      expect(await state('Production Backend')).toMatchObject({ active_share: 1 });
      expect((await state('Production Backend')).persistence).toBeGreaterThan(0.999);

      // Through the runaway and 30 normal minutes after it: no second firing post, one repeat after the route's
      // repeat_every (1h) in the thread, saying the rate is back under the bar; then one resolution in the thread.
      await world.runUntil(70);
      expect(posts(slack).filter((p) => p.text.includes('CI runner') && !p.thread)).toHaveLength(1);
      await world.runUntil(95);
      const inThread = posts(slack).filter((p) => p.text.includes('CI runner') && p.thread);
      expect(inThread.map((p) => p.thread)).toEqual([firing[0]!.ts, firing[0]!.ts]);
      expect(inThread[0]!.text).toContain('Still firing: Runaway spend on API key');
      expect(inThread[0]!.text).toContain('back under the bar after');
      expect(inThread[1]!.text).toContain('Resolved: Runaway spend on API key');
      // No other runaway was announced: the demo has one (its workspace's alert is the key's, and the successor key
      // taking over Production Backend's traffic is a handover, not a runaway).
      expect(posts(slack).filter((p) => p.text.includes('usage.runaway'))).toHaveLength(3);
      // The kill switch is off by default: the key was never touched.
      expect(await world.keyStatus('CI runner')).toBe('active');
      expect(await world.t.db.selectFrom('audit_log').selectAll().execute()).toEqual([]);
    } finally {
      await world.close();
    }
  }, 120_000); // 95 simulated minutes of poll, detect and deliver: ~15 s alone, more on a busy machine

  it('with the kill switch enabled, sets the runaway key inactive in the organization, audited, and says how to undo it', async () => {
    slack.reset();
    const world = await demoWorld(policy('kill', '{ auto_deactivate: { enabled: true, min_hourly_usd: 10 } }'), slack);
    try {
      await world.runUntil(25);
      expect(await world.keyStatus('CI runner')).toBe('inactive');
      expect(await world.keyStatus('Production Backend')).toBe('active');
      const id = await keyIdByName(world.t.db, 'CI runner');
      const audit = await world.t.db
        .selectFrom('audit_log')
        .select(['actor', 'action', 'step', 'subject_id'])
        .orderBy('id')
        .execute();
      expect(audit).toEqual([
        { actor: 'keywarden:anomaly', action: 'api_key.deactivate', step: 'intent', subject_id: id },
        { actor: 'keywarden:anomaly', action: 'api_key.deactivate', step: 'done', subject_id: id },
      ]);
      const notice = posts(slack).filter((p) => p.text.includes('was set inactive by the runaway kill switch'));
      expect(notice).toHaveLength(1);
      expect(notice[0]!.text).toContain(`keywarden keys reactivate ${id} --reason`);
      // Once per episode: later runs do not call the API again.
      await world.runUntil(30);
      expect(await world.t.db.selectFrom('audit_log').selectAll().execute()).toHaveLength(2);
    } finally {
      await world.close();
    }
  }, 60_000);

  it('the kill switch waits while another run holds the key-status lock, then acts once', async () => {
    slack.reset();
    const world = await demoWorld(
      policy('locked', '{ auto_deactivate: { enabled: true, min_hourly_usd: 10 } }'),
      slack,
    );
    try {
      // an enforcement run (or another detection) holds the lock through the runaway's first 25 minutes
      let release = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      let locked: Promise<unknown> = Promise.resolve();
      const taken = new Promise<void>((r) => {
        locked = withAdvisoryLock(world.t.db, KEY_STATUS_LOCK, async () => {
          r();
          await held;
        });
      });
      await taken;
      await world.runUntil(25);
      expect(await world.keyStatus('CI runner')).toBe('active');
      expect(await world.t.db.selectFrom('audit_log').selectAll().execute()).toEqual([]);
      release();
      await locked;
      await world.runUntil(27);
      expect(await world.keyStatus('CI runner')).toBe('inactive');
      expect(await world.t.db.selectFrom('audit_log').select('step').execute()).toEqual([
        { step: 'intent' },
        { step: 'done' },
      ]);
    } finally {
      await world.close();
    }
  }, 60_000);

  it('two detection runs at once set a runaway key inactive once: the one that read it active before the other acted finds it inactive under the lock', async () => {
    slack.reset();
    const world = await demoWorld(policy('race', '{ auto_deactivate: { enabled: true, min_hourly_usd: 10 } }'), slack);
    try {
      // the kill switch acts on the CI runner in the 15th minute; the minutes before it run one detection each
      await world.runUntil(14);
      expect(await world.keyStatus('CI runner')).toBe('active');
      world.clock.advance(MIN);
      await pollUsageJob.handler(world.env.ctx, {});
      // a second run (an operator's `run detect-anomalies --once`, a stalled job run again) whose rate-limit reads,
      // after it has read the keys and before it takes the lock, wait for the first run to end
      let first: Promise<unknown> = Promise.resolve();
      const gated: typeof fetch = async (input, init) => {
        if (String(input).includes('/rate_limits')) await first.catch(() => {});
        return fetch(input, init);
      };
      const admin = new AdminClient({
        baseUrl: world.emulator.url,
        adminKey: new Secret(DEMO_ADMIN_KEY),
        clock: world.clock,
        fetch: gated,
      });
      first = detectAnomalies(world.env.ctx);
      const [a, b] = await Promise.all([first, detectAnomalies({ ...world.env.ctx, admin })]);
      const id = await keyIdByName(world.t.db, 'CI runner');
      expect((a as { deactivated: string[] }).deactivated).toEqual([id]);
      expect(b.deactivated).toEqual([]);
      expect(await world.keyStatus('CI runner')).toBe('inactive');
      expect(await world.t.db.selectFrom('audit_log').select(['step', 'subject_id']).orderBy('id').execute()).toEqual([
        { step: 'intent', subject_id: id },
        { step: 'done', subject_id: id },
      ]);
      // the second run, saving its state last, keeps the first one's record: the alert still says the key was set
      // inactive by the kill switch, once for this episode
      await world.runUntil(16);
      expect(await firingRunawayKillSwitch(world.t.db, id)).toBe('deactivated');
    } finally {
      await world.close();
    }
  }, 60_000);

  it("a run that read the states before another run's kill switch acted, and the key after, keeps that run's record of the episode", async () => {
    slack.reset();
    const world = await demoWorld(policy('stale', '{ auto_deactivate: { enabled: true, min_hourly_usd: 10 } }'), slack);
    try {
      await world.runUntil(14);
      world.clock.advance(MIN);
      await pollUsageJob.handler(world.env.ctx, {});
      // the second run's read of the states came before the first run acted; its read of the keys, after
      const before = await world.env.ctx.repos.anomaly.states();
      const first = await detectAnomalies(world.env.ctx);
      const id = await keyIdByName(world.t.db, 'CI runner');
      expect(first.deactivated).toEqual([id]);
      const anomaly = { ...world.env.ctx.repos.anomaly, states: async () => before };
      const second = await detectAnomalies({ ...world.env.ctx, repos: { ...world.env.ctx.repos, anomaly } });
      expect(second.deactivated).toEqual([]);
      const [row] = await world.t.db
        .selectFrom('anomaly_state')
        .select('deactivated_for')
        .where('scope_type', '=', 'key')
        .where('scope_id', '=', id)
        .execute();
      expect(row?.deactivated_for).not.toBeNull();
      // and whatever a run's reads missed, a save without the record of the same episode keeps the stored one
      const stale = before.find((r) => r.scope_type === 'key' && r.scope_id === id)!;
      expect(stale).toMatchObject({ firing: true, deactivated_for: null });
      await world.env.ctx.repos.anomaly.saveStates([stale]);
      const [kept] = await world.t.db
        .selectFrom('anomaly_state')
        .select('deactivated_for')
        .where('scope_type', '=', 'key')
        .where('scope_id', '=', id)
        .execute();
      expect(kept?.deactivated_for).toEqual(row?.deactivated_for);
      await world.runUntil(16);
      expect(await firingRunawayKillSwitch(world.t.db, id)).toBe('deactivated');
      expect(await world.keyStatus('CI runner')).toBe('inactive');
    } finally {
      await world.close();
    }
  }, 60_000);

  it("the kill switch does not believe a key whose minutes are above its workspace's own rate limit, and says so", async () => {
    slack.reset();
    const demo = loadScenario('demo');
    // the CI runner's workspace allows 2,000 output tokens a minute on Sonnet; its runaway shows several times that
    const sonnets = ['claude-sonnet-4-6', 'claude-sonnet-4-5', 'claude-sonnet-4'];
    const scenario = {
      ...demo,
      workspaces: demo.workspaces.map((w) =>
        w.name === 'Internal tools'
          ? {
              ...w,
              rate_limits: [
                { group_type: 'model_group', models: sonnets, limits: { output_tokens_per_minute: 2_000 } },
              ],
            }
          : w,
      ),
    };
    const world = await demoWorld(
      policy('impossible', '{ auto_deactivate: { enabled: true, min_hourly_usd: 10 } }'),
      slack,
      scenario,
    );
    try {
      await world.runUntil(20);
      expect(await world.keyStatus('CI runner')).toBe('active');
      expect(await world.t.db.selectFrom('audit_log').selectAll().execute()).toEqual([]);
      const id = await keyIdByName(world.t.db, 'CI runner');
      const alert = await world.t.db
        .selectFrom('alerts')
        .select('details')
        .where('kind', '=', 'usage.runaway')
        .where('scope_id', '=', id)
        .where('state', '=', 'firing')
        .executeTakeFirstOrThrow();
      const facts = (alert.details as { details: Record<string, unknown> }).details;
      expect(facts.killSwitch).toBe('refused');
      expect(facts.killSwitchReason).toMatch(
        /output tokens per minute in one minute, above the workspace's limit of 2,000: impossible, so not believed/,
      );
    } finally {
      await world.close();
    }
  }, 60_000);

  it('one inflated usage answer deactivates nothing: every key trips at once, which is refused as a data fault', async () => {
    slack.reset();
    const world = await demoWorld(
      policy('inflated', '{ auto_deactivate: { enabled: true, min_hourly_usd: 500 } }'),
      slack,
    );
    try {
      await world.runUntil(20);
      const statusesBefore = await world.env.ctx.admin.listApiKeys({}).toArray();
      // every bucket of the next poll's answers says 5 M output tokens a minute for every key (each poll rewrites
      // the trailing window, so one answer fills it)
      const inflated = {
        path: '/v1/organizations/usage_report/messages',
        patch: [{ path: 'data.*.results.*.output_tokens', value: 5_000_000 }],
      };
      world.clock.advance(MIN);
      world.emulator.setFaults({ script: [inflated, inflated, inflated] });
      await pollUsageJob.handler(world.env.ctx, {});
      world.emulator.setFaults({});
      const run = (await detectAnomaliesJob.handler(world.env.ctx, {})) as { firing: string[]; deactivated: string[] };
      expect(run.firing.length).toBeGreaterThan(3);
      expect(run.deactivated).toEqual([]);
      // each key's alert says why the kill switch did not act
      const alerts = await world.t.db
        .selectFrom('alerts')
        .select('details')
        .where('kind', '=', 'usage.runaway')
        .where('scope_type', '=', 'key')
        .where('state', '=', 'firing')
        .execute();
      const facts = alerts.map((a) => (a.details as { details: Record<string, unknown> }).details);
      const refused = facts.filter((d) => d.killSwitch === 'refused');
      expect(refused.length).toBeGreaterThan(3);
      for (const d of refused) expect(d.killSwitchReason).toMatch(/keys crossed the hard cap together/);
      // the next polls rewrite the window with the real answers: still nothing is touched
      await world.runUntil(26);
      expect(await world.env.ctx.admin.listApiKeys({}).toArray()).toEqual(statusesBefore);
      expect(await world.t.db.selectFrom('audit_log').selectAll().execute()).toEqual([]);
    } finally {
      await world.close();
    }
  }, 60_000);
});

/** What the key's firing runaway alert says of the kill switch (armed, deactivated, …). */
async function firingRunawayKillSwitch(db: Db, keyId: string): Promise<unknown> {
  const alert = await db
    .selectFrom('alerts')
    .select('details')
    .where('kind', '=', 'usage.runaway')
    .where('scope_id', '=', keyId)
    .where('state', '=', 'firing')
    .executeTakeFirstOrThrow();
  return (alert.details as { details: Record<string, unknown> }).details.killSwitch;
}
